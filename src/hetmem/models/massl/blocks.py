"""Stochastic memory blocks: which memory rows each softmax of the MaSSL loss runs over."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["BLOCK_SAMPLINGS", "check_block_sampling", "num_blocks", "sample_memory_blocks"]

# How the K memory rows are cut into blocks each step:
BLOCK_SAMPLINGS = (
    "random",  # MaSSL: a fresh random permutation cut into K / Nb blocks of Nb rows
    "contiguous",  # the paper's 'blockwise' ablation: storage order, rows [0, Nb), [Nb, 2 Nb), ... (collapses)
    "none",  # one block holding the whole memory: a plain softmax over all K rows
)


def check_block_sampling(memory_size: int, block_size: int, sampling: str, *, owner: str = "memory blocks") -> None:
    """Raises ValueError unless the memory can be cut into blocks this way.

    ``block_size`` must divide ``memory_size`` for "random" and "contiguous"; "none" ignores it.
    """
    if sampling not in BLOCK_SAMPLINGS:
        raise ValueError(f"{owner}: block_sampling must be one of {BLOCK_SAMPLINGS}, got {sampling!r}")
    if not isinstance(memory_size, int) or memory_size <= 0:
        raise ValueError(f"{owner}: memory_size must be a positive int, got {memory_size!r}")
    if sampling == "none":
        return
    if not isinstance(block_size, int) or block_size <= 0:
        raise ValueError(f"{owner}: block_size must be a positive int, got {block_size!r}")
    if memory_size % block_size:
        raise ValueError(
            f"{owner}: block_size must divide memory_size, got memory_size={memory_size}, block_size={block_size}"
        )


def num_blocks(memory_size: int, block_size: int, sampling: str = "random") -> int:
    """Number of blocks per step: ``memory_size // block_size``, or 1 for "none"."""
    check_block_sampling(memory_size, block_size, sampling)
    return 1 if sampling == "none" else memory_size // block_size


def sample_memory_blocks(
    memory_size: int,
    block_size: int,
    sampling: str = "random",
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """The memory row indices of this step's blocks, one block per row.

    Every memory row appears in exactly one block. The same blocks serve every view and
    every sample of the step (MaSSL Section 3.2): the random permutation breaks the order
    in which the FIFO memory was written, so no block holds only the newest rows.

    Args:
        memory_size: K, rows in the memory.
        block_size: Nb, rows per block; must divide K (ignored for "none").
        sampling: one of ``BLOCK_SAMPLINGS``.
        generator: CPU generator for the permutation (the global one if None).
        device: where the returned indices live.

    Shapes:
        - returns (K / Nb, Nb) int64 for "random" and "contiguous", (1, K) for "none".

    Example:
        >>> sample_memory_blocks(6, 3, "contiguous").tolist()
        [[0, 1, 2], [3, 4, 5]]
        >>> blocks = sample_memory_blocks(6, 2, generator=torch.Generator().manual_seed(0))
        >>> blocks.shape, sorted(blocks.flatten().tolist())
        (torch.Size([3, 2]), [0, 1, 2, 3, 4, 5])
    """
    check_block_sampling(memory_size, block_size, sampling)
    if sampling == "random":
        order = torch.randperm(memory_size, generator=generator)  # drawn on the CPU: same on every device
    else:
        order = torch.arange(memory_size)
    width = memory_size if sampling == "none" else block_size
    return order.view(-1, width).to(device)  # (K / Nb, Nb)
