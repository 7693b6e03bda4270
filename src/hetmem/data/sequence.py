"""Sequence tasks: what :func:`hetmem.data.load_task` returns for ``three-moons``, ``regbench``
and ``shakespeare``, and the split types they are made of.

A classification task yields ``(x, y)`` samples; a sequence task yields whole *batches*
(dicts of tensors), because its examples have different lengths (RegBench is batched by
length, never padded to the corpus maximum) or are drawn afresh for every step (random
windows of a corpus, fresh three-moons phases). Every split answers two questions:
``num_batches(batch_size)`` and ``batch(seed=, epoch=, index=, batch_size=)``. A training
split's batch depends only on ``(seed, epoch, index)``, so an interrupted run resumes on
exactly the batches it would have seen; an evaluation split ignores seed and epoch.

Batch keys (B = batch, T = time, V = vocabulary, D = vector size):

- ``idx`` (B, T) long and ``targets`` (B, T) long, :data:`IGNORE` where there is nothing to
  predict (padding): token tasks.
- ``dist`` (B, T, V) float, ``mask`` (B, T) bool, ``last`` (B,) long: RegBench evaluation, the
  exact next-token distribution, the positions it is scored at, and the last of them.
- ``x`` (B, T, D) and ``y`` (B, T, D) float: vector sequences (three moons, y_t = x_{t+1}).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "IGNORE",
    "check_positive_options",
    "BatchSplit",
    "SequenceTaskData",
    "TokenSequences",
    "Batches",
    "split_rng",
]

IGNORE = -100  # target of a padded position (F.cross_entropy's default ignore_index)


def split_rng(seed: int, epoch: int, index: int, stream: int = 0) -> np.random.Generator:
    """The random stream of one training batch (``stream`` 0) or of an epoch's batch plan
    (``stream`` 1): a function of its arguments only."""
    return np.random.default_rng([stream, seed % (1 << 32), epoch, index])


def check_positive_options(task: str, **options: Any) -> None:
    """Raises ConfigError naming the first option that is not a positive int (a bool is not one).

    Example:
        >>> check_positive_options("demo", seq_len=0)
        Traceback (most recent call last):
        ...
        hetmem.errors.ConfigError: task option 'seq_len' of demo must be a positive int, got 0
    """
    from hetmem.errors import ConfigError

    for name, value in options.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"task option '{name}' of {task} must be a positive int, got {value!r}")


class BatchSplit(Protocol):
    """A split of a sequence task (see the module docstring)."""

    def num_batches(self, batch_size: int) -> int: ...

    def batch(self, *, seed: int, epoch: int, index: int, batch_size: int) -> dict[str, Tensor]: ...


@dataclass
class SequenceTaskData:
    """Everything the runner needs from a sequence task.

    ``objective`` picks the loss and the evaluation statistics (``hetmem.train.objectives``):
    ``"lm"`` for next-token prediction on token ids, ``"moons"`` for the clipped regression
    loss of the three-moons toy. ``models`` are the model names ``hetmem train --backbone``
    accepts for the task (the first is the default).
    """

    name: str
    objective: str
    train: BatchSplit
    val: BatchSplit
    tests: dict[str, BatchSplit]
    models: tuple[str, ...]
    metric: str = "loss"  # the validation number model selection uses
    metric_mode: str = "min"  # "min" (a loss) or "max" (an accuracy)
    vocab: list[str] | None = None  # token strings of a token task (index = token id)
    input_dim: int | None = None  # D of a vector task
    max_len: int = 0  # the longest training input: a GPT baseline's block size
    info: dict[str, Any] = field(default_factory=dict)
    kind: ClassVar[str] = "sequence"

    @property
    def is_graph(self) -> bool:
        return False

    @property
    def vocab_size(self) -> int:
        return len(self.vocab) if self.vocab is not None else 0

    def sizes(self) -> dict[str, int]:
        """Sequences (or batches of the default size, for on-the-fly splits) per split."""
        return {"train": len(self.train), "val": len(self.val), **{k: len(v) for k, v in self.tests.items()}}


def _pad(rows: Sequence[np.ndarray], value: float, dtype: torch.dtype) -> Tensor:
    """Stacks 1-D or 2-D arrays of different lengths into (B, T_max, ...), filled with ``value``."""
    T = max(len(r) for r in rows)
    out = torch.full((len(rows), T, *rows[0].shape[1:]), value, dtype=dtype)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.as_tensor(r, dtype=dtype)
    return out


class TokenSequences:
    """Token sequences of different lengths, batched by length.

    Args:
        examples: one dict per sequence with ``idx`` and ``targets`` (1-D int arrays of one
            length) and optionally ``dist`` (T, V) and ``mask`` (T,) (see the module docstring).
        shuffle: a training split: batches of similar lengths, drawn anew every epoch from a
            window of ``bucket`` batches after a random permutation, in random order.
            Otherwise a fixed order (sorted by length) for evaluation.
        bucket: batches per sorting window (training only).

    Example:
        >>> seqs = [{"idx": np.arange(n), "targets": np.arange(1, n + 1)} for n in (3, 9, 4, 8)]
        >>> split = TokenSequences(seqs, shuffle=False)
        >>> [tuple(split.batch(seed=0, epoch=0, index=i, batch_size=2)["idx"].shape) for i in range(2)]
        [(2, 4), (2, 9)]
    """

    def __init__(self, examples: list[dict[str, np.ndarray]], *, shuffle: bool, bucket: int = 20) -> None:
        if not examples:
            raise ValueError("TokenSequences: no examples")
        self.examples = examples
        self.lengths = np.array([len(e["idx"]) for e in examples])
        self.shuffle = shuffle
        self.bucket = bucket

    def __len__(self) -> int:
        return len(self.examples)

    def num_batches(self, batch_size: int) -> int:
        return -(-len(self.examples) // batch_size)

    @functools.lru_cache(maxsize=4)
    def _plan(self, seed: int, epoch: int, batch_size: int) -> list[np.ndarray]:
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        rng = split_rng(seed, epoch, 0, stream=1)
        order = rng.permutation(len(self.examples))
        window = batch_size * self.bucket
        batches = []
        for start in range(0, len(order), window):
            chunk = order[start : start + window]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
        return [batches[i] for i in rng.permutation(len(batches))]

    def batch(self, *, seed: int, epoch: int, index: int, batch_size: int) -> dict[str, Tensor]:
        rows = [self.examples[i] for i in self._plan(seed, epoch, batch_size)[index]]
        out = {
            "idx": _pad([r["idx"] for r in rows], 0, torch.long),
            "targets": _pad([r["targets"] for r in rows], IGNORE, torch.long),
        }
        if "dist" in rows[0]:
            out["dist"] = _pad([r["dist"] for r in rows], 0.0, torch.float32)
            out["mask"] = _pad([r["mask"] for r in rows], False, torch.bool)
            out["last"] = torch.tensor([int(np.flatnonzero(r["mask"])[-1]) if r["mask"].any() else 0 for r in rows])
        return out


class Batches:
    """A split made by a function of ``(rng, batch_size)``: fresh samples for every training
    batch (``num`` batches per epoch), or, for evaluation, ``num`` fixed batches drawn from
    ``eval_seed`` (the same for every run and model).

    Example:
        >>> split = Batches(lambda rng, b: {"x": torch.as_tensor(rng.normal(size=(b, 3)))}, num=5)
        >>> split.batch(seed=0, epoch=1, index=2, batch_size=4)["x"].shape
        torch.Size([4, 3])
    """

    def __init__(self, make: Callable[[np.random.Generator, int], dict[str, Tensor]], *, num: int, eval_seed: int | None = None) -> None:
        if num <= 0:
            raise ValueError(f"Batches: num must be positive, got {num}")
        self.make = make
        self.num = num
        self.eval_seed = eval_seed

    def __len__(self) -> int:
        return self.num

    def num_batches(self, batch_size: int) -> int:
        return self.num

    def batch(self, *, seed: int, epoch: int, index: int, batch_size: int) -> dict[str, Tensor]:
        if self.eval_seed is not None:
            seed, epoch = self.eval_seed, 0
        return self.make(split_rng(seed, epoch, index), batch_size)
