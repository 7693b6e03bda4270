"""torch.distributed helpers shared by the memory methods (no-ops in a single process)."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["is_distributed", "world_size", "rank", "concat_all_gather", "all_gather_with_grad"]


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


def all_gather_with_grad(tensor: Tensor) -> Tensor:
    """Concatenates ``tensor`` from every rank along dim 0, keeping the autograd graph.

    The backward pass sends each rank the gradient of every rank's loss with respect to its
    own rows, so attention over the gathered rows trains as if the batch were in one process.
    Every rank must hold the same number of rows.

    Shapes:
        tensor: (N, ...) on each rank; returns (world_size * N, ...).
    """
    if not is_distributed():
        return tensor
    return _GatherWithGrad.apply(tensor)


class _GatherWithGrad(torch.autograd.Function):
    """all_gather forward; backward sums every rank's gradient and returns this rank's rows."""

    @staticmethod
    def forward(ctx, tensor: Tensor) -> Tensor:  # noqa: D102
        parts = [torch.empty_like(tensor) for _ in range(world_size())]
        dist.all_gather(parts, tensor.contiguous())
        ctx.rows = tensor.shape[0]
        return torch.cat(parts, dim=0)  # (W * N, ...)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # noqa: D102
        grad = grad.contiguous()
        dist.all_reduce(grad)  # d(sum of all ranks' losses) / d(gathered rows)
        return grad[rank() * ctx.rows : (rank() + 1) * ctx.rows]
