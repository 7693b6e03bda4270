"""Causal attention reads on PyTorch's fused SDPA path, for a whole sequence or a chunk of it.

A chunk of T queries sits at the last T positions of a stream whose earlier entries may come
from a cache, so the masks here are aligned bottom-right: query i of the chunk is at stream
position ``n + i``, with n entries before the chunk. Two reads:

- :func:`causal_attention` (GPT): query ``n + i`` reads positions ``<= n + i``.
- :func:`past_attention` (Memory Mosaic context memory): query ``n + i`` reads positions
  ``< n + i`` only (its own value looks one step ahead), and a query with nothing before it
  (position 0) returns zeros instead of the NaN of an all-masked softmax.

With no cache (n = 0) both run ``is_causal=True`` on square inputs; the strict read uses the
shifted form of spec section 2.2 step 5, ``SDPA(q[1:], k[:-1], v[:-1], is_causal=True)``, which
equals the strictly lower-triangular mask and keeps PyTorch on its fused kernel (an explicit
mask, or dropout, sends CPU SDPA to the slow math path: spec trap 13). One query (decoding)
needs no mask at all; only a chunk appended to a non-empty cache uses an explicit mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["causal_attention", "past_attention", "past_attention_reference"]


def _bottom_right_mask(T: int, S: int, device: torch.device) -> Tensor:
    """(T, S) boolean mask, True where query i (at position S - T + i) may read key j <= S - T + i."""
    rows = torch.arange(T, device=device)[:, None] + (S - T)
    return torch.arange(S, device=device)[None, :] <= rows


def causal_attention(q: Tensor, k: Tensor, v: Tensor, *, scale: float | None = None, dropout_p: float = 0.0) -> Tensor:
    """Softmax attention of T queries over S >= T keys, query i reading keys ``<= S - T + i``.

    Shapes:
        q: (B, H, T, hk); k: (B, H, S, hk); v: (B, H, S, hv) -> (B, H, T, hv).
    """
    T, S = q.shape[-2], k.shape[-2]
    if S < T:
        raise ValueError(f"causal_attention: need at least as many keys as queries, got T={T}, S={S}")
    if S == T:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale, dropout_p=dropout_p)
    if T == 1:  # the newest position reads everything
        return F.scaled_dot_product_attention(q, k, v, scale=scale, dropout_p=dropout_p)
    mask = _bottom_right_mask(T, S, q.device)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale, dropout_p=dropout_p)


def past_attention(q: Tensor, k: Tensor, v: Tensor, *, scale: float = 1.0, dropout_p: float = 0.0) -> Tensor:
    """Strictly causal read: query i (stream position n + i) reads the n + i entries before it.

    .. math::
        y_t = \\sum_{s < t} \\mathrm{softmax}_s(\\mathrm{scale}\\; q_t \\cdot k_s)\\, v_s, \\qquad y_0 = 0

    Args:
        q: (B, H, T, hk) queries at stream positions n .. n+T-1.
        k, v: (B, H, n + T - 1, hk / hv) keys and values at positions 0 .. n+T-2 (the entry
            of the newest position is never read, so it is not passed). For a whole sequence
            (n = 0) that is ``k[:, :, :-1]`` and ``v[:, :, :-1]``.
        scale: multiplies the scores (1 in Memory Mosaics: the keys carry their own scale).
        dropout_p: dropout on the attention probabilities (pass 0 in eval mode).

    Returns:
        (B, H, T, hv); row 0 is zeros when n = 0.

    Example:
        >>> q = torch.randn(1, 1, 4, 2)
        >>> y = past_attention(q, q[:, :, :-1], torch.ones(1, 1, 3, 2))
        >>> [round(v, 4) for v in y[0, 0, :, 0].tolist()]  # nothing to read at t = 0; then an average of ones
        [0.0, 1.0, 1.0, 1.0]
    """
    T, S = q.shape[-2], k.shape[-2]
    n = S - T + 1
    if n < 0 or v.shape[-2] != S:
        raise ValueError(f"past_attention: k and v must hold n + T - 1 >= T - 1 entries, got T={T}, k {S}, v {v.shape[-2]}")
    if n > 0:
        return causal_attention(q, k, v, scale=scale, dropout_p=dropout_p)
    out_shape = (*q.shape[:-1], v.shape[-1])
    if T == 1:
        return q.new_zeros(out_shape)
    y = F.scaled_dot_product_attention(q[:, :, 1:], k, v, is_causal=True, scale=scale, dropout_p=dropout_p)  # (B, H, T-1, hv)
    return F.pad(y, (0, 0, 1, 0))  # (B, H, T, hv): row 0 = 0


def past_attention_reference(q: Tensor, k: Tensor, v: Tensor, *, scale: float = 1.0) -> Tensor:
    """:func:`past_attention` for a whole sequence as a plain masked softmax (tests only).

    Shapes:
        q, k: (B, H, T, hk); v: (B, H, T, hv), all of the same T positions -> (B, H, T, hv).
    """
    T = q.shape[-2]
    scores = scale * q @ k.transpose(-1, -2)  # (B, H, T, T)
    allowed = torch.ones(T, T, dtype=torch.bool, device=q.device).tril(diagonal=-1)  # s < t
    weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)  # row 0: NaN
    return torch.nan_to_num(weights, nan=0.0) @ v
