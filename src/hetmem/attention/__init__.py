"""Memory readers: attention of a batch over [its context; a shared memory]."""

from hetmem.attention.block import MemoryAttentionBlock
from hetmem.attention.functional import Context, memory_attention

__all__ = ["Context", "MemoryAttentionBlock", "memory_attention"]
