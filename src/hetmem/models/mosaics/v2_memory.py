"""Memory Mosaics v2 memory pieces (thesis chapter 4; no v2 code is released): reads restricted
by lag, the short-term / long-term contextual memory split, and the SwiGLU persistent memory.

- Short-term memory: query t reads the pairs t-h+1 .. t-1 (window h = 256).
- Long-term memory: query t reads the pairs < t - m, with m ~ U[m_lo, m_hi] drawn per training
  sequence (64..256) and m = m_lo at inference. The two overlap because m < h.
- Their outputs are summed into the residual, each through its own projection (the thesis
  shows the combination only in its Fig. 4.3; this is the spec's default).

These pieces have no decoding cache (the v1 model's exact cache does not cover them).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hetmem.models.mosaics._checks import check_heads
from hetmem.models.mosaics.extractors import KeyExtractor, ValueExtractor
from hetmem.models.mosaics.v2_keys import AdaptiveBandwidth, GatedLeakyKey

__all__ = ["LagMemory", "MosaicV2Block", "ShortLongMemory", "SwiGLU", "lag_mask", "lagged_attention"]


def lag_mask(T: int, min_lag: int | Tensor, max_lag: int | None = None, *, device: torch.device | None = None) -> Tensor:
    """Boolean (B or 1, 1, T, T) mask: query t may read pair s iff ``min_lag <= t - s <= max_lag``.

    Args:
        T: sequence length.
        min_lag: >= 1 (a query never reads its own look-ahead value), an int or one per sequence (B,).
        max_lag: None for no upper limit.
    """
    steps = torch.arange(T, device=device)
    lag = steps[:, None] - steps[None, :]  # (T, T): t - s
    low = min_lag.view(-1, 1, 1, 1) if isinstance(min_lag, Tensor) else torch.tensor(min_lag, device=device)
    if bool((low < 1).any()):
        raise ValueError(f"lag_mask: min_lag must be >= 1 (a query never reads its own look-ahead value), got {min_lag}")
    allowed = lag >= low  # (T, T) or (B, 1, T, T)
    if max_lag is not None:
        allowed = allowed & (lag <= max_lag)
    return allowed.expand(-1 if allowed.dim() == 4 else 1, 1, T, T)


def lagged_attention(q: Tensor, k: Tensor, v: Tensor, allowed: Tensor, *, scale: float = 1.0, dropout_p: float = 0.0) -> Tensor:
    """Softmax read restricted by a :func:`lag_mask`; a query allowed no pair outputs 0.

    Shapes:
        q, k: (B, H, T, hk); v: (B, H, T, hv); allowed: (B or 1, 1, T, T) -> (B, H, T, hv).
    """
    empty = ~allowed.any(-1, keepdim=True)  # (B or 1, 1, T, 1)
    first = torch.zeros(allowed.shape[-1], dtype=torch.bool, device=allowed.device)
    first[0] = True
    safe = allowed | (empty & first)  # an empty row reads position 0, then is zeroed: no NaN, no NaN gradient
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=safe, scale=scale, dropout_p=dropout_p)  # explicit mask: math path
    return y.masked_fill(empty, 0.0)


class LagMemory(nn.Module):
    """One set of contextual memory units whose queries read pairs within a lag range.

    Keys: v1 leaky keys (:class:`KeyExtractor`, learned scale) or, with ``gated_keys``, v2
    gated keys (:class:`GatedLeakyKey`); with ``adaptive_bandwidth`` the scores are multiplied
    by beta(n) (:class:`AdaptiveBandwidth`), n the pairs each query reads. Values: v1
    look-ahead values (:class:`ValueExtractor`, Eq. 4.5 equals the code's convex mix).

    Shapes:
        x: (B, T, d), min_lag: int or (B,) -> (B, T, d).
    """

    def __init__(self, dim: int, num_heads: int, *, gated_keys: bool = True, adaptive_bandwidth: bool = True,
                 attn_dropout: float = 0.0, bias: bool = False) -> None:
        super().__init__()
        check_heads("LagMemory", dim, num_heads)
        self.attn_dropout = attn_dropout
        self.key = GatedLeakyKey(dim, num_heads, bias=bias) if gated_keys else KeyExtractor(dim, num_heads, bias=bias)
        self.bandwidth = AdaptiveBandwidth(num_heads) if adaptive_bandwidth else None
        self.value = ValueExtractor(dim, num_heads, bias=bias)
        self.c_proj = nn.Linear(dim, dim, bias=bias)

    def forward(self, x: Tensor, min_lag: int | Tensor, max_lag: int | None = None) -> Tensor:
        B, T, C = x.shape
        keys, _ = self.key(x)  # (B, H, T, h)
        values = self.value(x)  # (B, H, T, h); the last is never read (min_lag >= 1)
        allowed = lag_mask(T, min_lag, max_lag, device=x.device)  # (B or 1, 1, T, T)
        queries = keys
        if self.bandwidth is not None:
            counts = allowed.sum(-1).squeeze(1)  # (B or 1, T): pairs each query reads
            queries = keys * self.bandwidth(counts)[..., None]  # (B, H, T, h)
        dropout_p = self.attn_dropout if self.training else 0.0
        y = lagged_attention(queries, keys, values, allowed, dropout_p=dropout_p)  # (B, H, T, h)
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


class ShortLongMemory(nn.Module):
    """v2 contextual memory: a short-term and a long-term :class:`LagMemory`, outputs summed.

    Args:
        dim, num_heads: width and heads of each of the two memories.
        window: h, the short-term memory reads lags 1 .. h-1 (thesis 256).
        long_lag: (m_lo, m_hi); the long-term memory reads lags > m, m ~ U{m_lo..m_hi} per
            training sequence, m = m_lo in eval mode (thesis 64, 256).
        **options: for both :class:`LagMemory` (gated_keys, adaptive_bandwidth, attn_dropout, bias).

    Example:
        >>> mem = ShortLongMemory(8, 2, window=4, long_lag=(2, 3)).eval()
        >>> mem(torch.randn(2, 9, 8)).shape
        torch.Size([2, 9, 8])
    """

    def __init__(self, dim: int, num_heads: int, *, window: int = 256, long_lag: tuple[int, int] = (64, 256), **options) -> None:
        super().__init__()
        if window < 2 or not 0 <= long_lag[0] <= long_lag[1]:
            raise ValueError(f"ShortLongMemory: need window >= 2 and 0 <= m_lo <= m_hi, got window={window}, long_lag={long_lag}")
        self.window = window
        self.long_lag = tuple(long_lag)
        self.short = LagMemory(dim, num_heads, **options)
        self.long = LagMemory(dim, num_heads, **options)

    def forward(self, x: Tensor) -> Tensor:
        B = x.shape[0]
        m_lo, m_hi = self.long_lag
        m = torch.randint(m_lo, m_hi + 1, (B,), device=x.device) if self.training else m_lo
        return self.short(x, 1, self.window - 1) + self.long(x, m + 1)


class SwiGLU(nn.Module):
    """v2 persistent memory: a SwiGLU feed-forward network, ``W_2 (silu(W_1 x) * W_3 x)``.

    Example:
        >>> SwiGLU(8, 20)(torch.randn(2, 3, 8)).shape
        torch.Size([2, 3, 8])
    """

    def __init__(self, dim: int, hidden: int, *, bias: bool = False) -> None:
        super().__init__()
        if dim < 1 or hidden < 1:
            raise ValueError(f"SwiGLU: dim and hidden must be >= 1, got {dim}, {hidden}")
        self.w1 = nn.Linear(dim, hidden, bias=bias)
        self.w3 = nn.Linear(dim, hidden, bias=bias)
        self.w2 = nn.Linear(hidden, dim, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class MosaicV2Block(nn.Module):
    """Pre-LN v2 block: ``x = x + ShortLong(LN1(x)); x = x + SwiGLU(LN2(x))``.

    Example:
        >>> MosaicV2Block(8, 2, hidden=16, window=4, long_lag=(2, 3))(torch.randn(2, 6, 8)).shape
        torch.Size([2, 6, 8])
    """

    def __init__(self, dim: int, num_heads: int, *, hidden: int | None = None, bias: bool = False, **memory_options) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim, bias=bias)
        self.memory = ShortLongMemory(dim, num_heads, bias=bias, **memory_options)
        self.ln2 = nn.LayerNorm(dim, bias=bias)
        self.ffn = SwiGLU(dim, hidden or 4 * dim, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.memory(self.ln1(x))
        return x + self.ffn(self.ln2(x))
