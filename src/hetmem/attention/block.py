"""The pre-LayerNorm attention block HMA uses for both of its reads."""

from __future__ import annotations

import math

from torch import Tensor, nn

from hetmem.attention.functional import Context, memory_attention

__all__ = ["MemoryAttentionBlock"]


class MemoryAttentionBlock(nn.Module):
    """Multi-head attention of a batch of rows over [their context; a shared memory], then an MLP.

    .. math::
        H = Q + \\mathrm{MultiHead}(\\mathrm{LN}(Q), \\mathrm{LN}(KV), \\mathrm{LN}(KV)), \\qquad
        \\mathrm{out} = H + \\mathrm{FF}(\\mathrm{LN}(H))

    with FF = Linear(dim, 4 dim), GELU, Linear(4 dim, dim), and KV = [context; memory], the
    context being the row itself (``"single"``) or the whole batch (``"batch"``). This is
    equation (2) of the HMA paper with the residual on Q (the paper writes V; the shapes only
    work with Q, which is what its code does). Queries and keys have their own LayerNorm.
    The memory's keys and values are computed once per call and shared by every row.

    Args:
        dim: row width D.
        num_heads: attention heads H.
        head_dim: width of each head; default ``ceil(dim / num_heads)``, so any ``dim`` works
            (the heads' total width H * head_dim may then exceed ``dim`` slightly).
        dropout: dropout after the attention output and in the MLP (0.1 in the paper).
        attn_dropout: dropout on the attention weights.
        ff_mult: MLP expansion factor.
        fused: use ``F.scaled_dot_product_attention`` where it applies (batch context).

    Shapes:
        - x: (B, D) rows; memory: (M, D) or None; batch_rows: (B', D) or None (default x);
          memory_kv: keys and values (H, M, hd) each, or None (projected from memory).
        - output: (B, D); with ``need_weights`` also weights (H, B, K), K = 1 + M in the
          ``"single"`` context (key 0 is the row itself) and B + M in the ``"batch"`` context.

    Example:
        >>> import torch
        >>> block = MemoryAttentionBlock(dim=8, num_heads=2)
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
    ) -> None:
        super().__init__()
        if dim <= 0 or num_heads <= 0:
            raise ValueError(f"MemoryAttentionBlock: dim and num_heads must be positive, got {dim} and {num_heads}")
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = head_dim or math.ceil(dim / num_heads)
        self.fused = fused
        self.attn_dropout = attn_dropout
        inner = self.num_heads * self.head_dim
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.q_proj = nn.Linear(dim, inner)
        self.kv_proj = nn.Linear(dim, 2 * inner)
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

    def project_memory(self, memory: Tensor | None) -> tuple[Tensor, Tensor]:
        """Keys and values of the memory rows, each (H, M, hd); M = 0 for no memory."""
        if memory is None:
            memory = self.norm_kv.weight.new_zeros(0, self.dim)
        M = memory.shape[0]
        kv = self.kv_proj(self.norm_kv(memory)).view(M, 2, self.num_heads, self.head_dim)  # (M, 2, H, hd)
        k_mem, v_mem = kv.permute(1, 2, 0, 3).unbind(0)  # each (H, M, hd)
        return k_mem, v_mem

    def attend(
        self,
        x: Tensor,
        memory: Tensor | None = None,
        *,
        context: Context = "single",
        need_weights: bool = False,
        batch_rows: Tensor | None = None,
        memory_kv: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """The attention sublayer alone: ``x + MultiHead(LN(x), LN(KV), LN(KV))`` and its weights.

        ``batch_rows`` (B', D) replaces ``x`` as the batch part of the keys in the ``"batch"``
        context (e.g. the batch gathered from every process); default ``x`` itself.
        ``memory_kv``: the memory's keys and values as :meth:`project_memory` returns them,
        computed earlier (e.g. cached between evaluation calls); then ``memory`` is not read.
        """
        B, D = x.shape
        H, hd = self.num_heads, self.head_dim
        q = self.q_proj(self.norm_q(x)).view(B, H, hd)  # (B, H, hd)
        rows = x if batch_rows is None or context == "single" else batch_rows
        k, v = self.kv_proj(self.norm_kv(rows)).view(rows.shape[0], 2, H, hd).unbind(1)  # each (B', H, hd)
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
        )
        return x + self.out_drop(self.out_proj(out.reshape(B, H * hd))), weights  # (B, D)

    def forward(
        self,
        x: Tensor,
        memory: Tensor | None = None,
        *,
        context: Context = "single",
        need_weights: bool = False,
        batch_rows: Tensor | None = None,
        memory_kv: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor | tuple[Tensor, Tensor]:
        h, weights = self.attend(
            x, memory, context=context, need_weights=need_weights, batch_rows=batch_rows, memory_kv=memory_kv
        )  # (B, D)
        out = h + self.ff(self.norm_ff(h))  # (B, D)
        return (out, weights) if need_weights else out

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_heads={self.num_heads}, head_dim={self.head_dim}, fused={self.fused}"
