"""HMAConfig: the hyper-parameters of Heterogeneous Memory Augmentation, validated once."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from hetmem.inputs import as_positive_int

__all__ = ["VARIANTS", "HMAConfig", "Components"]


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


@dataclass
class HMAConfig:
    """Hyper-parameters of HMA. Defaults follow the paper where it gives them."""

    num_classes: int  # n: classes of the task; label index n is the extra 'unknown' class
    variant: str = "hma"  # one of VARIANTS: none, param, rma, abd, abd+rma, abd+syn, hma
    label_dim: int = 64  # D2: label-embedding width (64 in all the paper's experiments)
    queue_size: int = 512  # m1: rows of real memory; the paper searches 1-4 x batch size
    slots_per_class: int = 8  # m2: synthetic slots per class; the paper searches 4-32 (8-64 on graphs)
    num_heads: int = 4  # H: attention heads in both blocks
    head_dim: int | None = None  # width per head; None means ceil((D1 + D2) / H)
    dropout: float = 0.1  # dropout in both attention blocks (0.1 in the paper)
    momentum: float = 0.999  # lambda of the momentum encoder that writes the queue (MoCo's value)
    momentum_buffers: str = "ema"  # momentum encoder's BatchNorm buffers: ema | copy | keep
    slot_init: str = "normal"  # normal (N(0, std^2)) | zeros (the reference code; slots stay tied)
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
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"HMAConfig: dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.momentum <= 1.0:
            raise ValueError(f"HMAConfig: momentum must be in [0, 1], got {self.momentum}")
        for name in ("train_context", "eval_context"):
            if getattr(self, name) not in _CONTEXTS:
                raise ValueError(f"HMAConfig: {name} must be 'batch' or 'single', got {getattr(self, name)!r}")
        choices = {"momentum_buffers": ("ema", "copy", "keep"), "slot_init": ("normal", "zeros"), "queue_labels": ("read", "write")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"HMAConfig: {name} must be one of {allowed}, got {getattr(self, name)!r}")

    @property
    def components(self) -> Components | None:
        return VARIANTS[self.variant]

    @property
    def uses_queue(self) -> bool:
        return self.components is not None and self.components.queue

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
