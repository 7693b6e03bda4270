"""Per-task training defaults: the settings of each task's source, scaled to a 2-core CPU.

Sources: IRM (Arjovsky et al. 2019) for Colored MNIST (Adam 1e-3, MLP 390 wide; IRM trains
full-batch for 501 steps and keeps the final model, here mini-batches of 128 for 30 epochs of
3,000 images, final model too); DomainBed
for the MNIST CNN (Adam 1e-3, batch 64); the OGB molecule examples for GNNs (Adam 1e-3, batch
32, width 300, dropout 0.5; 100 epochs there, 30 on the 1,282-molecule solubility set here);
kuangliu/pytorch-cifar (the HMA paper's CIFAR-10 code base: SGD 0.1, momentum 0.9, weight
decay 5e-4, cosine, 200 epochs; kept as the paper ran it, so not a CPU job); CIGA for the TU
size-shift sets (Adam 1e-3, batch 32, width 128, 100 epochs). HMA's own knobs follow the
paper's searches: queue = 2 x batch size, 8 slots per class on images, 16 on graphs.
Anything here is overridden by a YAML file or the command line.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TASK_DEFAULTS", "DEMO_CONFIGS"]

_SMALL = {"optim": {"name": "adam", "lr": 1e-3}}

TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "colored-mnist": {
        "backbone": "mlp",
        "epochs": 30,
        "select": "last",  # validation is coloured like training: it would pick a colour classifier
        "batch_size": 128,
        "optim": {"name": "adam", "lr": 1e-3, "weight_decay": 1e-3},
        "hma": {"queue_size": 256, "slots_per_class": 8},
    },
    "mnist": {"backbone": "cnn", "epochs": 10, "batch_size": 64, **_SMALL, "hma": {"queue_size": 128, "slots_per_class": 8}},
    "digits": {"backbone": "mlp", "epochs": 30, "batch_size": 64, **_SMALL, "hma": {"queue_size": 128, "slots_per_class": 8}},
    "mnist1d": {"backbone": "mlp", "epochs": 30, "batch_size": 128, **_SMALL, "hma": {"queue_size": 256, "slots_per_class": 8}},
    "breast-cancer": {"backbone": "mlp", "epochs": 50, "batch_size": 32, **_SMALL, "hma": {"queue_size": 64, "slots_per_class": 8}},
    "wine": {"backbone": "mlp", "epochs": 50, "batch_size": 32, **_SMALL, "hma": {"queue_size": 64, "slots_per_class": 8}},
    "molecules": {
        "backbone": "gin",
        "epochs": 30,
        "batch_size": 32,
        **_SMALL,
        "hma": {"queue_size": 64, "slots_per_class": 16},
    },
    "cifar10": {
        "backbone": "resnet18",
        "epochs": 200,
        "batch_size": 128,
        "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "scheduler": "cosine"},
        "hma": {"queue_size": 256, "slots_per_class": 8},
    },
}
TASK_DEFAULTS["cifar100"] = TASK_DEFAULTS["cifar10"]
for _name in ("imdb-binary", "imdb-multi", "reddit-binary", "reddit-multi-5k", "reddit-multi-12k", "nci1", "nci109", "proteins", "dd"):
    TASK_DEFAULTS[_name] = {
        "backbone": "gin",
        "epochs": 100,
        "batch_size": 32,
        **_SMALL,
        "backbone_options": {"hidden_dim": 128},
        "hma": {"queue_size": 64, "slots_per_class": 16},
    }
for _name in ("ogbg-molbace", "ogbg-molbbbp", "ogbg-molhiv"):
    TASK_DEFAULTS[_name] = {
        "backbone": "gin",
        "epochs": 100,
        "batch_size": 32,
        **_SMALL,
        "backbone_options": {"hidden_dim": 300, "num_layers": 5},
        "hma": {"queue_size": 64, "slots_per_class": 16},
    }

# Sequence tasks (Memory Mosaics, thesis ch. 3, at the CPU scale of ../shared/MEMORY_MOSAICS.md §9):
# AdamW, weight decay on matrices only, gradient clip 1; the step-wise schedule counts epochs.
_ADAMW = {"name": "adamw", "weight_decay": 0.1, "grad_clip": 1.0}
TASK_DEFAULTS["regbench"] = {  # ICLL recipe (AdamW, wd 0.1, clip 1, cosine to 0.1 lr after a tenth of warm-up), d = 64
    "backbone": "mosaic",
    "variant": "none",
    "epochs": 100,
    "batch_size": 32,
    "optim": {**_ADAMW, "lr": 3e-3, "scheduler": "cosine", "warmup_epochs": 10, "min_lr": 3e-4},
    "backbone_options": {"dim": 64, "num_heads": 4, "num_layers": 2},
}
TASK_DEFAULTS["shakespeare"] = {  # 10 epochs of 40 steps, T = 128, d = 128 (measured ~10 min for MM on 2 cores)
    "backbone": "mosaic",
    "variant": "none",
    "epochs": 10,
    "batch_size": 32,
    "optim": {**_ADAMW, "lr": 3e-3, "scheduler": "cosine", "warmup_epochs": 1, "min_lr": 1e-4},
    "backbone_options": {"dim": 128, "num_heads": 4, "num_layers": 2, "dropout": 0.0},
}
TASK_DEFAULTS["three-moons"] = {  # thesis App. B.1 at half scale: T = 400, batch 16, 500 steps, lr 1e-2 -> 5e-6 linear
    "backbone": "moon",
    "variant": "none",
    "epochs": 10,
    "batch_size": 16,
    "optim": {"name": "adamw", "lr": 1e-2, "weight_decay": 0.0, "scheduler": "linear", "min_lr": 5e-6},
    "backbone_options": {"num_heads": 3},
}

# `hetmem demo` (make demo): Colored MNIST, IRM MLP, baseline vs HMA, a few minutes on 2 cores.
DEMO_CONFIGS: list[dict[str, Any]] = [
    {"task": "colored-mnist", "backbone": "mlp", "variant": variant, "seeds": [0, 1, 2]} for variant in ("none", "hma")
]
