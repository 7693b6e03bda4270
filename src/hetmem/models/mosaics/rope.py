"""Rotary position embedding (RoPE; Su et al. 2021, arXiv 2104.09864), the Llama baseline's positions.

Each pair of channels (i, i + h/2) of a query or key at position p is rotated by the angle
``p * base^(-2i/h)``, so the score ``q_p . k_s`` depends on p - s only. No table has a row
per position: any position works, and a cached decoder rotates each new key once, at its
absolute position (the half-split pairing of GPT-NeoX / Llama's Hugging Face port).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["apply_rotary", "rotary_angles"]


def rotary_angles(positions: Tensor, head_dim: int, *, base: float = 10000.0, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """cos and sin of the rotation angles, each (T, head_dim / 2).

    Args:
        positions: (T,) integer positions.
        head_dim: h, even.
        base: the frequency base (10000 in Llama).
        dtype: of the returned tables.

    Example:
        >>> cos, sin = rotary_angles(torch.arange(3), 4)
        >>> cos.shape, float(cos[0, 0]), round(float(sin[1, 0]), 4)
        (torch.Size([3, 2]), 1.0, 0.8415)
    """
    if head_dim % 2:
        raise ValueError(f"rotary_angles: the head width must be even for rotary positions, got {head_dim}")
    inv_freq = base ** (-torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float64) / head_dim)  # (h/2,)
    angles = positions.to(torch.float64)[:, None] * inv_freq[None, :]  # (T, h/2), float64: exact at long positions
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotates channel pairs (i, i + h/2) of x by the given angles.

    Shapes:
        x: (B, H, T, h); cos, sin: (T, h/2) -> (B, H, T, h).
    """
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
