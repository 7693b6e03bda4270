"""Argument checks shared by the Memory Mosaic modules (each raises ValueError naming the owner)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["check_dropout", "check_heads", "check_tokens"]


def check_heads(owner: str, dim: int, num_heads: int) -> None:
    """Raise unless ``dim`` and ``num_heads`` are positive and the heads divide ``dim``."""
    if not isinstance(dim, int) or not isinstance(num_heads, int) or dim < 1 or num_heads < 1:
        raise ValueError(f"{owner}: dim and num_heads must be positive ints, got dim={dim!r}, num_heads={num_heads!r}")
    if dim % num_heads:
        raise ValueError(f"{owner}: dim ({dim}) must be divisible by num_heads ({num_heads})")


def check_dropout(owner: str, **values: float) -> None:
    """Raise unless every given probability is in [0, 1)."""
    for name, p in values.items():
        if not 0.0 <= p < 1.0:
            raise ValueError(f"{owner}: {name} must be in [0, 1), got {p}")


def check_tokens(owner: str, idx: Tensor) -> None:
    """Raise unless ``idx`` is a non-empty (B, T) integer tensor."""
    if idx.dim() != 2:
        raise ValueError(f"{owner}: idx must be (B, T) token ids, got shape {tuple(idx.shape)}")
    if idx.dtype not in (torch.long, torch.int, torch.int16, torch.uint8):
        raise ValueError(f"{owner}: idx must hold integer token ids, got {idx.dtype}")
    if idx.shape[1] == 0:
        raise ValueError(f"{owner}: the sequence is empty (T = 0); give at least one token")
