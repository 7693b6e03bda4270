import math

import numpy as np
import pytest
import torch

from hetmem.data import dataset_labels, load_task
from hetmem.data.images import colorize, irm_labels_and_colors, mnist_digits
from hetmem.errors import ConfigError


def _digit_index(image_size: int) -> dict[bytes, int]:
    """Maps the bytes of each (downsampled) source digit to its row in mnist_digits()."""
    images, _ = mnist_digits()
    images = images if image_size == 28 else images[:, ::2, ::2]
    table = {img.tobytes(): i for i, img in enumerate(images)}
    assert len(table) == len(images)  # the 5,000 digits are distinct, so content identifies them
    return table


def _source_rows(x: torch.Tensor, table: dict[bytes, int]) -> np.ndarray:
    """Rows in mnist_digits() of a batch of images (B, C, S, S) in [0, 1] (colour removed by a max)."""
    pixels = torch.round(x.amax(dim=1) * 255).to(torch.uint8).numpy()  # (B, S, S)
    return np.array([table[p.tobytes()] for p in pixels])


def _colors(x: torch.Tensor) -> torch.Tensor:
    """0 (red) or 1 (green) for images (B, 2, S, S) with one channel zeroed."""
    return (x[:, 1].flatten(1).sum(1) > 0).long()


def _near(observed: float, p: float, n: int) -> bool:
    return abs(observed - p) <= 4.5 * math.sqrt(p * (1 - p) / n)  # ~4.5 standard errors


@pytest.fixture(scope="module")
def cmnist():
    return load_task("colored-mnist")


def test_mnist_digits_cache_is_read_only():
    images, digits = mnist_digits()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(digits).tolist() == [500] * 10
    assert mnist_digits()[0] is images
    with pytest.raises(ValueError, match="read-only"):
        images[0, 0, 0] = 1


def test_colorize_and_irm_labels():
    images = np.ones((3, 2, 2), dtype=np.float32)
    out = colorize(images, np.array([0, 1, 0]))
    assert out.shape == (3, 2, 2, 2)
    assert out[:, 0].sum((1, 2)).tolist() == [4, 0, 4] and out[:, 1].sum((1, 2)).tolist() == [0, 4, 0]
    assert (colorize(images, None) == 1).all()
    y, c = irm_labels_and_colors(
        np.array([0, 9]), np.array([0.5, 0.5]), np.array([0.5, 0.05]), label_noise=0.25, color_flip=0.1
    )
    assert y.tolist() == [1, 0] and c.tolist() == [1, 1]


def test_colored_mnist_sizes_shapes_and_info(cmnist):
    assert cmnist.sizes() == {"train": 3000, "val": 500, "reversed": 1500, "gray": 1500}
    assert cmnist.num_classes == 2 and cmnist.metric == "accuracy"
    assert cmnist.input_spec.shape == (2, 14, 14)
    for ds in (cmnist.train, cmnist.val, *cmnist.tests.values()):
        x, y = ds.tensors
        assert x.shape[1:] == (2, 14, 14) and x.dtype == torch.float32 and y.dtype == torch.int64
        assert 0 <= x.min() and x.max() <= 1 and set(y.unique().tolist()) == {0, 1}
    assert cmnist.info["train_envs"]["env1"] == {"p": 0.2, "size": 1500, "range": [0, 1500]}
    assert cmnist.info["train_envs"]["env2"] == {"p": 0.1, "size": 1500, "range": [1500, 3000]}
    assert cmnist.info["val_envs"]["env2"]["range"] == [250, 500]


def test_colored_mnist_image_size_28():
    task = load_task("colored-mnist", image_size=28)
    assert task.input_spec.shape == (2, 28, 28) and task.train.tensors[0].shape == (3000, 2, 28, 28)
    _source_rows(task.tests["gray"].tensors[0], _digit_index(28))  # every image is a real digit


def test_colored_mnist_splits_are_disjoint_and_cover_the_digits(cmnist):
    table = _digit_index(14)
    splits = {"train": cmnist.train, "val": cmnist.val, **cmnist.tests}
    rows = {k: _source_rows(ds.tensors[0], table) for k, ds in splits.items()}
    assert np.array_equal(rows["reversed"], rows["gray"])  # the same test digits seen twice
    joined = np.concatenate([rows["train"], rows["val"], rows["gray"]])
    assert len(np.unique(joined)) == 5000


def test_colored_mnist_one_channel_per_coloured_image_gray_has_equal_channels(cmnist):
    for ds in (cmnist.train, cmnist.val, cmnist.tests["reversed"]):
        x = ds.tensors[0]
        lit = (x.flatten(2).sum(2) > 0).sum(1)  # (B,) channels with any ink
        assert (lit == 1).all()
    gray = cmnist.tests["gray"].tensors[0]
    assert torch.equal(gray[:, 0], gray[:, 1])
    assert torch.equal(gray.amax(1), cmnist.tests["reversed"].tensors[0].amax(1))
    assert torch.equal(cmnist.tests["gray"].tensors[1], cmnist.tests["reversed"].tensors[1])


def test_colored_mnist_protocol_statistics(cmnist):
    """On the real digits: colour disagrees with the label ~p per environment; labels ~25% noisy."""
    x, y = cmnist.train.tensors
    disagree = (_colors(x) != y).float()
    assert _near(disagree[:1500].mean().item(), 0.2, 1500)
    assert _near(disagree[1500:].mean().item(), 0.1, 1500)
    xv, yv = cmnist.val.tensors
    assert _near((_colors(xv) != yv).float().mean().item(), 0.15, 500)
    xr, yr = cmnist.tests["reversed"].tensors
    assert _near((_colors(xr) != yr).float().mean().item(), 0.9, 1500)

    table = _digit_index(14)
    _, digits = mnist_digits()
    flipped = []
    for ds in (cmnist.train, cmnist.val, cmnist.tests["gray"]):
        clean = torch.from_numpy(digits[_source_rows(ds.tensors[0], table)] < 5).long()
        flipped.append((ds.tensors[1] != clean).float())
    assert _near(torch.cat(flipped).mean().item(), 0.25, 5000)


def test_colored_mnist_colour_options_change_only_colours(cmnist):
    other = load_task("colored-mnist", p1=0.0, p2=0.02, test_p=0.8)
    assert torch.equal(other.train.tensors[1], cmnist.train.tensors[1])
    assert torch.equal(other.train.tensors[0].amax(1), cmnist.train.tensors[0].amax(1))
    assert torch.equal(other.tests["gray"].tensors[0], cmnist.tests["gray"].tensors[0])
    x, y = other.train.tensors
    assert (_colors(x[:1500]) == y[:1500]).all()  # p1 = 0: colour always agrees in env 1


def test_colored_mnist_determinism(cmnist):
    again = load_task("colored-mnist", seed=7)  # another run seed, no subsampling: same data
    for a, b in zip((cmnist.train, cmnist.val, *cmnist.tests.values()), (again.train, again.val, *again.tests.values())):
        assert all(torch.equal(s, t) for s, t in zip(a.tensors, b.tensors))
    other = load_task("colored-mnist", split_seed=1)
    assert not torch.equal(other.tests["gray"].tensors[0], cmnist.tests["gray"].tensors[0])


def test_colored_mnist_per_class(cmnist):
    a = load_task("colored-mnist", per_class=20, seed=0)
    assert np.bincount(dataset_labels(a.train)).tolist() == [20, 20]
    assert a.train.indices == load_task("colored-mnist", per_class=20, seed=0).train.indices
    assert a.train.indices != load_task("colored-mnist", per_class=20, seed=1).train.indices
    assert torch.equal(a.val.tensors[0], cmnist.val.tensors[0])


@pytest.mark.parametrize(
    ("option", "value", "match"),
    [("image_size", 20, "image_size must be one of"), ("p1", 1.5, "p1 must be a probability")],
)
def test_colored_mnist_bad_options(option, value, match):
    with pytest.raises(ConfigError, match=match):
        load_task("colored-mnist", **{option: value})


@pytest.mark.parametrize("image_size", [28, 14])
def test_mnist(image_size):
    task = load_task("mnist", image_size=image_size)
    assert task.sizes() == {"train": 3500, "val": 500, "test": 1000}
    assert task.num_classes == 10 and task.input_spec.shape == (1, image_size, image_size)
    table = _digit_index(image_size)
    _, digits = mnist_digits()
    rows = []
    for ds, per_class in ((task.train, 350), (task.val, 50), (task.tests["test"], 100)):
        x, y = ds.tensors
        assert x.shape[1:] == (1, image_size, image_size) and 0 <= x.min() and x.max() <= 1
        r = _source_rows(x, table)
        assert np.array_equal(digits[r], y.numpy())  # labels are the digits
        assert np.abs(np.bincount(y.numpy(), minlength=10) - per_class).max() <= 1  # stratified
        rows.append(r)
    assert len(np.unique(np.concatenate(rows))) == 5000  # disjoint, covering the 5,000 digits


def test_mnist_determinism_and_per_class():
    a, b = load_task("mnist", seed=0), load_task("mnist", seed=3)
    assert torch.equal(a.train.tensors[0], b.train.tensors[0])
    assert torch.equal(a.tests["test"].tensors[0], b.tests["test"].tensors[0])
    assert not torch.equal(load_task("mnist", split_seed=1).tests["test"].tensors[0], a.tests["test"].tensors[0])
    sub = load_task("mnist", per_class=5, seed=2)
    assert np.bincount(dataset_labels(sub.train)).tolist() == [5] * 10
    assert sub.train.indices != load_task("mnist", per_class=5, seed=4).train.indices
