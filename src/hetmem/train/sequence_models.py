"""The models ``hetmem train`` builds for sequence tasks, and the config rules of those tasks.

``--backbone`` names the whole sequence model: ``mosaic`` (the Memory Mosaic language model,
the default), ``mosaic2`` (Memory Mosaics v2: short/long-term memories, gated keys, adaptive
bandwidth, SwiGLU; ``backbone_options.use_long_memory=false`` drops the long-term memory),
``gpt`` (the same-size transformer baseline; its block size is the task's longest training
input unless ``backbone_options.block_size`` says otherwise), ``llama`` (the v2 baseline:
rotary positions, SwiGLU, no block size) and ``moon`` (the 54-parameter three-moons toy;
``backbone_options.num_heads`` = 1 or 3).
``backbone_options`` are the model's keyword options (``dim``, ``num_heads``, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from hetmem.errors import ConfigError

__all__ = ["SEQUENCE_MODELS", "check_model_for_task", "create_task_model"]

Factory = Callable[..., nn.Module]  # factory(options, *, vocab_size, max_len) -> model


def _language_model(name: str) -> Factory:
    def make(options: dict[str, Any], *, vocab_size: int, max_len: int) -> nn.Module:
        from hetmem.models.mosaics import create_sequence_model

        if name == "gpt":
            options = {"block_size": max_len, **options}
        return create_sequence_model(name, vocab_size=vocab_size, **options)

    return make


def _moon(options: dict[str, Any], *, vocab_size: int, max_len: int) -> nn.Module:
    from hetmem.models.mosaics import MoonMemory

    return MoonMemory(**options)


SEQUENCE_MODELS: dict[str, tuple[Factory, str]] = {  # name -> (factory, the objective it serves)
    "mosaic": (_language_model("mosaic"), "lm"),
    "mosaic2": (_language_model("mosaic2"), "lm"),
    "gpt": (_language_model("gpt"), "lm"),
    "llama": (_language_model("llama"), "lm"),
    "moon": (_moon, "moons"),
}


def create_task_model(name: str, options: dict[str, Any], *, objective: str, vocab_size: int = 0, max_len: int = 0) -> nn.Module:
    """Builds sequence model ``name`` for a task with ``objective``.

    Raises:
        ConfigError: an unknown model, a model for another kind of task, or options the model
            rejects.
    """
    if name not in SEQUENCE_MODELS:
        raise ConfigError(f"unknown sequence model {name!r}; expected one of {sorted(SEQUENCE_MODELS)}")
    factory, serves = SEQUENCE_MODELS[name]
    if serves != objective:
        fits = sorted(n for n, (_, o) in SEQUENCE_MODELS.items() if o == objective)
        raise ConfigError(f"model {name!r} does not fit this task; its models are {fits}")
    try:
        return factory(dict(options), vocab_size=vocab_size, max_len=max_len)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"model {name!r}: {' '.join(str(err).split())}") from None


def check_model_for_task(cfg: Any, kind: str) -> bool:
    """Checks that ``cfg``'s backbone suits its task's kind; True for a sequence task.

    A sequence task takes a sequence model (not an image or graph backbone), no HMA variant
    or HMA fields, no per-class subsampling, no ``init_from``/``freeze_backbone``, one device.
    A classification task does not take a sequence model.

    Raises:
        ConfigError: naming the first field that does not fit.
    """
    task, model = cfg.task, cfg.backbone
    if kind != "sequence":
        if model in SEQUENCE_MODELS:
            raise ConfigError(f"backbone {model!r} is a sequence model, but task {task!r} is a classification task; "
                              "sequence models train on three-moons, regbench and shakespeare")
        return False
    if model not in SEQUENCE_MODELS:
        raise ConfigError(f"task {task!r} is a sequence task: backbone must be a sequence model, one of "
                          f"{sorted(SEQUENCE_MODELS)}, got {model!r}")
    rules = (
        ("variant", cfg.variant == "none", "must be 'none' (sequence models have no HMA head)"),
        ("hma", not cfg.hma, "must be empty (sequence models have no HMA head)"),
        ("per_class", cfg.per_class is None, "applies to classification tasks only"),
        ("init_from", cfg.init_from is None, "applies to classification backbones only"),
        ("freeze_backbone", not cfg.freeze_backbone, "applies to classification backbones only"),
        ("devices", cfg.devices == 1, "must be 1: sequence tasks train in one process"),
    )
    for field, ok, why in rules:
        if not ok:
            raise ConfigError(f"config field {field!r} {why} for sequence task {task!r}, got {getattr(cfg, field)!r}")
    return True
