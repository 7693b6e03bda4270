"""Mini-batch loaders whose order depends only on (seed, epoch), shardable and resumable.

Why not ``torch.utils.data.DataLoader``: the small tensor tasks here are fastest indexed as
whole tensors (no per-sample ``__getitem__`` and collate), and exact resume needs a loader
that can start an epoch at batch k with the same order an uninterrupted run had. Graph
batches are collated with torch_geometric's ``Batch.from_data_list``.

Sharding across processes: every rank draws the same permutation and takes its contiguous
slice of each global batch, so the gathered batch of W ranks equals the single-process batch.
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import torch
from torch.utils.data import Dataset, Subset

__all__ = ["EVAL_ORDER_SEED", "EpochLoader", "make_loader"]

EVAL_ORDER_SEED = 20231016  # the fixed order of evaluation batches (any constant; this is HMA's arXiv date)


def _tensor_source(dataset: Dataset) -> tuple[tuple[torch.Tensor, ...], torch.Tensor] | None:
    """(tensors, index map) when the dataset is a TensorDataset or a Subset of one."""
    index = None
    while isinstance(dataset, Subset):
        sub = torch.as_tensor(dataset.indices, dtype=torch.long)
        index = sub if index is None else sub[index]
        dataset = dataset.dataset
    tensors = getattr(dataset, "tensors", None)
    if tensors is None or getattr(dataset, "transform", None) is not None:
        return None
    if index is None:
        index = torch.arange(len(tensors[0]))
    return tensors, index


class EpochLoader:
    """Yields mini-batches of ``dataset`` in an order fixed by ``(seed, epoch)``.

    Args:
        dataset: a TensorDataset (or Subset of one), any map-style dataset of ``(x, y)``
            pairs, or a sequence of torch_geometric ``Data``.
        batch_size: the GLOBAL batch size (summed over ranks).
        shuffle: draw a new permutation each epoch (training), or use one fixed random order
            (evaluation; see :meth:`order`).
        seed: seeds the permutations.
        drop_last: drop a last global batch smaller than ``batch_size``.
        rank, world_size: this process's slice of every global batch.
        graph: collate torch_geometric ``Data`` into a ``Batch``.

    Yields:
        ``(x, y)`` with y (b,) long, where b is this rank's share of the global batch, or a
        torch_geometric Batch (whose ``y`` is (b,)).
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        graph: bool = False,
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"EpochLoader: batch_size must be positive, got {batch_size}")
        if len(dataset) == 0:
            raise ValueError("EpochLoader: the dataset is empty")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.graph = graph
        self.epoch = 0
        self._skip = 0  # batches of the next epoch already trained on (set when resuming)
        self._source = None if graph else _tensor_source(dataset)
        self.sampler = self  # Lightning calls loader.sampler.set_epoch(epoch) before each epoch
        self.batch_sampler = None  # (read by Lightning's DataLoader checks)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, epoch: int, batches_done: int) -> None:
        """The next iteration is epoch ``epoch`` from its batch ``batches_done``."""
        self.epoch, self._skip = epoch, batches_done

    def state_dict(self) -> dict[str, Any]:
        # Lightning stores this beside the loop state; the position itself is tracked by the
        # ExactResume callback (Lightning prefetches one batch, so a loader cannot know it).
        return {"seed": self.seed, "batch_size": self.batch_size, "world_size": self.world_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        mine = self.state_dict()
        if state != mine:
            raise ValueError(f"EpochLoader: resuming with a different loader ({state} in the checkpoint, now {mine})")

    def order(self, epoch: int) -> torch.Tensor:
        """The sample order of ``epoch``.

        Evaluation (``shuffle=False``) uses one fixed random order, the same for every run and
        epoch, never the storage order: data sets are often stored sorted by class, and with
        SMA's batch context a batch of one class would leak the label into every prediction.
        """
        n = len(self.dataset)
        seed = EVAL_ORDER_SEED if not self.shuffle else self.seed * 1_000_003 + epoch
        return torch.randperm(n, generator=torch.Generator().manual_seed(seed))

    def _local(self, batch_index: torch.Tensor) -> torch.Tensor:
        share = math.ceil(len(batch_index) / self.world_size)
        return batch_index[self.rank * share : (self.rank + 1) * share]

    def _collate(self, idx: torch.Tensor) -> Any:
        if self._source is not None:
            tensors, index = self._source
            rows = index[idx]
            return (tensors[0][rows], tensors[1][rows].long().view(-1), *(t[rows] for t in tensors[2:]))  # extra tensors: e.g. environment ids
        items = [self.dataset[int(i)] for i in idx]
        if self.graph:
            from torch_geometric.data import Batch

            batch = Batch.from_data_list(items)
            batch.y = batch.y.view(-1).long()
            return batch
        xs, ys = zip(*items)
        return torch.stack([torch.as_tensor(x) for x in xs]), torch.as_tensor([int(y) for y in ys], dtype=torch.long)

    def __iter__(self) -> Iterator[Any]:
        # A generator: the epoch's order and the resume position are read at the first next(),
        # not at iter(), because Lightning calls iter() once merely to check the loader.
        order = self.order(self.epoch)
        skip, self._skip = self._skip, 0
        for b in range(skip, len(self)):
            local = self._local(order[b * self.batch_size : (b + 1) * self.batch_size])
            if len(local):
                yield self._collate(local)


def make_loader(dataset: Dataset, batch_size: int, *, train: bool, seed: int, graph: bool) -> EpochLoader:
    """A training (shuffled) or evaluation loader for this process (sharded under DDP)."""
    from hetmem.distributed import rank, world_size

    w = world_size()
    return EpochLoader(
        dataset,
        batch_size,
        shuffle=train,
        seed=seed,
        drop_last=train and w > 1,  # every rank must take a step: no ragged last global batch
        rank=rank(),
        world_size=w,
        graph=graph,
    )
