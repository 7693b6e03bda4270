"""torch.distributed helpers shared by the memory methods (no-ops in a single process)."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["is_distributed", "world_size", "rank", "concat_all_gather"]


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


@torch.no_grad()
def concat_all_gather(tensor: Tensor) -> Tensor:
    """Concatenates ``tensor`` from every rank along dim 0, in rank order (no gradient).

    Unlike MoCo's helper, ranks may hold different numbers of rows (a partial last batch):
    each rank pads to the largest size, gathers, and the padding is dropped.

    Shapes:
        tensor: (N_r, ...) on rank r; returns (sum_r N_r, ...) on every rank.
    """
    if not is_distributed():
        return tensor
    n = torch.tensor([tensor.shape[0]], device=tensor.device)
    sizes = [torch.zeros_like(n) for _ in range(world_size())]
    dist.all_gather(sizes, n)
    sizes = [int(s) for s in sizes]
    padded = tensor.new_zeros((max(sizes), *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    gathered = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(gathered, padded.contiguous())
    return torch.cat([g[:s] for g, s in zip(gathered, sizes)], dim=0)
