"""Attention of B one-token queries over their context and a memory shared by all of them.

Two contexts cover every read in hetmem:

- ``"single"``: query i sees its own key and the M memory keys (HMA's RMA read; SMA in the
  batch-independent mode). Its output never depends on the other rows of the batch.
- ``"batch"``: query i sees all B batch keys and the M memory keys (attention between
  datapoints, HMA's SMA read as in the paper).

The memory is projected once and shared by all B queries: nothing here materialises B copies
of it, which is what the paper's formula (repeat the memory B times) and the reference code do.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["Context", "memory_attention"]

Context = Literal["single", "batch"]


def memory_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    k_mem: Tensor,
    v_mem: Tensor,
    *,
    context: Context = "single",
    dropout_p: float = 0.0,
    fused: bool = True,
    need_weights: bool = False,
    scale: float | None = None,
    memory_mask: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Multi-head attention of one-token queries over [context; shared memory].

    Scores are scaled by ``scale``, by default 1 / sqrt(head_dim), the standard choice (the
    reference code divides by sqrt(model width); cosine scores pass 1 and put a learned
    temperature into the queries).

    Args:
        q: per-row queries (B, H, hd).
        k, v: per-row keys and values, each (B, H, hd); in the ``"batch"`` context they may
            come from B' other rows (e.g. the batch of every process), each (B', H, hd).
        k_mem, v_mem: memory keys and values shared by all rows, each (H, M, hd); M may be 0.
        context: ``"single"`` or ``"batch"``, see the module docstring.
        dropout_p: dropout on the attention weights (pass 0.0 in eval mode).
        fused: for ``"batch"``, use ``F.scaled_dot_product_attention`` unless ``need_weights``.
        need_weights: also return the attention weights (forces the manual path).
        scale: multiplier of the scores; None for 1 / sqrt(head_dim).
        memory_mask: ``"single"`` only: (B, M) booleans, True where row i must not read
            memory row j (its weight is 0). The row's own key is never masked.

    Returns:
        ``(out, weights)``: out (B, H, hd); weights (H, B, K) or None, where the K keys are
        ``[self, memory...]`` (K = 1 + M) for ``"single"`` and ``[batch..., memory...]``
        (K = B' + M) for ``"batch"``.
    """
    if context not in ("single", "batch"):
        raise ValueError(f"memory_attention: context must be 'single' or 'batch', got {context!r}")
    B, H, hd = q.shape
    scale = hd**-0.5 if scale is None else scale
    if memory_mask is not None and context != "single":
        raise ValueError("memory_attention: memory_mask is only supported in the 'single' context")
    if context == "batch":
        q_h = q.transpose(0, 1)  # (H, B, hd)
        keys = torch.cat([k.transpose(0, 1), k_mem], dim=1)  # (H, B' + M, hd)
        values = torch.cat([v.transpose(0, 1), v_mem], dim=1)  # (H, B' + M, hd)
        if fused and not need_weights:
            out = F.scaled_dot_product_attention(q_h, keys, values, dropout_p=dropout_p, scale=scale)  # (H, B, hd)
            return out.transpose(0, 1), None
        weights = torch.softmax(q_h @ keys.transpose(1, 2) * scale, dim=-1)  # (H, B, B' + M)
        out = F.dropout(weights, dropout_p) @ values  # (H, B, hd)
        return out.transpose(0, 1), (weights if need_weights else None)

    # "single": the self score and the M shared-memory scores, one softmax over both. Cheaper
    # on CPU than one masked SDPA call over [batch; memory] (B * (1 + M) scores, not B * (B + M)),
    # so it is the only path; its weights come for free.
    s_self = (q * k).sum(-1, keepdim=True)  # (B, H, 1)
    s_mem = torch.einsum("bhd,hmd->bhm", q, k_mem)  # (B, H, M)
    if memory_mask is not None:
        s_mem = s_mem.masked_fill(memory_mask.unsqueeze(1), float("-inf"))  # (B, H, M)
    weights = torch.softmax(torch.cat([s_self, s_mem], dim=-1) * scale, dim=-1)  # (B, H, 1 + M)
    dropped = F.dropout(weights, dropout_p)
    out = dropped[..., :1] * v + torch.einsum("bhm,hmd->bhd", dropped[..., 1:], v_mem)  # (B, H, hd)
    return out, (weights.permute(1, 0, 2) if need_weights else None)
