"""The pre-LayerNorm attention block HMA uses for both of its reads."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hetmem.attention.functional import Context, memory_attention

__all__ = ["MemoryAttentionBlock", "SCORES"]

SCORES = ("dot", "cosine")
MAX_TEMPERATURE = 100.0  # cap of the learned cosine temperature (CLIP's choice)


class MemoryAttentionBlock(nn.Module):
    """Multi-head attention of a batch of rows over [their context; a shared memory], then an MLP.

    .. math::
        H = Q + \\gamma_1 \\mathrm{MultiHead}(\\mathrm{LN}(Q), \\mathrm{LN}(KV), \\mathrm{LN}(KV)), \\qquad
        \\mathrm{out} = H + \\gamma_2 \\mathrm{FF}(\\mathrm{LN}(H))

    with FF = Linear(dim, ff_mult dim), GELU, Linear(ff_mult dim, dim), and KV = [context;
    memory], the context being the row itself (``"single"``) or the whole batch (``"batch"``).
    This is equation (2) of the HMA paper with the residual on Q (the paper writes V; the
    shapes only work with Q, which is what its code does); gamma = 1 there. The memory's keys
    and values are computed once per call and shared by every row.

    Two departures, both off by default, make the read usable as retrieval and the block
    trainable at the learning rates of a small backbone:

    - ``scores="cosine"``: queries and keys are L2-normalised per head and their cosine is
      multiplied by a learned per-head temperature (initial ``temperature``, at most 100), so
      attention can be as sharp as a nearest-neighbour lookup without the projections having
      to grow; with ``"dot"`` the scores are scaled by 1/sqrt(head_dim) (``score_scale="head"``)
      or 1/sqrt(dim) (``"model"``, the reference code).
    - ``layer_scale``: the two residual branches are multiplied by learned per-channel gains
      gamma starting at this value (CaiT's LayerScale). With gamma = 1 one Adam step moves the
      MLP output by about lr x (ff_mult x dim) per channel, which swamps the rows it is added to.
    - ``key_dim``: keys are computed from the first ``key_dim`` numbers of each row only (values
      still from the whole row), and the queries are the keys of the query rows (one
      projection, no separate query map, as in Memory Mosaics). The scores then compare like
      with like: with cosine scores a random projection already ranks memory rows
      by the similarity of their features, so the read starts as a soft nearest-neighbour
      lookup. HMA uses it to match memory rows on features alone, not on label embeddings.

    Args:
        dim: row width D.
        num_heads: attention heads H.
        head_dim: width of each head; default ``ceil(dim / num_heads)``, so any ``dim`` works.
        dropout: dropout after the attention output and in the MLP (0.1 in the paper).
        attn_dropout: dropout on the attention weights.
        ff_mult: MLP expansion factor.
        fused: use ``F.scaled_dot_product_attention`` where it applies (batch context).
        scores: ``"dot"`` or ``"cosine"``.
        score_scale: for dot scores, ``"head"`` (1/sqrt(head_dim)) or ``"model"`` (1/sqrt(dim)).
        temperature: initial temperature of cosine scores.
        layer_scale: initial residual gain gamma; None for no gain (gamma = 1, the paper).
        key_dim: leading row numbers queries and keys see; None for the whole row.

    Shapes:
        - x: (B, D) rows; memory: (M, D) or None; batch_rows: (B', D) or None (default x);
          memory_kv: keys and values (H, M, hd) each, or None (projected from memory).
        - output: (B, D); with ``need_weights`` also weights (H, B, K), K = 1 + M in the
          ``"single"`` context (key 0 is the row itself) and B + M in the ``"batch"`` context.

    Example:
        >>> block = MemoryAttentionBlock(dim=8, num_heads=2, scores="cosine", layer_scale=0.1)
        >>> block(torch.randn(5, 8), memory=torch.randn(3, 8), context="batch").shape
        torch.Size([5, 8])
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 4,
        *,
        head_dim: int | None = None,
        dropout: float = 0.1,
        attn_dropout: float = 0.0,
        ff_mult: int = 4,
        fused: bool = True,
        scores: Literal["dot", "cosine"] = "dot",
        score_scale: Literal["head", "model"] = "head",
        temperature: float = 10.0,
        layer_scale: float | None = None,
        key_dim: int | None = None,
    ) -> None:
        super().__init__()
        if dim <= 0 or num_heads <= 0:
            raise ValueError(f"MemoryAttentionBlock: dim and num_heads must be positive, got {dim} and {num_heads}")
        if scores not in SCORES:
            raise ValueError(f"MemoryAttentionBlock: scores must be one of {SCORES}, got {scores!r}")
        if score_scale not in ("head", "model"):
            raise ValueError(f"MemoryAttentionBlock: score_scale must be 'head' or 'model', got {score_scale!r}")
        if not 0 < temperature <= MAX_TEMPERATURE:
            raise ValueError(f"MemoryAttentionBlock: temperature must be in (0, {MAX_TEMPERATURE}], got {temperature}")
        if key_dim is not None and not 0 < key_dim <= dim:
            raise ValueError(f"MemoryAttentionBlock: key_dim must be in [1, dim={dim}], got {key_dim}")
        if ff_mult <= 0:
            raise ValueError(f"MemoryAttentionBlock: ff_mult must be a positive int, got {ff_mult}")
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = head_dim or math.ceil(dim / num_heads)
        self.fused = fused
        self.attn_dropout = attn_dropout
        self.scores = scores
        self.score_scale = score_scale
        self.key_dim = key_dim
        inner = self.num_heads * self.head_dim
        self.norm_kv = nn.LayerNorm(dim)
        if key_dim is None:  # the paper: queries and keys from whole rows, separate projections
            self.norm_q = nn.LayerNorm(dim)
            self.q_proj = nn.Linear(dim, inner)
            self.kv_proj = nn.Linear(dim, 2 * inner)
        else:  # a similarity search: one projection of the first key_dim numbers gives queries and keys
            self.norm_k = nn.LayerNorm(key_dim)
            self.k_proj = nn.Linear(key_dim, inner)
            self.v_proj = nn.Linear(dim, inner)
        self.out_proj = nn.Linear(inner, dim)
        self.out_drop = nn.Dropout(dropout)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(
            nn.Linear(dim, ff_mult * dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(ff_mult * dim, dim),
            nn.Dropout(dropout),
        )
        if scores == "cosine":
            self.log_temperature = nn.Parameter(torch.full((num_heads,), math.log(temperature)))
        self.gamma_attn = self.gamma_ff = None
        if layer_scale is not None:
            self.gamma_attn = nn.Parameter(torch.full((dim,), float(layer_scale)))
            self.gamma_ff = nn.Parameter(torch.full((dim,), float(layer_scale)))

    # ----- projections -------------------------------------------------------------------
    def temperature(self) -> Tensor | None:
        """The per-head temperature of cosine scores, (H,), or None for dot scores."""
        if self.scores != "cosine":
            return None
        return self.log_temperature.clamp(max=math.log(MAX_TEMPERATURE)).exp()

    def _queries(self, x: Tensor) -> Tensor:
        B = x.shape[0]
        if self.key_dim is None:
            q = self.q_proj(self.norm_q(x)).view(B, self.num_heads, self.head_dim)  # (B, H, hd)
        else:  # keys used as queries
            q = self.k_proj(self.norm_k(x[:, : self.key_dim])).view(B, self.num_heads, self.head_dim)  # (B, H, hd)
        if self.scores == "cosine":
            q = F.normalize(q, dim=-1) * self.temperature()[:, None]  # (B, H, hd)
        return q

    def _keys_values(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values of ``rows`` (N, D), each (N, H, hd)."""
        N, H, hd = rows.shape[0], self.num_heads, self.head_dim
        if self.key_dim is None:
            k, v = self.kv_proj(self.norm_kv(rows)).view(N, 2, H, hd).unbind(1)  # each (N, H, hd)
        else:
            k = self.k_proj(self.norm_k(rows[:, : self.key_dim])).view(N, H, hd)  # (N, H, hd)
            v = self.v_proj(self.norm_kv(rows)).view(N, H, hd)  # (N, H, hd)
        if self.scores == "cosine":
            k = F.normalize(k, dim=-1)
        return k, v

    def scale(self) -> float | None:
        """The multiplier of the scores; None means 1/sqrt(head_dim)."""
        if self.scores == "cosine":
            return 1.0  # the temperature is in the queries
        return self.dim**-0.5 if self.score_scale == "model" else None

    def project_memory(self, memory: Tensor | None) -> tuple[Tensor, Tensor]:
        """Keys and values of the memory rows, each (H, M, hd); M = 0 for no memory."""
        if memory is None:
            memory = self.norm_kv.weight.new_zeros(0, self.dim)
        k_mem, v_mem = self._keys_values(memory)  # each (M, H, hd)
        return k_mem.transpose(0, 1), v_mem.transpose(0, 1)  # each (H, M, hd)

    # ----- forward -----------------------------------------------------------------------
    def attend(
        self,
        x: Tensor,
        memory: Tensor | None = None,
        *,
        context: Context = "single",
        need_weights: bool = False,
        batch_rows: Tensor | None = None,
        memory_mask: Tensor | None = None,
        memory_kv: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """The attention sublayer alone: ``x + gamma MultiHead(LN(x), LN(KV), LN(KV))`` and its weights.

        ``batch_rows`` (B', D) replaces ``x`` as the batch part of the keys in the ``"batch"``
        context (e.g. the batch gathered from every process); default ``x`` itself.
        ``memory_mask`` (B, M), single context only: True where a row must not read a memory row.
        ``memory_kv``: the memory's keys and values as :meth:`project_memory` returns them,
        computed earlier (e.g. cached between evaluation calls); then ``memory`` is not read.
        """
        B, D = x.shape
        q = self._queries(x)  # (B, H, hd)
        rows = x if batch_rows is None or context == "single" else batch_rows
        k, v = self._keys_values(rows)  # each (B', H, hd)
        k_mem, v_mem = self.project_memory(memory) if memory_kv is None else memory_kv  # each (H, M, hd)
        out, weights = memory_attention(
            q,
            k,
            v,
            k_mem,
            v_mem,
            context=context,
            dropout_p=self.attn_dropout if self.training else 0.0,
            fused=self.fused,
            need_weights=need_weights,
            scale=self.scale(),
            memory_mask=memory_mask,
        )
        update = self.out_drop(self.out_proj(out.reshape(B, -1)))  # (B, D)
        return x + (update if self.gamma_attn is None else self.gamma_attn * update), weights

    def forward(
        self,
        x: Tensor,
        memory: Tensor | None = None,
        *,
        context: Context = "single",
        need_weights: bool = False,
        batch_rows: Tensor | None = None,
        memory_mask: Tensor | None = None,
        memory_kv: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor | tuple[Tensor, Tensor]:
        h, weights = self.attend(
            x, memory, context=context, need_weights=need_weights, batch_rows=batch_rows, memory_mask=memory_mask,
            memory_kv=memory_kv,
        )  # (B, D)
        update = self.ff(self.norm_ff(h))  # (B, D)
        out = h + (update if self.gamma_ff is None else self.gamma_ff * update)  # (B, D)
        return (out, weights) if need_weights else out

    def extra_repr(self) -> str:
        extra = f", scores={self.scores!r}" if self.scores != "dot" else ""
        extra += ", layer_scale=True" if self.gamma_attn is not None else ""
        extra += f", key_dim={self.key_dim}" if self.key_dim is not None else ""
        return f"dim={self.dim}, num_heads={self.num_heads}, head_dim={self.head_dim}, fused={self.fused}{extra}"
