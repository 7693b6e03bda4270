"""Memory Mosaics v2 memories (thesis chapter 4; no v2 code is released): the short-term /
long-term contextual memory split, and the v2 block with its SwiGLU persistent memory.

- Short-term memory: query t reads the pairs t-h+1 .. t-1 (window h = 256).
- Long-term memory: query t reads the pairs < t - m, with m ~ U[m_lo, m_hi] drawn per training
  sequence (64..256) and m = m_lo at inference. The two overlap because m < h.
- Their outputs are summed into the residual, each through its own projection (the thesis
  shows the combination only in its Fig. 4.3; this is the spec's default).

Each memory takes a :class:`~hetmem.models.mosaics.cache.LagCache` for exact incremental
decoding (eval mode only: in training m is random).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from hetmem.models.mosaics._checks import check_dropout, check_heads
from hetmem.models.mosaics.cache import LagCache
from hetmem.models.mosaics.extractors import KeyExtractor, ValueExtractor
from hetmem.models.mosaics.ffn import SwiGLU
from hetmem.models.mosaics.leaky import LEAKY_MODES, LeakyMode
from hetmem.models.mosaics.v2_keys import AdaptiveBandwidth, GatedLeakyKey
from hetmem.models.mosaics.v2_read import lag_counts, lag_read

__all__ = ["LagMemory", "MosaicV2Block", "ShortLongMemory", "check_long_lag"]

V2Cache = tuple[LagCache, LagCache]  # (short, long) of one block


class LagMemory(nn.Module):
    """One set of contextual memory units whose queries read pairs within a lag range.

    Keys: v1 leaky keys (:class:`KeyExtractor`, learned scale) or, with ``gated_keys``, v2
    gated keys (:class:`GatedLeakyKey`); with ``adaptive_bandwidth`` the scores are multiplied
    by beta(n) (:class:`AdaptiveBandwidth`), n the pairs each query reads. Values: v1
    look-ahead values (:class:`ValueExtractor`, Eq. 4.5 equals the code's convex mix).

    Args:
        dim, num_heads: width d and heads H.
        gated_keys: v2 gated keys (True) or v1 leaky keys.
        adaptive_bandwidth: multiply the scores by beta(n).
        attn_dropout: on the attention probabilities (training only).
        bias: bias in the linear maps.
        leaky_mode, leaky_chunk: how the leaky key average is computed
            (:func:`~hetmem.models.mosaics.v2_keys.gated_leaky_average`).

    Shapes:
        x: (B, T, d), min_lag: int or (B,) -> (B, T, d). With a :class:`LagCache`, x is the next
        T positions of a stream whose earlier positions the cache holds (updated in place).
    """

    def __init__(self, dim: int, num_heads: int, *, gated_keys: bool = True, adaptive_bandwidth: bool = True,
                 attn_dropout: float = 0.0, bias: bool = False, leaky_mode: LeakyMode = "chunked", leaky_chunk: int = 64) -> None:
        super().__init__()
        check_heads("LagMemory", dim, num_heads)
        if leaky_mode not in LEAKY_MODES:
            raise ValueError(f"LagMemory: leaky_mode must be one of {LEAKY_MODES}, got {leaky_mode!r}")
        if not isinstance(leaky_chunk, int) or leaky_chunk < 1:
            raise ValueError(f"LagMemory: leaky_chunk must be a positive int, got {leaky_chunk!r}")
        self.attn_dropout = attn_dropout
        key_options: dict[str, Any] = dict(bias=bias, leaky_mode=leaky_mode, leaky_chunk=leaky_chunk)
        self.key = GatedLeakyKey(dim, num_heads, **key_options) if gated_keys else KeyExtractor(dim, num_heads, **key_options)
        self.bandwidth = AdaptiveBandwidth(num_heads) if adaptive_bandwidth else None
        self.value = ValueExtractor(dim, num_heads, bias=bias)
        self.c_proj = nn.Linear(dim, dim, bias=bias)

    def forward(self, x: Tensor, min_lag: int | Tensor, max_lag: int | None = None, cache: LagCache | None = None) -> Tensor:
        B, T, C = x.shape
        keys, leaky = self.key(x, None if cache is None else cache.leaky)  # (B, H, T, h), (B, H, h)
        now, ahead = self.value.parts(x)  # (B, H, T, h) each: v_t = finish(now_t, ahead_{t+1})
        values = self.value.finish(now[:, :, :-1], ahead[:, :, 1:])  # (B, H, T-1, h): positions n .. n+T-2
        n = 0 if cache is None else cache.length
        if cache is None:
            past_keys, past_values, key_start = keys[:, :, :-1], values, 0  # the newest key is never read
        else:
            if cache.pending is not None:
                values = torch.cat([self.value.finish(cache.pending, ahead[:, :, :1]), values], dim=2)  # completes v_{n-1}
            if max_lag is not None:  # a window: pairs before n - max_lag are read by no query from n on
                cache.keys.drop_before(n - max_lag)
                cache.values.drop_before(n - max_lag)
            cache.keys.append(keys)
            cache.values.append(values)
            cache.leaky, cache.pending = leaky, now[:, :, -1:]
            key_start = max(cache.keys.start, cache.values.start)
            past_keys = cache.keys.view()[:, :, key_start - cache.keys.start : n + T - 1 - cache.keys.start]
            past_values = cache.values.view()[:, :, key_start - cache.values.start :]
        queries = keys
        if self.bandwidth is not None:
            counts = lag_counts(T, min_lag, max_lag, offset=n, device=x.device)  # (B or 1, T): pairs each query reads
            queries = keys * self.bandwidth(counts)[..., None]  # (B, H, T, h): scores beta(n) k_t . k_s
        dropout_p = self.attn_dropout if self.training else 0.0
        y = lag_read(queries, past_keys, past_values, min_lag, max_lag, offset=n, key_start=key_start, dropout_p=dropout_p)
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))  # (B, T, d)


class ShortLongMemory(nn.Module):
    """v2 contextual memory: a short-term and a long-term :class:`LagMemory`, outputs summed.

    Args:
        dim, num_heads: width and heads of each of the two memories.
        window: h, the short-term memory reads lags 1 .. h-1 (thesis 256).
        long_lag: (m_lo, m_hi); the long-term memory reads lags > m, m ~ U{m_lo..m_hi} per
            training sequence, m = m_lo in eval mode (thesis 64, 256).
        use_long: read the long-term memory (False: the short-term memory alone, the thesis's
            "long-term memory removed" evaluation; see also :meth:`set_long_memory`).
        **options: for both :class:`LagMemory` (gated_keys, adaptive_bandwidth, attn_dropout,
            bias, leaky_mode, leaky_chunk).

    Shapes:
        x: (B, T, d) -> (B, T, d); cache: a (short, long) pair of :class:`LagCache`.

    Example:
        >>> mem = ShortLongMemory(8, 2, window=4, long_lag=(2, 3)).eval()
        >>> mem(torch.randn(2, 9, 8)).shape
        torch.Size([2, 9, 8])
    """

    def __init__(self, dim: int, num_heads: int, *, window: int = 256, long_lag: tuple[int, int] = (64, 256),
                 use_long: bool = True, **options: Any) -> None:
        super().__init__()
        check_long_lag("ShortLongMemory", window, long_lag)
        self.window = window
        self.long_lag = tuple(long_lag)
        self.use_long = use_long
        self.short = LagMemory(dim, num_heads, **options)
        self.long = LagMemory(dim, num_heads, **options)

    def set_long_memory(self, on: bool) -> None:
        """Reads the long-term memory (True) or not (False, the short-term memory alone)."""
        self.use_long = bool(on)

    def forward(self, x: Tensor, cache: V2Cache | None = None) -> Tensor:
        B = x.shape[0]
        if cache is not None and self.training:
            raise ValueError("ShortLongMemory: decoding caches work in eval mode only (in training the long lag m is random)")
        short_cache, long_cache = (None, None) if cache is None else cache
        out = self.short(x, 1, self.window - 1, short_cache)
        if not self.use_long:
            return out
        if cache is not None and long_cache.length != short_cache.length - x.shape[1]:
            raise ValueError("ShortLongMemory: the long-term memory was switched on in the middle of a cached stream; start a new cache")
        m_lo, m_hi = self.long_lag
        m = torch.randint(m_lo, m_hi + 1, (B,), device=x.device) if self.training and m_hi > m_lo else m_lo
        return out + self.long(x, m + 1, None, long_cache)

    def extra_repr(self) -> str:
        return f"window={self.window}, long_lag={self.long_lag}, use_long={self.use_long}"


def check_long_lag(owner: str, window: int, long_lag: tuple[int, int]) -> None:
    """Raise unless window >= 2 and 0 <= m_lo <= m_hi <= window (no lag read by neither memory but lag h)."""
    if not isinstance(window, int) or window < 2:
        raise ValueError(f"{owner}: the short window must be an int >= 2 (it reads lags 1 .. window-1), got {window!r}")
    if len(long_lag) != 2 or not all(isinstance(m, int) for m in long_lag) or not 0 <= long_lag[0] <= long_lag[1]:
        raise ValueError(f"{owner}: long_lag must be two ints 0 <= m_lo <= m_hi, got {tuple(long_lag)!r}")
    if long_lag[1] > window:
        raise ValueError(
            f"{owner}: long_lag's m_hi ({long_lag[1]}) must be <= the short window ({window}): the long-term memory reads lags > m, "
            "the short-term memory lags < window, and lags in between would be read by neither (thesis: m in [64, 256], window 256)"
        )


class MosaicV2Block(nn.Module):
    """Pre-LN v2 block: ``x = x + drop(ShortLong(LN1(x))); x = x + drop(SwiGLU(LN2(x)))``.

    Args:
        dim, num_heads: width d and heads H of each memory.
        hidden: SwiGLU hidden width (default 3 d, the thesis's Small ratio 6144 / 2048).
        bias: bias in the linear maps and LayerNorms.
        resid_dropout: dropout on both residual branches.
        **memory_options: for :class:`ShortLongMemory` (window, long_lag, use_long, gated_keys,
            adaptive_bandwidth, attn_dropout, leaky_mode, leaky_chunk).

    Example:
        >>> MosaicV2Block(8, 2, hidden=16, window=4, long_lag=(2, 3))(torch.randn(2, 6, 8)).shape
        torch.Size([2, 6, 8])
    """

    def __init__(self, dim: int, num_heads: int, *, hidden: int | None = None, bias: bool = False, resid_dropout: float = 0.0,
                 **memory_options: Any) -> None:
        super().__init__()
        check_dropout("MosaicV2Block", resid_dropout=resid_dropout)
        self.ln1 = nn.LayerNorm(dim, eps=1e-5, bias=bias)
        self.memory = ShortLongMemory(dim, num_heads, bias=bias, **memory_options)
        self.ln2 = nn.LayerNorm(dim, eps=1e-5, bias=bias)
        self.ffn = SwiGLU(dim, hidden or 3 * dim, bias=bias)
        self.resid_drop = nn.Dropout(resid_dropout)

    def new_cache(self) -> V2Cache:
        return LagCache(), LagCache()

    def forward(self, x: Tensor, cache: V2Cache | None = None) -> Tensor:
        x = x + self.resid_drop(self.memory(self.ln1(x), cache))
        return x + self.resid_drop(self.ffn(self.ln2(x)))
