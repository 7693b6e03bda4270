"""Small tasks that ship inside packages: scikit-learn's ``digits``, ``breast-cancer`` and ``wine``,
and ``mnist1d`` (MNIST-1D, generated procedurally)."""

from __future__ import annotations

import functools
import random
from pathlib import Path

import numpy as np

from hetmem.backbones.spec import InputSpec
from hetmem.data.splits import fraction_sizes, optional_import, read_only, stratified_split, tensor_dataset
from hetmem.data.task import TaskData, register_task, subsample_per_class

__all__ = ["load_breast_cancer", "load_digits", "load_mnist1d", "load_wine", "mnist1d_arrays", "standardize"]

_FRACTIONS = (0.6, 0.2, 0.2)  # train / val / test


def standardize(train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Scales features to zero mean and unit variance with the statistics of ``train`` only.

    Args:
        train: training features, shape (N, F); gives the mean and standard deviation.
        others: further arrays (M, F) scaled with the same statistics (validation, test).

    Returns:
        ``(train, *others)`` standardised; a constant feature is only centred.

    Example:
        >>> a, b = standardize(np.array([[0.0], [2.0]]), np.array([[4.0]]))
        >>> a.ravel().tolist(), b.ravel().tolist()
        ([-1.0, 1.0], [3.0])
    """
    mean = train.mean(axis=0)  # (F,)
    std = train.std(axis=0)  # (F,)
    std = np.where(std > 0, std, 1.0)
    return tuple((a - mean) / std for a in (train, *others))


def _sklearn_task(
    name: str,
    loader: str,
    *,
    seed: int,
    per_class: int | None,
    split_seed: int,
    as_image: bool,
) -> TaskData:
    """A scikit-learn toy data set split stratified 60/20/20 with ``split_seed``.

    ``as_image``: 8x8 digits scaled by 1/16 to (1, 8, 8); otherwise features standardised with
    the statistics of the whole training split (before per-class subsampling, so validation and
    test inputs do not depend on the run seed).
    """
    bunch = getattr(optional_import("sklearn.datasets", "data"), loader)()
    x, y = np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)  # (N, F), (N,)
    sizes = fraction_sizes(len(y), _FRACTIONS)
    train_idx, val_idx, test_idx = stratified_split(y, sizes, split_seed)
    if as_image:
        x = (x / 16.0).reshape(-1, 1, 8, 8)  # (N, 1, 8, 8), pixels 0-16 -> [0, 1]
        spec, preprocessing = InputSpec.image(1, 8, 8), "pixels / 16"
        x_train, x_val, x_test = x[train_idx], x[val_idx], x[test_idx]
    else:
        spec = InputSpec.vector(x.shape[1])
        preprocessing = "standardised with the mean/std of the full training split (before per_class subsampling)"
        x_train, x_val, x_test = standardize(x[train_idx], x[val_idx], x[test_idx])
    train = tensor_dataset(x_train, y[train_idx])
    return TaskData(
        name=name,
        num_classes=len(bunch.target_names),
        input_spec=spec,
        train=subsample_per_class(train, per_class, seed),
        val=tensor_dataset(x_val, y[val_idx]),
        tests={"test": tensor_dataset(x_test, y[test_idx])},
        metric="accuracy",
        class_names=[str(c) for c in bunch.target_names],
        info={
            "source": f"sklearn.datasets.{loader}",
            "protocol": f"stratified 60/20/20 split; {preprocessing}",
            "split_seed": split_seed,
            "split_sizes": dict(zip(("train", "val", "test"), sizes)),
            "per_class": per_class,
        },
    )


@register_task("digits", offline=True)
def load_digits(*, root: Path, seed: int, per_class: int | None, split_seed: int = 0) -> TaskData:
    """scikit-learn digits: 1,797 8x8 images (pixels 0-16, scaled by 1/16), 10 classes, 60/20/20.

    Args:
        root: unused (the data ship inside scikit-learn).
        seed: run seed; only chooses the ``per_class`` training subsample.
        per_class: training samples kept per class, or None for all.
        split_seed: seed of the stratified split.

    Returns:
        TaskData with inputs (1, 8, 8) in [0, 1]; splits 1,079 / 359 / 359.
    """
    return _sklearn_task("digits", "load_digits", seed=seed, per_class=per_class, split_seed=split_seed, as_image=True)


@register_task("breast-cancer", offline=True)
def load_breast_cancer(*, root: Path, seed: int, per_class: int | None, split_seed: int = 0) -> TaskData:
    """scikit-learn breast cancer (Wisconsin): 569 samples, 30 standardised features, 2 classes, 60/20/20.

    Args:
        root: unused (the data ship inside scikit-learn).
        seed: run seed; only chooses the ``per_class`` training subsample.
        per_class: training samples kept per class, or None for all.
        split_seed: seed of the stratified split.

    Returns:
        TaskData with inputs (30,); splits 341 / 114 / 114.
    """
    return _sklearn_task(
        "breast-cancer", "load_breast_cancer", seed=seed, per_class=per_class, split_seed=split_seed, as_image=False
    )


@register_task("wine", offline=True)
def load_wine(*, root: Path, seed: int, per_class: int | None, split_seed: int = 0) -> TaskData:
    """scikit-learn wine: 178 samples, 13 standardised features, 3 classes, 60/20/20.

    Args:
        root: unused (the data ship inside scikit-learn).
        seed: run seed; only chooses the ``per_class`` training subsample.
        per_class: training samples kept per class, or None for all.
        split_seed: seed of the stratified split.

    Returns:
        TaskData with inputs (13,); splits 106 / 36 / 36.
    """
    return _sklearn_task("wine", "load_wine", seed=seed, per_class=per_class, split_seed=split_seed, as_image=False)


@functools.lru_cache(maxsize=1)
def mnist1d_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
    """MNIST-1D generated with the package's default arguments, once per process (about 2 s).

    ``mnist1d.data.make_dataset`` reseeds Python's and NumPy's global generators; their states
    are restored afterwards so loading the task does not change anyone else's randomness.
    Nothing is downloaded or written to disk.

    Returns:
        ``(x_train, y_train, x_test, y_test, args)``: read-only float64 (4000, 40), int64
        (4000,), float64 (1000, 40), int64 (1000,), and the generator arguments used.
    """
    data = optional_import("mnist1d.data", "data")
    args = data.get_dataset_args()
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        generated = data.make_dataset(args)  # procedural; never data.get_dataset (it downloads)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    arrays = read_only(
        np.asarray(generated["x"], dtype=np.float64),
        np.asarray(generated["y"], dtype=np.int64),
        np.asarray(generated["x_test"], dtype=np.float64),
        np.asarray(generated["y_test"], dtype=np.int64),
    )
    used = {k: v for k, v in data.get_dataset_args(as_dict=True).items() if k != "url"}
    return (*arrays, used)


@register_task("mnist1d", offline=True)
def load_mnist1d(*, root: Path, seed: int, per_class: int | None, split_seed: int = 0) -> TaskData:
    """MNIST-1D (Greydanus 2020), generated: 4,000 train / 1,000 test sequences of length 40, 10 classes.

    The generator's own train/test split is kept; 10% of the training sequences (stratified,
    ``split_seed``) are held out for validation, giving 3,600 / 400 / 1,000. Inputs are as
    generated (the generator centres and scales the whole set).

    Args:
        root: unused (the data are generated in memory).
        seed: run seed; only chooses the ``per_class`` training subsample.
        per_class: training samples kept per class, or None for all.
        split_seed: seed of the stratified validation hold-out.

    Returns:
        TaskData with inputs (40,).
    """
    x, y, x_test, y_test, args = mnist1d_arrays()
    train_idx, val_idx = stratified_split(y, fraction_sizes(len(y), (0.9, 0.1)), split_seed)
    train = tensor_dataset(x[train_idx], y[train_idx])
    return TaskData(
        name="mnist1d",
        num_classes=10,
        input_spec=InputSpec.vector(x.shape[1]),
        train=subsample_per_class(train, per_class, seed),
        val=tensor_dataset(x[val_idx], y[val_idx]),
        tests={"test": tensor_dataset(x_test, y_test)},
        metric="accuracy",
        class_names=[str(d) for d in range(10)],
        info={
            "source": "mnist1d.data.make_dataset(get_dataset_args()), generated in memory",
            "generator_args": dict(args),
            "protocol": "the generator's 4,000/1,000 train/test split; 10% of train held out (stratified)",
            "split_seed": split_seed,
            "split_sizes": {"train": len(train_idx), "val": len(val_idx), "test": len(y_test)},
            "per_class": per_class,
        },
    )
