import numpy as np
import pytest
import torch

from hetmem.data.splits import (
    check_choice,
    check_probability,
    fraction_sizes,
    optional_import,
    read_only,
    stratified_split,
    tensor_dataset,
)
from hetmem.errors import ConfigError


@pytest.mark.parametrize(
    ("n", "fractions", "expected"),
    [
        (1797, (0.6, 0.2, 0.2), [1079, 359, 359]),
        (569, (0.6, 0.2, 0.2), [341, 114, 114]),
        (4000, (0.9, 0.1), [3600, 400]),
    ],
)
def test_fraction_sizes(n, fractions, expected):
    assert fraction_sizes(n, fractions) == expected


@pytest.mark.parametrize("fractions", [(), (0.5, 0.4), (1.2, -0.2), (0.0, 1.0)])
def test_fraction_sizes_rejects_bad_fractions(fractions):
    with pytest.raises(ValueError, match="fractions must be positive and add up to 1"):
        fraction_sizes(10, fractions)


def _labels(seed: int = 0, n: int = 997, classes: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.choice(classes, size=n, p=[0.5, 0.3, 0.15, 0.05][:classes])


def test_stratified_split_exact_sizes_disjoint_cover_sorted():
    labels = _labels()
    sizes = fraction_sizes(len(labels), (0.6, 0.2, 0.2))
    parts = stratified_split(labels, sizes, seed=0)
    assert [len(p) for p in parts] == sizes
    joined = np.concatenate(parts)
    assert len(np.unique(joined)) == len(labels) == len(joined)
    assert all((np.diff(p) > 0).all() for p in parts)


def test_stratified_split_keeps_class_proportions():
    labels = _labels()
    sizes = fraction_sizes(len(labels), (0.6, 0.2, 0.2))
    for part, size in zip(stratified_split(labels, sizes, seed=3), sizes):
        for c in np.unique(labels):
            expected = (labels == c).sum() * size / len(labels)
            assert abs((labels[part] == c).sum() - expected) <= 2


def test_stratified_split_depends_only_on_seed():
    labels = _labels()
    a = stratified_split(labels, [800, 197], seed=5)
    b = stratified_split(labels, [800, 197], seed=5)
    c = stratified_split(labels, [800, 197], seed=6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[1], c[1])


def test_stratified_split_rejects_sizes_that_do_not_add_up():
    with pytest.raises(ValueError, match="must be non-negative and add up to 5"):
        stratified_split(np.zeros(5), [2, 2], seed=0)


def test_tensor_dataset_dtypes_and_copy():
    x = np.arange(6, dtype=np.float64).reshape(3, 2)
    ds = tensor_dataset(x, np.array([0, 1, 1]))
    assert ds.tensors[0].dtype == torch.float32 and ds.tensors[1].dtype == torch.int64
    x[0, 0] = 99.0
    assert ds.tensors[0][0, 0] == 0.0  # copied, not shared
    with pytest.raises(ValueError, match="3 inputs but 2 labels"):
        tensor_dataset(x, np.array([0, 1]))


def test_read_only():
    (a,) = read_only(np.zeros(3))
    with pytest.raises(ValueError, match="read-only"):
        a[0] = 1.0


def test_option_checks_raise_config_error():
    check_choice("t", "split", "given", ("given", "size"))
    with pytest.raises(ConfigError, match=r"task 't': split must be one of \['given', 'size'\], got 'x'"):
        check_choice("t", "split", "x", ("given", "size"))
    check_probability("t", "p", 0.0)
    check_probability("t", "p", 1)
    for bad in (-0.1, 1.5, "0.2", True):
        with pytest.raises(ConfigError, match="p must be a probability in"):
            check_probability("t", "p", bad)


def test_optional_import_names_the_extra():
    assert optional_import("numpy", "data") is np
    with pytest.raises(ImportError, match=r"pip install 'hetmem\[graph\]'"):
        optional_import("surely_not_installed_pkg.sub", "graph")
