"""Tasks: a registry of loaders that each return a :class:`TaskData` (splits + what the model needs)."""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from hetmem.backbones.spec import InputSpec
from hetmem.errors import ConfigError, HetmemError

__all__ = [
    "DataError",
    "TaskData",
    "TaskEntry",
    "register_task",
    "load_task",
    "list_tasks",
    "task_entry",
    "task_options",
    "default_root",
    "dataset_labels",
    "subsample_per_class",
    "validate_task",
]

log = logging.getLogger(__name__)


class DataError(HetmemError, ValueError):
    """A data set is present but unusable (empty split, labels out of range, NaN features...)."""


@dataclass
class TaskData:
    """Everything the runner needs from a task.

    Datasets yield ``(x, y)`` pairs (tensor tasks: x a float tensor of ``input_spec.shape``,
    y a 0-d long tensor) or ``torch_geometric.data.Data`` objects with a long ``y`` of shape
    (1,) (graph tasks).
    """

    name: str
    num_classes: int
    input_spec: InputSpec
    train: Dataset
    val: Dataset
    tests: dict[str, Dataset]  # named test splits: {"test": ...}, or {"reversed": ..., "gray": ...}
    metric: str = "accuracy"  # accuracy | mcc | rocauc: the number model selection and reports use
    class_names: list[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)  # provenance: source, protocol, split sizes
    train_envs: np.ndarray | None = None  # environment id (0..E-1) of every training row, int64 (len(train),); None: no environments

    @property
    def num_envs(self) -> int:
        """How many training environments the task has (0 without environments)."""
        return 0 if self.train_envs is None or len(self.train_envs) == 0 else int(self.train_envs.max()) + 1

    @property
    def is_graph(self) -> bool:
        return self.input_spec.kind == "graph"

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), **{k: len(v) for k, v in self.tests.items()}}


@dataclass(frozen=True)
class TaskEntry:
    name: str
    loader: Callable[..., TaskData]  # loader(*, root, seed, per_class, **options) -> TaskData
    offline: bool  # True when the data ships inside an installed package (works with no network)
    doc: str
    kind: str = "classification"  # or "sequence": the loader returns a hetmem.data.sequence.SequenceTaskData


_REGISTRY: dict[str, TaskEntry] = {}


def register_task(name: str, *, offline: bool, kind: str = "classification") -> Callable:
    """Decorator adding ``loader(*, root: Path, seed: int, per_class: int | None, **options)``;
    ``kind`` is "classification" (returns TaskData) or "sequence" (returns SequenceTaskData)."""
    if kind not in ("classification", "sequence"):
        raise ValueError(f"register_task: kind must be 'classification' or 'sequence', got {kind!r}")

    def wrap(loader: Callable[..., TaskData]) -> Callable[..., TaskData]:
        old = _REGISTRY.get(name)
        same = old is not None and (old.loader.__module__, old.loader.__qualname__) == (loader.__module__, loader.__qualname__)
        if old is not None and not same:  # the same function again is a module re-import: replace it
            raise ValueError(f"register_task: {name!r} is already registered")
        doc = (loader.__doc__ or "").strip().split("\n")[0]
        _REGISTRY[name] = TaskEntry(name, loader, offline, doc, kind)
        return loader

    return wrap


def list_tasks(*, offline: bool | None = None) -> list[str]:
    return sorted(n for n, e in _REGISTRY.items() if offline is None or e.offline == offline)


def task_entry(name: str) -> TaskEntry:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown task {name!r}; expected one of {list_tasks()}")
    return _REGISTRY[name]


def task_options(name: str) -> dict[str, Any]:
    """The options a task's loader accepts, with their defaults."""
    params = inspect.signature(task_entry(name).loader).parameters
    return {
        k: p.default
        for k, p in params.items()
        if k not in ("root", "seed", "per_class") and p.kind == p.KEYWORD_ONLY
    }


def default_root() -> Path:
    """Where download-only data sets are looked for: ``$HETMEM_DATA`` or ``./data``."""
    return Path(os.environ.get("HETMEM_DATA", "data"))


def load_task(
    name: str,
    *,
    root: str | Path | None = None,
    seed: int = 0,
    per_class: int | None = None,
    validate: bool = True,
    **options: Any,
) -> TaskData:
    """Loads task ``name``; ``per_class`` keeps that many training samples per class.

    Raises:
        ConfigError: unknown task or option, bad ``per_class``.
        DataNotFoundError: a download-only data set is not on disk.
        DataError: the data are unusable (see :func:`validate_task`).
    """
    entry = task_entry(name)
    allowed = task_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(f"task {name!r} has no option {unknown[0]!r}; its options are {sorted(allowed)}")
    if per_class is not None and (not isinstance(per_class, int) or per_class <= 0):
        raise ConfigError(f"per_class must be a positive int or None, got {per_class!r}")
    if per_class is not None and entry.kind == "sequence":
        raise ConfigError(f"per_class applies to classification tasks; {name!r} is a sequence task")
    task = entry.loader(root=Path(root) if root is not None else default_root(), seed=seed, per_class=per_class, **options)
    if validate and entry.kind == "classification":  # sequence tasks check their data as they build it
        validate_task(task)
    return task


# ----- helpers shared by the loaders ------------------------------------------------------
def dataset_labels(dataset: Dataset) -> np.ndarray:
    """Integer labels of every sample, without loading inputs where the dataset allows it."""
    if isinstance(dataset, Subset):
        return dataset_labels(dataset.dataset)[np.asarray(dataset.indices)]
    tensors = getattr(dataset, "tensors", None)
    if tensors is not None:  # TensorDataset
        return tensors[1].cpu().numpy().reshape(-1)
    labels = []
    for i in range(len(dataset)):
        item = dataset[i]
        labels.append(int(item.y) if hasattr(item, "y") else int(item[1]))  # graph Data, or an (x, y) pair
    return np.asarray(labels, dtype=np.int64)


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:  # a run loads its task once per seed
        _warned.add(message)
        log.warning(message)


def subsample_per_class(dataset: Dataset, per_class: int | None, seed: int) -> Dataset:
    """Keeps ``per_class`` random samples of each class (all of a class that has fewer).

    The choice depends only on ``seed`` and the labels, so every variant of an experiment
    trains on the same samples.
    """
    if per_class is None:
        return dataset
    labels = dataset_labels(dataset)
    counts = np.bincount(labels) if len(labels) else np.zeros(1, dtype=int)
    counts = counts[counts > 0]
    if per_class >= counts.max():
        _warn_once(f"per_class={per_class} is at least the largest class ({counts.max()} samples): "
                   f"all {len(labels)} training samples are used")
    elif per_class > counts.min():
        _warn_once(f"per_class={per_class}: {int((counts < per_class).sum())} of {len(counts)} classes have fewer "
                   f"samples (smallest: {counts.min()}) and keep all they have")
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        keep.extend(rng.permutation(idx)[:per_class].tolist())
    return Subset(dataset, sorted(keep))


def validate_task(task: TaskData) -> None:
    """Raises DataError for an empty split, fewer than two classes, labels outside
    [0, num_classes), or non-finite inputs in tensor tasks."""
    if task.num_classes < 2:
        raise DataError(f"task {task.name!r} has {task.num_classes} class; classification needs at least 2")
    for split, ds in {"train": task.train, "val": task.val, **task.tests}.items():
        if len(ds) == 0:
            raise DataError(f"task {task.name!r}: the {split} split is empty")
        labels = dataset_labels(ds)
        if labels.min() < 0 or labels.max() >= task.num_classes:
            raise DataError(
                f"task {task.name!r}: {split} labels must be in [0, {task.num_classes}), "
                f"got values in [{labels.min()}, {labels.max()}]"
            )
        base = ds.dataset if isinstance(ds, Subset) else ds
        tensors = getattr(base, "tensors", None)
        if tensors is not None and not torch.isfinite(tensors[0]).all():
            raise DataError(f"task {task.name!r}: the {split} inputs contain NaN or Inf")
