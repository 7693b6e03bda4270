"""Helpers the task loaders share: exact-size stratified splits, option checks, tensor datasets,
read-only caches and lazy imports of optional dependencies.

Everything that defines a data set (its splits, its label noise, its colours) is drawn from a
fixed ``split_seed``, never from the run seed, so every run sees the same validation and test
sets; the run seed only chooses the per-class training subsample (see
:func:`hetmem.data.task.subsample_per_class`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset

from hetmem.errors import ConfigError
from hetmem.extras import optional_import  # re-exported: the loaders import it from here

__all__ = [
    "check_choice",
    "check_probability",
    "fraction_sizes",
    "optional_import",
    "read_only",
    "size_shift_split",
    "stratified_split",
    "tensor_dataset",
]


def fraction_sizes(n: int, fractions: Sequence[float]) -> list[int]:
    """Split sizes for ``n`` samples: ``round(f * n)`` for every fraction but the first, which
    takes the rest, so the sizes always add up to ``n``.

    Args:
        n: number of samples.
        fractions: positive fractions adding up to 1, e.g. ``(0.6, 0.2, 0.2)``.

    Returns:
        One size per fraction, summing to ``n``.

    Example:
        >>> fraction_sizes(1797, (0.6, 0.2, 0.2))
        [1079, 359, 359]
    """
    if not fractions or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"fraction_sizes: fractions must be positive and add up to 1, got {list(fractions)}")
    rest = [int(round(f * n)) for f in fractions[1:]]
    if sum(rest) > n:
        raise ValueError(f"fraction_sizes: {n} samples are too few for fractions {list(fractions)}")
    return [n - sum(rest), *rest]


def stratified_split(labels: np.ndarray, sizes: Sequence[int], seed: int) -> list[np.ndarray]:
    """Splits ``len(labels)`` samples into parts of exactly ``sizes``, each class spread over the
    parts in proportion to their sizes (within a sample or two per class).

    Each class is shuffled and its samples are given evenly spaced positions in [0, 1); sorting
    all samples by position interleaves the classes evenly, and consecutive runs of that order
    are the parts. Only ``seed`` and the labels decide the result.

    Args:
        labels: integer labels, shape (N,).
        sizes: the size of each part; must add up to N.
        seed: seed of the shuffle.

    Returns:
        One array of sample indices per part, sorted ascending; the parts are disjoint and
        cover ``range(N)``.

    Example:
        >>> train, test = stratified_split(np.array([0, 0, 0, 0, 1, 1]), [3, 3], seed=0)
        >>> len(train), len(test), sorted(np.r_[train, test].tolist()) == list(range(6))
        (3, 3, True)
    """
    labels = np.asarray(labels).reshape(-1)
    n = len(labels)
    if any(s < 0 for s in sizes) or sum(sizes) != n:
        raise ValueError(f"stratified_split: sizes {list(sizes)} must be non-negative and add up to {n}")
    rng = np.random.default_rng(seed)
    position = np.empty(n)
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        # evenly spaced positions (rank + offset) / count, the offset random per class
        position[members] = (np.arange(len(members)) + rng.random()) / len(members)
    order = np.lexsort((rng.random(n), position))  # ties between classes broken at random
    cuts = np.cumsum(sizes)[:-1]
    return [np.sort(part) for part in np.split(order, cuts)]


def tensor_dataset(x: np.ndarray, y: np.ndarray) -> TensorDataset:
    """A ``TensorDataset`` of float32 inputs and int64 labels, copied from numpy arrays.

    Args:
        x: inputs, shape (N, ...) (the task's ``input_spec.shape`` per sample).
        y: integer labels, shape (N,).

    Returns:
        ``TensorDataset(x float32 (N, ...), y int64 (N,))``.
    """
    if len(x) != len(y):
        raise ValueError(f"tensor_dataset: {len(x)} inputs but {len(y)} labels")
    return TensorDataset(
        torch.tensor(np.asarray(x, dtype=np.float32)),
        torch.tensor(np.asarray(y, dtype=np.int64).reshape(-1)),
    )


def read_only(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Marks arrays read-only, so a cached copy cannot be changed by a caller by accident."""
    for a in arrays:
        a.flags.writeable = False
    return arrays


def check_choice(task: str, option: str, value: Any, choices: Sequence[Any]) -> None:
    """Raises ConfigError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"task {task!r}: {option} must be one of {list(choices)}, got {value!r}")


def check_probability(task: str, option: str, value: float) -> None:
    """Raises ConfigError unless ``value`` is a number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"task {task!r}: {option} must be a probability in [0, 1], got {value!r}")


def size_shift_split(num_nodes: np.ndarray, labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The graph-size shift of HMA Table 6 (CIGA, Bevilacqua et al. 2021).

    The pool is the graphs with fewer nodes than the 50th percentile, 10% of it (stratified by
    label) is held out for validation; the test set is the graphs with more nodes than the 90th
    percentile. Graphs between the two (or exactly at a percentile) are left out.

    Args:
        num_nodes: node count of each graph, shape (G,).
        labels: class of each graph, shape (G,).
        seed: seed of the stratified hold-out.

    Returns:
        ``(train, val, test)`` graph indices, each sorted.

    Example:
        >>> sizes = np.arange(20) + 3
        >>> train, val, test = size_shift_split(sizes, np.arange(20) % 2, seed=0)
        >>> len(train), len(val), test.tolist(), bool(sizes[np.r_[train, val]].max() < sizes[test].min())
        (9, 1, [18, 19], True)
    """
    num_nodes, labels = np.asarray(num_nodes).reshape(-1), np.asarray(labels).reshape(-1)
    small, large = np.percentile(num_nodes, 50), np.percentile(num_nodes, 90)
    pool, test = np.flatnonzero(num_nodes < small), np.flatnonzero(num_nodes > large)
    part_train, part_val = stratified_split(labels[pool], fraction_sizes(len(pool), (0.9, 0.1)), seed)
    return pool[part_train], pool[part_val], test
