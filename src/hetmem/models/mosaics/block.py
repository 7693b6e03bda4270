"""A Memory Mosaic block: pre-LayerNorm residual [context memory, persistent memory] (thesis Fig. 3.7)."""

from __future__ import annotations

import torch  # noqa: F401  (doctest)
from torch import Tensor, nn

from hetmem.models.mosaics.cache import ContextCache, PersistentCache
from hetmem.models.mosaics.context import ContextMemory
from hetmem.models.mosaics.persistent import PersistentMemory

__all__ = ["BlockCache", "MosaicBlock"]

BlockCache = tuple[ContextCache, PersistentCache]


class MosaicBlock(nn.Module):
    """``x = x + CMem(LN1(x)); x = x + PMem(LN2(x))``, LayerNorm without bias (eps 1e-5).

    Args:
        dim: model width d.
        num_heads: heads H of both memories.
        bias: bias in the LayerNorms and linear maps (False in the official configs).
        **memory_options: keyword arguments shared by :class:`ContextMemory` and
            :class:`PersistentMemory` (dropouts, leaky mode, ...); ``pmem_size``, ``pmem_count``
            go to the persistent memory and ``value_kind`` to the context memory only.

    Shapes:
        x: (B, T, d) -> (B, T, d); ``cache`` is a (ContextCache, PersistentCache) pair.

    Example:
        >>> block = MosaicBlock(8, 2, pmem_size=6)
        >>> block(torch.randn(3, 5, 8)).shape
        torch.Size([3, 5, 8])
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        bias: bool = False,
        pmem_size: int | None = None,
        pmem_count: int = 1,
        value_kind: str = "mix",
        **memory_options,
    ) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim, eps=1e-5, bias=bias)
        self.cmem = ContextMemory(dim, num_heads, bias=bias, value_kind=value_kind, **memory_options)
        self.ln2 = nn.LayerNorm(dim, eps=1e-5, bias=bias)
        self.pmem = PersistentMemory(dim, num_heads, bias=bias, pmem_size=pmem_size, pmem_count=pmem_count, **memory_options)

    def new_cache(self) -> BlockCache:
        return ContextCache(), PersistentCache()

    def forward(self, x: Tensor, cache: BlockCache | None = None) -> Tensor:
        context_cache, persistent_cache = (None, None) if cache is None else cache
        x = x + self.cmem(self.ln1(x), context_cache)
        return x + self.pmem(self.ln2(x), persistent_cache)
