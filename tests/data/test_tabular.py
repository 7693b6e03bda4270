import os
import random

import numpy as np
import pytest
import torch

from hetmem.data import dataset_labels, load_task
from hetmem.data.tabular import mnist1d_arrays, standardize

SKLEARN = {
    # name: (num_classes, input shape, (train, val, test), class counts of the whole set)
    "digits": (10, (1, 8, 8), (1079, 359, 359), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]),
    "breast-cancer": (2, (30,), (341, 114, 114), [212, 357]),
    "wine": (3, (13,), (106, 36, 36), [59, 71, 48]),
}


def _splits(task):
    return {"train": task.train, "val": task.val, **task.tests}


def _row_keys(x: torch.Tensor) -> set[bytes]:
    return {row.numpy().tobytes() for row in x.flatten(1)}


@pytest.mark.parametrize("name", SKLEARN)
def test_sklearn_task_sizes_shapes_labels(name):
    num_classes, shape, sizes, counts = SKLEARN[name]
    task = load_task(name)
    assert task.num_classes == num_classes and task.input_spec.shape == shape and task.metric == "accuracy"
    assert tuple(task.sizes().values()) == sizes
    assert task.info["split_sizes"] == dict(zip(("train", "val", "test"), sizes))
    total = np.zeros(num_classes, dtype=int)
    for split, ds in _splits(task).items():
        x, y = ds.tensors
        assert x.shape[1:] == shape and x.dtype == torch.float32 and y.dtype == torch.int64
        part = np.bincount(y.numpy(), minlength=num_classes)
        assert np.abs(part - np.array(counts) * len(y) / sum(counts)).max() <= 2, split  # stratified
        total += part
    assert total.tolist() == counts


@pytest.mark.parametrize("name", SKLEARN)
def test_sklearn_task_splits_are_disjoint(name):
    task = load_task(name)
    keys = [_row_keys(ds.tensors[0]) for ds in _splits(task).values()]
    assert sum(len(k) for k in keys) == len(set().union(*keys)) == sum(SKLEARN[name][2])


def test_digits_pixels_scaled_to_unit_range():
    x = load_task("digits").train.tensors[0]
    assert x.min() == 0 and x.max() == 1


@pytest.mark.parametrize("name", ["breast-cancer", "wine"])
def test_features_standardised_with_training_statistics(name):
    task = load_task(name)
    x = task.train.tensors[0]
    assert torch.allclose(x.mean(0), torch.zeros(x.shape[1]), atol=1e-5)
    assert torch.allclose(x.std(0, unbiased=False), torch.ones(x.shape[1]), atol=1e-4)
    assert not torch.allclose(task.tests["test"].tensors[0].mean(0), torch.zeros(x.shape[1]), atol=1e-3)


def test_standardize_leaves_constant_features_finite():
    a, b = standardize(np.array([[1.0, 5.0], [3.0, 5.0]]), np.array([[2.0, 6.0]]))
    assert a.tolist() == [[-1.0, 0.0], [1.0, 0.0]] and b.tolist() == [[0.0, 1.0]]


@pytest.mark.parametrize("name", SKLEARN)
def test_sklearn_task_determinism_and_per_class(name):
    a, b = load_task(name, seed=0), load_task(name, seed=5)
    for s, t in zip(_splits(a).values(), _splits(b).values()):
        assert all(torch.equal(u, v) for u, v in zip(s.tensors, t.tensors))
    other = load_task(name, split_seed=1)
    assert not torch.equal(other.tests["test"].tensors[0], a.tests["test"].tensors[0])
    sub = load_task(name, per_class=4, seed=1)
    assert np.bincount(dataset_labels(sub.train)).tolist() == [4] * a.num_classes
    assert sub.train.indices == load_task(name, per_class=4, seed=1).train.indices
    assert sub.train.indices != load_task(name, per_class=4, seed=2).train.indices
    assert torch.equal(sub.val.tensors[0], a.val.tensors[0])  # scarcity changes train only


@pytest.fixture(scope="module")
def mnist1d():
    return load_task("mnist1d")


def test_mnist1d_sizes_shapes_and_splits(mnist1d):
    x_train, y_train, x_test, y_test, args = mnist1d_arrays()
    assert x_train.shape == (4000, 40) and x_test.shape == (1000, 40) and args["seed"] == 42
    assert mnist1d.sizes() == {"train": 3600, "val": 400, "test": 1000}
    assert mnist1d.num_classes == 10 and mnist1d.input_spec.shape == (40,)
    for ds in _splits(mnist1d).values():
        x, y = ds.tensors
        assert x.shape[1:] == (40,) and x.dtype == torch.float32 and 0 <= y.min() and y.max() <= 9
    assert torch.equal(mnist1d.tests["test"].tensors[0], torch.tensor(x_test, dtype=torch.float32))
    val_counts = np.bincount(mnist1d.val.tensors[1].numpy(), minlength=10)
    assert np.abs(val_counts - np.bincount(y_train) / 10).max() <= 2  # stratified 10%
    keys = [_row_keys(ds.tensors[0]) for ds in _splits(mnist1d).values()]
    assert len(set().union(*keys)) == 5000  # disjoint


def test_mnist1d_determinism_and_per_class(mnist1d):
    again = load_task("mnist1d", seed=9)
    assert torch.equal(again.train.tensors[0], mnist1d.train.tensors[0])
    assert not torch.equal(load_task("mnist1d", split_seed=1).val.tensors[0], mnist1d.val.tensors[0])
    sub = load_task("mnist1d", per_class=3, seed=0)
    assert np.bincount(dataset_labels(sub.train)).tolist() == [3] * 10
    assert sub.train.indices != load_task("mnist1d", per_class=3, seed=1).train.indices


def test_mnist1d_generation_writes_nothing_and_keeps_global_rng(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mnist1d_arrays.cache_clear()
    random.seed(123)
    np.random.seed(123)
    expected = (random.random(), np.random.random())
    random.seed(123)
    np.random.seed(123)
    mnist1d_arrays()  # regenerates (the generator reseeds the global generators internally)
    assert (random.random(), np.random.random()) == expected
    assert os.listdir(tmp_path) == []
