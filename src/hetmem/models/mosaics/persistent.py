"""The persistent memory layer: key/value slots learned by gradient, the FFN's replacement.

Relation to hetmem's other memories: the read is an attention of every token over learned
slots, like the read of HMA's :class:`~hetmem.memory.ClassMemorySlots` through
:func:`hetmem.attention.memory_attention`, but with no self key, no class labels, scale 1
instead of 1 / sqrt(h) (the keys carry a learned s_k^2), leaky-average keys and a learned
output scale, so it is written here on SDPA directly. Because the slots are the same for every
token, the B * T queries of a head are one long query sequence against its P slots (no
(B, H, P, h) expansion of the slots, no mask).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hetmem.models.mosaics.cache import PersistentCache
from hetmem.models.mosaics._checks import check_heads
from hetmem.models.mosaics.extractors import EXP_SCALE, KeyExtractor

__all__ = ["PersistentMemory", "default_pmem_size"]


def default_pmem_size(dim: int) -> int:
    """P = 3.5 d slots per head (2688 for d = 768): makes a Memory Mosaic block 12 d^2, a GPT block's size."""
    return int(round(3.5 * dim))


class PersistentMemory(nn.Module):
    """Persistent memory units (thesis section 3.4, the official ``PersistentAssoMemBlock``).

    .. math::
        y_t = s_v \\cdot \\frac{1}{R} \\sum_{r=1}^{R} \\mathrm{softmax}(k_t M_k^{(r)\\top})\\, M_v^{(r)}, \\qquad
        z_t = W_z\\, \\mathrm{concat}_h(y_t^{(h)})

    with keys ``k_t = s_k^2 Norm(leaky(W_k x)_t)`` (:class:`KeyExtractor`, power 2, its own
    parameters), R = ``pmem_count`` independent slot arrays M_k, M_v of shape (H, P, h)
    (init std 1 / sqrt(h)), output scale s_v = exp(10 p_v) (p_v init -0.05) and no mask.

    Args:
        dim: model width d.
        num_heads: heads H.
        pmem_size: slots P per head (default :func:`default_pmem_size`).
        pmem_count: R independent slot arrays whose reads are averaged (default 1).
        attn_dropout: dropout on the slot probabilities (``ic_dropout``; only when > 0).
        resid_dropout: dropout after ``c_proj``.
        bias: bias in the linear maps.
        **key_options: ``max_log_scale``, ``leaky_mode``, ``leaky_chunk`` of the :class:`KeyExtractor`.

    Shapes:
        x: (B, T, d) -> (B, T, d); a :class:`PersistentCache` carries the leaky key sum.

    Example:
        >>> mem = PersistentMemory(8, 2, pmem_size=6, resid_dropout=0.0)
        >>> mem(torch.randn(3, 5, 8)).shape, tuple(mem.M_k.shape)
        (torch.Size([3, 5, 8]), (1, 2, 6, 4))
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        pmem_size: int | None = None,
        pmem_count: int = 1,
        attn_dropout: float = 0.05,
        resid_dropout: float = 0.05,
        bias: bool = False,
        **key_options: Any,
    ) -> None:
        super().__init__()
        check_heads("PersistentMemory", dim, num_heads)
        pmem_size = default_pmem_size(dim) if pmem_size is None else pmem_size
        if pmem_size < 1 or pmem_count < 1:
            raise ValueError(f"PersistentMemory: pmem_size and pmem_count must be >= 1, got {pmem_size}, {pmem_count}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.pmem_size = pmem_size
        self.pmem_count = pmem_count
        self.attn_dropout = attn_dropout
        self.key = KeyExtractor(dim, num_heads, scale_power=2, bias=bias, **key_options)
        self.M_k = nn.Parameter(torch.empty(pmem_count, num_heads, pmem_size, self.head_dim))
        self.M_v = nn.Parameter(torch.empty(pmem_count, num_heads, pmem_size, self.head_dim))
        self.value_beta = nn.Parameter(torch.empty(num_heads))
        self.c_proj = nn.Linear(dim, dim, bias=bias)
        self.resid_drop = nn.Dropout(resid_dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.M_k, std=1 / math.sqrt(self.head_dim))
        nn.init.normal_(self.M_v, std=1 / math.sqrt(self.head_dim))
        with torch.no_grad():
            self.value_beta.fill_(-0.5 / EXP_SCALE)

    def forward(self, x: Tensor, cache: PersistentCache | None = None) -> Tensor:
        B, T, C = x.shape
        H, R, h = self.num_heads, self.pmem_count, self.head_dim
        if T == 0:
            raise ValueError("PersistentMemory: the sequence is empty (T = 0)")
        keys, leaky = self.key(x, None if cache is None else cache.leaky)  # (B, H, T, h)
        if cache is not None:
            cache.leaky = leaky
        queries = keys.transpose(0, 1).reshape(1, H, B * T, h).expand(R, H, B * T, h)  # (R, H, B*T, h)
        dropout_p = self.attn_dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(queries, self.M_k, self.M_v, scale=1.0, dropout_p=dropout_p)  # (R, H, B*T, h)
        y = y.mean(0) * torch.exp(self.value_beta * EXP_SCALE)[:, None, None]  # (H, B*T, h)
        y = y.view(H, B, T, h).permute(1, 2, 0, 3).reshape(B, T, C)  # (B, T, d)
        return self.resid_drop(self.c_proj(y))

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, pmem_size={self.pmem_size}, pmem_count={self.pmem_count}"
