"""HMAConfig: the hyper-parameters of Heterogeneous Memory Augmentation, validated once."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from hetmem.inputs import as_positive_int

__all__ = ["VARIANTS", "PRESETS", "HMAConfig", "Components"]


class Components(NamedTuple):
    """Which memories a variant reads; ``None`` for the plain linear head."""

    queue: bool  # RMA: each row attends to itself and the real-memory queue
    batch: bool  # ABD: SMA attends between datapoints of the batch
    slots: bool  # SYN: SMA attends to the learnable class slots


# The paper's ablation names (Tables 1, 7, 8). Every variant but "none" has both attention
# blocks, so the ablations differ only in what the blocks read, not in parameter count.
VARIANTS: dict[str, Components | None] = {
    "none": None,  # backbone + linear head
    "param": Components(queue=False, batch=False, slots=False),  # the two blocks, no memory
    "rma": Components(queue=True, batch=False, slots=False),
    "abd": Components(queue=False, batch=True, slots=False),
    "abd+rma": Components(queue=True, batch=True, slots=False),
    "abd+syn": Components(queue=False, batch=True, slots=True),
    "hma": Components(queue=True, batch=True, slots=True),
}

_CONTEXTS = ("batch", "single")

# Named sets of fields. "paper": the HMA paper and its reference code wherever hetmem's
# defaults differ from them (write-time label embeddings, zero slots, scores / sqrt(D), the
# full-width head with dot-product reads, MoCo's momentum).
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "paper": {
        "width": None,
        "ff_mult": 4,
        "layer_scale": None,
        "scores": "dot",
        "score_scale": "model",
        "keys": "row",
        "slot_keys": "row",
        "leave_one_out": False,
        "label_dropout": 0.0,
        "momentum": 0.999,
        "queue_labels": "write",
        "slot_init": "zeros",
        "dropout": 0.1,
        "label_dim": 64,
    },
}


@dataclass
class HMAConfig:
    """Hyper-parameters of HMA.

    The defaults are the ``retrieval+labeldrop`` recipe, chosen on validation by ``hetmem
    experiment hma-defaults`` (RESULTS.md): a 128-wide head with LayerScale, whose queue read
    is a similarity search (cosine scores, queries = keys on the features) fed by a momentum
    encoder that keeps up with a short CPU run, a quarter of the queue's labels hidden in
    training. ``HMAConfig.paper(...)`` gives the paper's and its reference code's semantics.
    """

    num_classes: int  # n: classes of the task; label index n is the extra 'unknown' class
    variant: str = "hma"  # one of VARIANTS: none, param, rma, abd, abd+rma, abd+syn, hma
    label_dim: int = 64  # D2: label-embedding width (64 in all the paper's experiments)
    queue_size: int = 512  # m1: rows of real memory; the paper searches 1-4 x batch size
    slots_per_class: int = 8  # m2: synthetic slots per class; the paper searches 4-32 (8-64 on graphs)
    num_heads: int = 4  # H: attention heads in both blocks
    head_dim: int | None = None  # width per head; None means ceil((width + D2) / H)
    width: int | None = 128  # project backbone features to this width before the blocks (a bottleneck); None keeps D1
    ff_mult: int = 4  # MLP expansion of both blocks (4 in the paper)
    layer_scale: float | None = 0.01  # learned residual gains of both blocks start here (LayerScale); None = no gain (paper)
    scores: str = "cosine"  # attention scores: dot (scaled dot product) | cosine (learned per-head temperature)
    score_scale: str = "head"  # dot scores / sqrt(head_dim) ("head") or / sqrt(D) ("model", the reference code)
    keys: str = "features"  # RMA: queries and keys from the whole row ("row", paper) or one projection of the features ("features")
    slot_keys: str = "row"  # SMA: the same choice for the slot read
    leave_one_out: bool = False  # training: a row never reads queue rows written from the same input (tensor inputs)
    label_dropout: float = 0.25  # training only: each queue row's label read as 'unknown' with this probability
    dropout: float = 0.1  # dropout in both attention blocks (0.1 in the paper)
    momentum: float = 0.9  # lambda of the momentum encoder that writes the queue (MoCo: 0.999 over ~10^5 steps)
    momentum_buffers: str = "ema"  # momentum encoder's BatchNorm buffers: ema | copy | keep
    slot_init: str = "normal"  # normal (N(0, std^2)) | zeros (the reference code; slots stay tied) | data (first rows of each class)
    slot_init_std: float = 0.02  # std of the normal slot init
    train_context: str = "batch"  # SMA in training: batch (the paper: attend over the batch) | single
    eval_context: str = "batch"  # SMA in eval: batch (the paper) | single (predictions independent of the batch)
    global_batch: bool = False  # under torch.distributed: SMA's batch context is the batch gathered from all ranks
    queue_labels: str = "read"  # read: embed queue labels with the current embedder | write: store the embedding at write time (paper-literal)
    fused_attention: bool = True  # scaled_dot_product_attention where it applies
    validate_inputs: bool = True  # check shapes, labels and finiteness on every call (one host sync)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"HMAConfig: variant must be one of {sorted(VARIANTS)}, got {self.variant!r}")
        positive = ("num_classes", "label_dim", "num_heads", "queue_size", "slots_per_class")
        for name in positive:  # numpy integers (e.g. y.max() + 1) become ints
            setattr(self, name, as_positive_int("HMAConfig", name, getattr(self, name)))
        if self.head_dim is not None:
            self.head_dim = as_positive_int("HMAConfig", "head_dim (a positive int or None)", self.head_dim)
        for name in ("width", "layer_scale"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
                raise ValueError(f"HMAConfig: {name} must be positive or None, got {value!r}")
        if self.width is not None:
            self.width = as_positive_int("HMAConfig", "width (a positive int or None)", self.width)
        if not isinstance(self.ff_mult, int) or isinstance(self.ff_mult, bool) or self.ff_mult <= 0:
            raise ValueError(f"HMAConfig: ff_mult must be a positive int, got {self.ff_mult!r}")
        for name in ("dropout", "label_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"HMAConfig: {name} must be in [0, 1), got {getattr(self, name)}")
        if not 0.0 <= self.momentum <= 1.0:
            raise ValueError(f"HMAConfig: momentum must be in [0, 1], got {self.momentum}")
        for name in ("train_context", "eval_context"):
            if getattr(self, name) not in _CONTEXTS:
                raise ValueError(f"HMAConfig: {name} must be 'batch' or 'single', got {getattr(self, name)!r}")
        choices = {
            "momentum_buffers": ("ema", "copy", "keep"),
            "slot_init": ("normal", "zeros", "data"),
            "queue_labels": ("read", "write"),
            "scores": ("dot", "cosine"),
            "score_scale": ("head", "model"),
            "keys": ("row", "features"),
            "slot_keys": ("row", "features"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"HMAConfig: {name} must be one of {allowed}, got {getattr(self, name)!r}")


    @classmethod
    def from_preset(cls, preset: str, **fields: Any) -> HMAConfig:
        """A config from a named preset of :data:`PRESETS`, ``fields`` overriding it.

        Example:
            >>> HMAConfig.from_preset("paper", num_classes=10).queue_labels
            'write'
        """
        if preset not in PRESETS:
            raise ValueError(f"HMAConfig: preset must be one of {sorted(PRESETS)}, got {preset!r}")
        return cls(**{**PRESETS[preset], **fields})

    @classmethod
    def paper(cls, **fields: Any) -> HMAConfig:
        """The paper's and its reference code's semantics (:data:`PRESETS` ``"paper"``)."""
        return cls.from_preset("paper", **fields)

    @property
    def components(self) -> Components | None:
        return VARIANTS[self.variant]

    @property
    def uses_queue(self) -> bool:
        return self.components is not None and self.components.queue

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
