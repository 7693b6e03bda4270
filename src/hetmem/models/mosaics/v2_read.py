"""Reads restricted by lag, for Memory Mosaics v2's short- and long-term memories, over a whole
sequence or a chunk of a stream whose earlier pairs sit in a cache.

Query t reads pair s iff ``min_lag <= t - s <= max_lag`` (min_lag >= 1: a query never reads
its own look-ahead value). Positions are stream positions: the T queries are at
``offset .. offset + T - 1`` and the S keys at ``key_start .. key_start + S - 1``, so a
cached decoder reads exactly what the full pass reads. Three paths, tested equal:

- one query (decoding): the readable keys are one contiguous slice, read with no mask;
- a whole sequence whose lag range covers it (one min_lag, max_lag None or >= T - 1): the
  shifted causal form ``SDPA(q[lo:], k[:T-lo], v[:T-lo], is_causal=True)``, rows < lo zero;
- anything else (a window shorter than the sequence, one min_lag per sequence in training, a
  chunk after a cache): an explicit boolean mask (PyTorch's fused CPU and CUDA kernels take it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["lag_counts", "lag_mask", "lag_read", "lagged_attention"]


def _check_min_lag(min_lag: int | Tensor) -> None:
    if (min_lag < 1) if isinstance(min_lag, int) else bool((min_lag < 1).any()):
        raise ValueError(f"lag_mask: min_lag must be >= 1 (a query never reads its own look-ahead value), got {min_lag}")


def lag_mask(
    T: int,
    min_lag: int | Tensor,
    max_lag: int | None = None,
    *,
    offset: int = 0,
    key_start: int = 0,
    num_keys: int | None = None,
    device: torch.device | None = None,
) -> Tensor:
    """Boolean (B or 1, 1, T, S) mask: query t may read pair s iff ``min_lag <= t - s <= max_lag``.

    Args:
        T: queries, at stream positions ``offset .. offset + T - 1``.
        min_lag: >= 1, an int or one per sequence (B,).
        max_lag: None for no upper limit.
        offset: stream position of the first query.
        key_start: stream position of the first key.
        num_keys: S (default ``offset + T - key_start``: every position up to the last query).
        device: of the mask.

    Example:
        >>> lag_mask(4, 2)[0, 0].int().tolist()
        [[0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0], [1, 1, 0, 0]]
    """
    _check_min_lag(min_lag)
    S = offset + T - key_start if num_keys is None else num_keys
    rows = torch.arange(offset, offset + T, device=device)
    cols = torch.arange(key_start, key_start + S, device=device)
    lag = rows[:, None] - cols[None, :]  # (T, S): t - s
    low = min_lag.to(device).view(-1, 1, 1, 1) if isinstance(min_lag, Tensor) else min_lag
    allowed = lag >= low  # (T, S) or (B, 1, T, S)
    if max_lag is not None:
        allowed = allowed & (lag <= max_lag)
    return allowed.expand(-1 if allowed.dim() == 4 else 1, 1, T, S)


def lag_counts(T: int, min_lag: int | Tensor, max_lag: int | None = None, *, offset: int = 0, device: torch.device | None = None) -> Tensor:
    """Pairs each query reads: ``#{s >= 0 : min_lag <= t - s <= max_lag}`` for t = offset .. offset + T - 1.

    Short-term memory (lags 1 .. h-1): min(t, h - 1); long-term memory (lags > m): max(0, t - m).

    Returns:
        (B or 1, T) integer counts.

    Example:
        >>> lag_counts(5, 1, 2).tolist(), lag_counts(5, 3).tolist()
        ([[0, 1, 2, 2, 2]], [[0, 0, 0, 1, 2]])
    """
    t = torch.arange(offset, offset + T, device=device)[None, :]  # (1, T)
    low = min_lag.to(device).view(-1, 1) if isinstance(min_lag, Tensor) else min_lag
    count = (t - low + 1).clamp(min=0)
    if max_lag is not None:
        count = count - (t - max_lag).clamp(min=0)
    return count.expand(count.shape[0], T)


def lagged_attention(q: Tensor, k: Tensor, v: Tensor, allowed: Tensor, *, scale: float = 1.0, dropout_p: float = 0.0) -> Tensor:
    """Softmax read restricted by a :func:`lag_mask`; a query allowed no pair outputs 0.

    Shapes:
        q: (B, H, T, hk); k: (B, H, S, hk); v: (B, H, S, hv); allowed: (B or 1, 1, T, S) -> (B, H, T, hv).
    """
    empty = ~allowed.any(-1, keepdim=True)  # (B or 1, 1, T, 1)
    first = torch.zeros(allowed.shape[-1], dtype=torch.bool, device=allowed.device)
    first[0] = True
    safe = allowed | (empty & first)  # an empty row reads position 0, then is zeroed: no NaN, no NaN gradient
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=safe, scale=scale, dropout_p=dropout_p)
    return y.masked_fill(empty, 0.0)


def lag_read(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    min_lag: int | Tensor,
    max_lag: int | None = None,
    *,
    offset: int = 0,
    key_start: int = 0,
    dropout_p: float = 0.0,
) -> Tensor:
    """``y_t = sum_s softmax_s(q_t . k_s) v_s`` over the pairs s that query t may read (scale 1).

    Args:
        q: (B, H, T, hk) queries at stream positions ``offset ..``.
        k, v: (B, H, S, hk / hv) pairs at stream positions ``key_start ..``.
        min_lag, max_lag: the lag range (see :func:`lag_mask`).
        dropout_p: on the attention probabilities.

    Returns:
        (B, H, T, hv), zero where a query reads nothing.
    """
    T, S = q.shape[2], k.shape[2]
    if isinstance(min_lag, Tensor) and min_lag.numel() == 1:
        min_lag = int(min_lag)
    if isinstance(min_lag, int):
        _check_min_lag(min_lag)
        if T == 1:  # decoding: one contiguous slice of readable pairs, no mask
            first = key_start if max_lag is None else max(key_start, offset - max_lag)
            last = min(offset - min_lag, key_start + S - 1)
            if last < first:
                return q.new_zeros(*q.shape[:-1], v.shape[-1])
            a, b = first - key_start, last - key_start + 1
            return F.scaled_dot_product_attention(q, k[:, :, a:b], v[:, :, a:b], scale=1.0, dropout_p=dropout_p)
        if offset == 0 and key_start == 0 and (max_lag is None or max_lag >= T - 1):
            lo = min_lag
            if lo >= T:
                return q.new_zeros(*q.shape[:-1], v.shape[-1])
            y = F.scaled_dot_product_attention(q[:, :, lo:], k[:, :, : T - lo], v[:, :, : T - lo], is_causal=True, scale=1.0, dropout_p=dropout_p)
            return F.pad(y, (0, 0, lo, 0))  # (B, H, T, hv): rows < lo read nothing
    if S == 0:
        return q.new_zeros(*q.shape[:-1], v.shape[-1])
    allowed = lag_mask(T, min_lag, max_lag, offset=offset, key_start=key_start, num_keys=S, device=q.device)
    return lagged_attention(q, k, v, allowed, dropout_p=dropout_p)
