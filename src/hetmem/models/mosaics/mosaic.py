"""The Memory Mosaic language model: embedding, L Memory Mosaic blocks, LayerNorm, tied head."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from hetmem.models.mosaics.block import BlockCache, MosaicBlock
from hetmem.models.mosaics._checks import check_dropout, check_heads, check_tokens
from hetmem.models.mosaics.decoding import SequenceLM
from hetmem.models.mosaics.extractors import VALUE_KINDS
from hetmem.models.mosaics.leaky import LEAKY_MODES
from hetmem.models.mosaics.persistent import default_pmem_size

__all__ = ["INIT_RECIPES", "MemoryMosaicLM", "MosaicConfig"]

INIT_RECIPES: tuple[str, ...] = ("library", "gpt2")


@dataclass
class MosaicConfig:
    """Hyper-parameters of :class:`MemoryMosaicLM`. Defaults: the official ``StackAssoMem`` (GPT-2 small size)."""

    vocab_size: int  # V (50304 for padded GPT-2 BPE)
    dim: int = 768  # d
    num_heads: int = 12  # H memory units per layer (both memories)
    num_layers: int = 12  # L blocks
    pmem_size: int | None = None  # P persistent slots per head; None: round(3.5 d), which matches a GPT block's 12 d^2
    pmem_count: int = 1  # independent persistent slot arrays, reads averaged
    attn_dropout: float = 0.05  # on attention probabilities of both memories (official ic_dropout)
    resid_dropout: float = 0.05  # after each c_proj (official hd_dropout)
    bias: bool = False  # bias in linear maps and LayerNorms
    value_kind: str = "mix"  # mix: (1-c) W_v x_{t+1} + c W_v x_t (official); conv2: W_0 x_t + W_1 x_{t+1}
    init: str = "library"  # library: std 1/sqrt(fan_in), logits / sqrt(d); gpt2: std 0.02, no logit scale (nanoMosaics)
    weight_tying: bool = True  # head shares the embedding matrix
    max_log_key_scale: float = 5.0  # clamp of log s_k (fp16-safe scores <= e^10)
    leaky_mode: str = "chunked"  # chunked (fast, exact), matrix (the official T x T form), recurrent (a loop over T)
    leaky_chunk: int = 16  # chunk length of the chunked leaky average

    def __post_init__(self) -> None:
        owner = "MosaicConfig"
        for name in ("vocab_size", "num_layers", "pmem_count", "leaky_chunk"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")
        check_heads(owner, self.dim, self.num_heads)
        if self.pmem_size is None:
            self.pmem_size = default_pmem_size(self.dim)
        if not isinstance(self.pmem_size, int) or self.pmem_size < 1:
            raise ValueError(f"{owner}: pmem_size must be a positive int or None, got {self.pmem_size!r}")
        check_dropout(owner, attn_dropout=self.attn_dropout, resid_dropout=self.resid_dropout)
        for name, allowed in (("value_kind", VALUE_KINDS), ("init", INIT_RECIPES), ("leaky_mode", LEAKY_MODES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{owner}: {name} must be one of {allowed}, got {getattr(self, name)!r}")


class MemoryMosaicLM(SequenceLM):
    """Memory Mosaic language model (Zhang et al. 2025, arXiv 2405.06394; thesis chapter 3).

    ``Embedding(V, d) -> L x MosaicBlock -> LayerNorm -> head (tied)``, with no positional
    encoding anywhere (position information comes only from the leaky keys and the one-step
    value shift), so any sequence length works.

    Init recipes (one chosen as a whole, spec section 4): ``"library"`` (the official Library
    used for BabiStories): linear maps std 1/sqrt(fan_in), ``c_proj`` std 1/sqrt(fan_in L),
    memory slots std 1/sqrt(h), embedding std 1 untied but 1/sqrt(d) when tied (the head is
    initialised last), and logits = head(x) / sqrt(d). ``"gpt2"`` (nanoMosaics): std 0.02,
    ``c_proj`` 0.02/sqrt(2L), slots 1/sqrt(h), no logit scale.

    Args:
        config: :class:`MosaicConfig`.

    Shapes:
        idx: (B, T) -> logits (B, T, V) (see :meth:`SequenceLM.forward` for loss and cache).

    Example:
        >>> model = MemoryMosaicLM(MosaicConfig(vocab_size=11, dim=8, num_heads=2, num_layers=2))
        >>> model(torch.randint(0, 11, (3, 5))).shape
        torch.Size([3, 5, 11])
        >>> model.generate(torch.zeros(1, 2, dtype=torch.long), max_new_tokens=3).shape
        torch.Size([1, 5])
    """

    max_length = None

    def __init__(self, config: MosaicConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.wte = nn.Embedding(c.vocab_size, c.dim)
        self.blocks = nn.ModuleList(
            MosaicBlock(
                c.dim, c.num_heads, bias=c.bias, pmem_size=c.pmem_size, pmem_count=c.pmem_count, value_kind=c.value_kind,
                attn_dropout=c.attn_dropout, resid_dropout=c.resid_dropout, max_log_scale=c.max_log_key_scale,
                leaky_mode=c.leaky_mode, leaky_chunk=c.leaky_chunk,
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
        for block in self.blocks:
            for memory in (block.cmem, block.pmem):
                for module in memory.modules():
                    if hasattr(module, "reset_parameters"):
                        module.reset_parameters()  # per-head scalars, slots (std 1/sqrt(h)); linear maps below
            for ln in (block.ln1, block.ln2):
                ln.reset_parameters()
        self.ln_f.reset_parameters()
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear) and module is not self.head:
                fan_in = module.weight.shape[1]
                if name.endswith("c_proj"):
                    std = 1 / math.sqrt(fan_in * c.num_layers) if library else 0.02 / math.sqrt(2 * c.num_layers)
                else:
                    std = 1 / math.sqrt(fan_in) if library else 0.02
                nn.init.normal_(module.weight, std=std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.wte.weight, std=1.0 if library else 0.02)
        # the head last: when tied, the shared matrix ends at the head's std (1/sqrt(d) in the Library)
        nn.init.normal_(self.head.weight, std=1 / math.sqrt(c.dim) if library else 0.02)

    def new_cache(self) -> list[BlockCache]:
        """An empty decoding cache (one entry per block) for ``forward(..., cache=)``."""
        return [block.new_cache() for block in self.blocks]

    def forward_features(self, idx: Tensor, cache: list[BlockCache] | None = None) -> Tensor:
        check_tokens("MemoryMosaicLM", idx)
        x = self.wte(idx)  # (B, T, d), no positional embedding
        for i, block in enumerate(self.blocks):
            x = block(x, None if cache is None else cache[i])
        return self.ln_f(x)

    def forward_head(self, x: Tensor) -> Tensor:
        return self.head(x) * self.logit_scale
