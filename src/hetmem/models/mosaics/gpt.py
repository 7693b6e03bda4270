"""The transformer baselines: nanoGPT of the same parameter budget (the official
``Library/baseline``), and, as options of the same model, the Llama-style baseline of Memory
Mosaics v2 (thesis chapter 4: rotary positions, SwiGLU MLP of hidden width 3d, no positional
table, so it runs at any length).

Relation to hetmem's attention code: :class:`~hetmem.attention.MemoryAttentionBlock` is a
cross-attention of rows over a memory (separate q and kv projections, LayerNorm with bias, no
mask); the baseline needs causal self-attention with a fused qkv projection, so it is written
here (nanoGPT's layout) on :func:`~hetmem.models.mosaics.read.causal_attention`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hetmem.models.mosaics.cache import KVCache
from hetmem.models.mosaics._checks import check_dropout, check_heads, check_tokens
from hetmem.models.mosaics.decoding import SequenceLM
from hetmem.models.mosaics.ffn import SwiGLU
from hetmem.models.mosaics.read import causal_attention
from hetmem.models.mosaics.rope import apply_rotary, rotary_angles

__all__ = ["MLP_KINDS", "POSITIONS", "CausalSelfAttention", "GPTBlock", "GPTConfig", "GPTLM"]

POSITIONS: tuple[str, ...] = ("learned", "rope", "none")
MLP_KINDS: tuple[str, ...] = ("gelu", "swiglu")


@dataclass
class GPTConfig:
    """Hyper-parameters of :class:`GPTLM` (GPT-2 small defaults, dropout 0.05 as the Memory Mosaic baseline).

    ``position="rope", mlp="swiglu"`` is the Llama baseline (registered as ``"llama"``).
    """

    vocab_size: int  # V
    dim: int = 768  # d
    num_heads: int = 12  # H
    num_layers: int = 12  # L
    block_size: int = 1024  # longest sequence: rows of the learned positional table (unused by rope / none)
    attn_dropout: float = 0.05  # on attention probabilities
    resid_dropout: float = 0.05  # on embeddings, attention output and MLP output
    bias: bool = False  # bias in linear maps and LayerNorms
    mlp_ratio: int = 4  # gelu MLP hidden width = mlp_ratio * d (when ffn_hidden is None)
    position: str = "learned"  # learned: a (block_size, d) table; rope: rotary q/k (any length); none: no positions
    mlp: str = "gelu"  # gelu: d -> hidden -> d, tanh-GELU (GPT-2); swiglu: W_2 (silu(W_1 x) * W_3 x) (Llama)
    ffn_hidden: int | None = None  # MLP hidden width; None: mlp_ratio * d for gelu, 3 d for swiglu (the thesis's 6144 / 2048)
    rope_base: float = 10000.0  # rotary frequency base

    def __post_init__(self) -> None:
        for name in ("vocab_size", "num_layers", "block_size", "mlp_ratio"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"GPTConfig: {name} must be a positive int, got {value!r}")
        check_heads("GPTConfig", self.dim, self.num_heads)
        check_dropout("GPTConfig", attn_dropout=self.attn_dropout, resid_dropout=self.resid_dropout)
        for name, allowed in (("position", POSITIONS), ("mlp", MLP_KINDS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"GPTConfig: {name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.ffn_hidden is not None and (not isinstance(self.ffn_hidden, int) or self.ffn_hidden < 1):
            raise ValueError(f"GPTConfig: ffn_hidden must be a positive int or None, got {self.ffn_hidden!r}")
        if self.position == "rope" and (self.dim // self.num_heads) % 2:
            raise ValueError(f"GPTConfig: rotary positions need an even head width, got dim / num_heads = {self.dim // self.num_heads}")
        if self.rope_base <= 1:
            raise ValueError(f"GPTConfig: rope_base must be > 1, got {self.rope_base}")

    @property
    def hidden(self) -> int:
        """The MLP's hidden width."""
        if self.ffn_hidden is not None:
            return self.ffn_hidden
        return 3 * self.dim if self.mlp == "swiglu" else self.mlp_ratio * self.dim


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention, fused qkv, scale 1/sqrt(h), SDPA ``is_causal``; with
    ``config.position == "rope"`` queries and keys are rotated by their positions first.

    Shapes:
        x: (B, T, d) -> (B, T, d); with a :class:`KVCache`, x is the next T positions.
        rotary: (cos, sin), each (T, h/2), the angles of these T positions (rope only).
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.attn_dropout = config.attn_dropout
        self.c_attn = nn.Linear(config.dim, 3 * config.dim, bias=config.bias)
        self.c_proj = nn.Linear(config.dim, config.dim, bias=config.bias)
        self.resid_drop = nn.Dropout(config.resid_dropout)

    def forward(self, x: Tensor, cache: KVCache | None = None, rotary: tuple[Tensor, Tensor] | None = None) -> Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).view(B, T, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)  # 3 x (B, H, T, h)
        if rotary is not None:
            q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)  # keys cached rotated at their absolute positions
        if cache is not None:
            cache.keys.append(k)
            cache.values.append(v)
            k, v = cache.keys.view(), cache.values.view()  # (B, H, n + T, h)
        y = causal_attention(q, k, v, dropout_p=self.attn_dropout if self.training else 0.0)  # (B, H, T, h)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, d)
        return self.resid_drop(self.c_proj(y))


class GPTBlock(nn.Module):
    """Pre-LN block: ``x = x + Attn(LN1(x)); x = x + MLP(LN2(x))``; the MLP is d -> 4d -> d
    with tanh-GELU (GPT-2) or a :class:`SwiGLU` of hidden width 3d (Llama), then dropout."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        hidden = config.hidden
        self.ln1 = nn.LayerNorm(config.dim, eps=1e-5, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln2 = nn.LayerNorm(config.dim, eps=1e-5, bias=config.bias)
        self.mlp = nn.Sequential()
        if config.mlp == "swiglu":
            self.mlp.add_module("swiglu", SwiGLU(config.dim, hidden, bias=config.bias))
        else:
            self.mlp.add_module("c_fc", nn.Linear(config.dim, hidden, bias=config.bias))
            self.mlp.add_module("gelu", nn.GELU(approximate="tanh"))
            self.mlp.add_module("c_proj", nn.Linear(hidden, config.dim, bias=config.bias))
        self.mlp.add_module("drop", nn.Dropout(config.resid_dropout))

    def forward(self, x: Tensor, cache: KVCache | None = None, rotary: tuple[Tensor, Tensor] | None = None) -> Tensor:
        x = x + self.attn(self.ln1(x), cache, rotary)
        return x + self.mlp(self.ln2(x))


class GPTLM(SequenceLM):
    """nanoGPT with tied embeddings and a learned absolute positional table, or (options)
    rotary positions and a SwiGLU MLP: the Llama baseline.

    Init: std 0.02, the residual projections (``c_proj``, SwiGLU ``w2``) std 0.02/sqrt(2L),
    no logit scaling. With ``position="learned"`` sequences longer than ``block_size`` are
    refused with ValueError (the positional table has no rows for them); ``"rope"`` and
    ``"none"`` accept any length.

    Shapes:
        idx: (B, T) -> logits (B, T, V).

    Example:
        >>> model = GPTLM(GPTConfig(vocab_size=11, dim=8, num_heads=2, num_layers=2, block_size=16))
        >>> model(torch.randint(0, 11, (3, 5))).shape
        torch.Size([3, 5, 11])
        >>> llama = GPTLM(GPTConfig(vocab_size=11, dim=8, num_heads=2, num_layers=2, block_size=16, position="rope", mlp="swiglu"))
        >>> llama(torch.randint(0, 11, (3, 40))).shape  # past block_size: no positional table
        torch.Size([3, 40, 11])
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.max_length = config.block_size if config.position == "learned" else None
        self.wte = nn.Embedding(config.vocab_size, config.dim)
        self.wpe = nn.Embedding(config.block_size, config.dim) if config.position == "learned" else None
        self.drop = nn.Dropout(config.resid_dropout)
        self.blocks = nn.ModuleList(GPTBlock(config) for _ in range(config.num_layers))
        self.ln_f = nn.LayerNorm(config.dim, eps=1e-5, bias=config.bias)
        self.head = nn.Linear(config.dim, config.vocab_size, bias=False)
        self.wte.weight = self.head.weight
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        for name, module in self.named_modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                residual = name.endswith(("c_proj", "w2"))  # the projections that write into the residual stream
                std = 0.02 / math.sqrt(2 * self.config.num_layers) if residual else 0.02
                nn.init.normal_(module.weight, std=std)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                module.reset_parameters()

    def new_cache(self) -> list[KVCache]:
        """An empty KV cache (one per block) for ``forward(..., cache=)``."""
        return [KVCache() for _ in self.blocks]

    def forward_features(self, idx: Tensor, cache: list[KVCache] | None = None) -> Tensor:
        check_tokens("GPTLM", idx)
        B, T = idx.shape
        start = 0 if cache is None else cache[0].length
        c = self.config
        if self.max_length is not None and start + T > self.max_length:
            raise ValueError(
                f"GPTLM: sequence of {start + T} positions exceeds block_size {c.block_size} "
                "(the learned positional table has no rows beyond it; position='rope' and MemoryMosaicLM have no such limit)"
            )
        pos = torch.arange(start, start + T, device=idx.device)  # (T,)
        x = self.wte(idx)  # (B, T, d)
        if self.wpe is not None:
            x = x + self.wpe(pos)
        x = self.drop(x)
        rotary = rotary_angles(pos, c.dim // c.num_heads, base=c.rope_base, dtype=x.dtype) if c.position == "rope" else None
        for i, block in enumerate(self.blocks):
            x = block(x, None if cache is None else cache[i], rotary)
        return self.ln_f(x)

    def forward_head(self, x: Tensor) -> Tensor:
        return self.head(x)
