"""The Memory Mosaic v2 language model (thesis chapter 4): embedding, L v2 blocks, LayerNorm, tied head."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from hetmem.models.mosaics._checks import check_dropout, check_heads, check_tokens
from hetmem.models.mosaics.decoding import SequenceLM
from hetmem.models.mosaics.leaky import LEAKY_MODES
from hetmem.models.mosaics.mosaic import INIT_RECIPES
from hetmem.models.mosaics.v2_memory import MosaicV2Block, ShortLongMemory, V2Cache, check_long_lag

__all__ = ["MemoryMosaicV2LM", "MosaicV2Config"]


@dataclass
class MosaicV2Config:
    """Hyper-parameters of :class:`MemoryMosaicV2LM`. The memory defaults are the thesis's
    (window 256, m in [64, 256], gated keys, adaptive bandwidth, SwiGLU of 3 d); the sizes
    are GPT-2 small's, like :class:`~hetmem.models.mosaics.MosaicConfig`."""

    vocab_size: int  # V
    dim: int = 768  # d
    num_heads: int = 12  # H heads in each of the short- and long-term memories
    num_layers: int = 12  # L blocks
    ffn_hidden: int | None = None  # SwiGLU hidden width; None: 3 d (the thesis's Small: 6144 / 2048)
    short_window: int = 256  # h: the short-term memory reads lags 1 .. h-1
    long_lag: tuple[int, int] = (64, 256)  # (m_lo, m_hi): the long-term memory reads lags > m, m ~ U{m_lo..m_hi} in training, m_lo in eval
    gated_keys: bool = True  # v2 gated time-variant keys (Eq. 4.4); False: v1 leaky keys with a learned scale
    adaptive_bandwidth: bool = True  # scores times beta(n) = beta_1 n^alpha + beta_0 (Eq. 4.2); required by gated keys
    leaky_mode: str = "chunked"  # chunked (fast, exact), matrix, recurrent
    leaky_chunk: int = 64  # chunk length of the chunked key average (64: half the time of 16 for gated keys)
    attn_dropout: float = 0.05  # on attention probabilities (training only)
    resid_dropout: float = 0.05  # on both residual branches of every block
    bias: bool = False  # bias in linear maps and LayerNorms
    init: str = "gpt2"  # gpt2: std 0.02, residual projections 0.02 / sqrt(2L), no logit scale (the baselines' recipe); library: v1's
    weight_tying: bool = True  # head shares the embedding matrix
    use_long_memory: bool = True  # False: no long-term memory reads (its parameters stay; see MemoryMosaicV2LM.set_long_memory)

    def __post_init__(self) -> None:
        owner = "MosaicV2Config"
        for name in ("vocab_size", "num_layers", "leaky_chunk"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")
        check_heads(owner, self.dim, self.num_heads)
        if self.ffn_hidden is not None and (not isinstance(self.ffn_hidden, int) or self.ffn_hidden < 1):
            raise ValueError(f"{owner}: ffn_hidden must be a positive int or None, got {self.ffn_hidden!r}")
        self.long_lag = tuple(self.long_lag)
        check_long_lag(owner, self.short_window, self.long_lag)
        check_dropout(owner, attn_dropout=self.attn_dropout, resid_dropout=self.resid_dropout)
        for name, allowed in (("init", INIT_RECIPES), ("leaky_mode", LEAKY_MODES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{owner}: {name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.gated_keys and not self.adaptive_bandwidth:
            raise ValueError(
                f"{owner}: gated_keys=True needs adaptive_bandwidth=True: gated keys are unit vectors with no learned scale, "
                "so without the adaptive bandwidth every score is a cosine in [-1, 1] and every read is nearly a flat average"
            )

    @property
    def hidden(self) -> int:
        """The SwiGLU's hidden width."""
        return 3 * self.dim if self.ffn_hidden is None else self.ffn_hidden


class MemoryMosaicV2LM(SequenceLM):
    """Memory Mosaic v2 language model (thesis chapter 4; no code was released).

    ``Embedding(V, d) -> L x MosaicV2Block -> LayerNorm -> head (tied)``. Each block is
    ``x + ShortLong(LN(x))`` (a short-term memory reading lags 1 .. h-1 and a long-term memory
    reading lags > m, each with gated keys, adaptive bandwidth and its own projection) then
    ``x + SwiGLU(LN(x))`` (the persistent memory). No positional encoding: any length works.
    Per block 15 d^2 parameters (two memories of 3 d^2, SwiGLU 9 d^2) against the Llama
    baseline's 13 d^2 (the thesis: 9.9B vs 8.8B).

    Init recipes: ``"gpt2"`` (default; the transformer baselines' recipe, which the thesis
    copied to v2): linear maps and the tied embedding std 0.02, the residual projections
    (``c_proj``, ``w2``) 0.02 / sqrt(2L), no logit scale. ``"library"`` (v1's): std
    1/sqrt(fan_in), residual projections 1/sqrt(fan_in L), tied matrix 1/sqrt(d), logits /
    sqrt(d). Both keep the gates' own init (gate ~ 1, decays ~ v1's initial decays) and the
    per-head scalars (value scale, mix, bandwidth).

    Args:
        config: :class:`MosaicV2Config`.

    Shapes:
        idx: (B, T) -> logits (B, T, V) (see :meth:`SequenceLM.forward` for loss and cache).

    Example:
        >>> model = MemoryMosaicV2LM(MosaicV2Config(vocab_size=11, dim=8, num_heads=2, num_layers=2, short_window=4, long_lag=(2, 3)))
        >>> model(torch.randint(0, 11, (3, 5))).shape
        torch.Size([3, 5, 11])
        >>> model.generate(torch.zeros(1, 2, dtype=torch.long), max_new_tokens=3).shape
        torch.Size([1, 5])
    """

    max_length = None

    def __init__(self, config: MosaicV2Config) -> None:
        super().__init__()
        self.config = config
        c = config
        self.wte = nn.Embedding(c.vocab_size, c.dim)
        self.blocks = nn.ModuleList(
            MosaicV2Block(
                c.dim, c.num_heads, hidden=c.hidden, bias=c.bias, resid_dropout=c.resid_dropout, window=c.short_window,
                long_lag=c.long_lag, use_long=c.use_long_memory, gated_keys=c.gated_keys, adaptive_bandwidth=c.adaptive_bandwidth,
                attn_dropout=c.attn_dropout, leaky_mode=c.leaky_mode, leaky_chunk=c.leaky_chunk,
            )
            for _ in range(c.num_layers)
        )
        self.ln_f = nn.LayerNorm(c.dim, eps=1e-5, bias=c.bias)
        self.head = nn.Linear(c.dim, c.vocab_size, bias=False)
        if c.weight_tying:
            self.wte.weight = self.head.weight
        self.logit_scale = 1.0 / math.sqrt(c.dim) if c.init == "library" else 1.0
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        c = self.config
        library = c.init == "library"
        for module in reversed(list(self.modules())):  # children first: a key's gate biases outlive its Linear's reset
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()  # per-head scalars, gates, LayerNorms; linear maps overridden below
        for name, module in self.named_modules():
            if not isinstance(module, nn.Linear) or module is self.head or name.endswith(("W_g", "W_lambda")):
                continue
            fan_in = module.weight.shape[1]
            if name.endswith(("c_proj", "w2")):  # writes into the residual stream
                std = 1 / math.sqrt(fan_in * c.num_layers) if library else 0.02 / math.sqrt(2 * c.num_layers)
            else:
                std = 1 / math.sqrt(fan_in) if library else 0.02
            nn.init.normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.wte.weight, std=1.0 if library else 0.02)
        # the head last: when tied, the shared matrix ends at the head's std
        nn.init.normal_(self.head.weight, std=1 / math.sqrt(c.dim) if library else 0.02)

    def set_long_memory(self, on: bool) -> None:
        """Switch the long-term memory of every block on or off (e.g. off for the thesis's
        "long-term memory removed" evaluation, Tables 4.2, 4.3 and C.1). Start a new decoding
        cache after switching it on."""
        self.config.use_long_memory = bool(on)
        for module in self.modules():
            if isinstance(module, ShortLongMemory):
                module.set_long_memory(on)

    def new_cache(self) -> list[V2Cache]:
        """An empty decoding cache (one (short, long) pair per block) for ``forward(..., cache=)``."""
        return [block.new_cache() for block in self.blocks]

    def forward_features(self, idx: Tensor, cache: list[V2Cache] | None = None) -> Tensor:
        check_tokens("MemoryMosaicV2LM", idx)
        x = self.wte(idx)  # (B, T, d), no positional embedding
        for i, block in enumerate(self.blocks):
            x = block(x, None if cache is None else cache[i])
        return self.ln_f(x)

    def forward_head(self, x: Tensor) -> Tensor:
        return self.head(x) * self.logit_scale
