"""CIFAR loaders on tiny files in the official format (pickled dicts in a gzip tarball); no network."""

import dataclasses
import hashlib
import io
import os
import pickle
import tarfile
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from torch.utils.data import Subset, TensorDataset

from hetmem.backbones.spec import InputSpec
from hetmem.data import DataError, load_task, task_options
from hetmem.data import cifar
from hetmem.data.cifar import AugmentedTensorDataset, CropFlip
from hetmem.data.download import fetch_url
from hetmem.errors import ConfigError, DataNotFoundError, HetmemError

C10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
PER_BATCH, N_TEST = 20, 20  # 5 x 20 = 100 training images, 10 per class


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every download attempt fails at once, as with no network; the URLs asked for are recorded."""
    asked = []

    def refuse(url, *args, **kwargs):
        asked.append(url)
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return asked


def batch(n: int, offset: int, label_key: bytes = b"labels", num_classes: int = 10) -> dict:
    rng = np.random.default_rng(offset)
    return {
        b"batch_label": b"tiny batch",
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        label_key: [(offset + i) % num_classes for i in range(n)],
        b"filenames": [b"img_%d.png" % i for i in range(n)],
    }


def cifar10_files(overrides: dict | None = None) -> dict[str, bytes]:
    """Member name -> pickled bytes (protocol 2, like the official files)."""
    objs = {f"data_batch_{i}": batch(PER_BATCH, 100 * i) for i in range(1, 6)}
    objs["test_batch"] = batch(N_TEST, 7)
    objs["batches.meta"] = {b"label_names": [name.encode() for name in "abcdefghij"], b"num_vis": 3072}
    objs.update(overrides or {})
    return {k: v if isinstance(v, bytes) else pickle.dumps(v, protocol=2) for k, v in objs.items()}


def write_tarball(path, folder: str, files: dict[str, bytes]) -> bytes:
    with tarfile.open(path, "w:gz") as tar:
        for name, raw in files.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path.read_bytes()


def write_folder(path, files: dict[str, bytes]) -> None:
    path.mkdir(parents=True)
    for name, raw in files.items():
        (path / name).write_bytes(raw)


@pytest.fixture
def c10_root(tmp_path):
    write_tarball(tmp_path / "cifar-10-python.tar.gz", "cifar-10-batches-py", cifar10_files())
    return tmp_path


def test_tarball_gives_proportional_stratified_splits(c10_root):
    task = load_task("cifar10", root=c10_root)
    assert task.sizes() == {"train": 90, "val": 10, "test": 20}  # 45,000 / 5,000 / 10,000 at full size
    assert task.input_spec == InputSpec.image(3, 32, 32)
    assert task.metric == "accuracy" and task.num_classes == 10
    assert task.class_names == list("abcdefghij")
    assert sorted(task.val.tensors[1].tolist()) == list(range(10))  # one per class
    x, y = task.tests["test"][3]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert y.dtype == torch.long and y.shape == () and int(y) == (7 + 3) % 10
    assert task.tests["test"].tensors[1].tolist() == [(7 + i) % 10 for i in range(N_TEST)]
    assert task.info["split_sizes"] == {"train": 90, "val": 10, "test": 20}


def test_folder_and_tarball_give_the_same_data(tmp_path, c10_root):
    folder_root = tmp_path / "extracted"
    write_folder(folder_root / "cifar-10-batches-py", cifar10_files())
    a, b = load_task("cifar10", root=c10_root), load_task("cifar10", root=folder_root)
    for split in ("train", "val"):
        assert torch.equal(getattr(a, split).tensors[0], getattr(b, split).tensors[0])
    assert torch.equal(a.tests["test"].tensors[0], b.tests["test"].tensors[0])


def test_pixels_are_normalised_with_training_statistics(c10_root):
    task = load_task("cifar10", root=c10_root)
    x = task.train.tensors[0]  # (90, 3, 32, 32)
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(x.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-4)
    raw = np.asarray(batch(N_TEST, 7)[b"data"][0], dtype=np.float32).reshape(3, 32, 32) / 255
    mean, std = torch.tensor(task.info["mean"]), torch.tensor(task.info["std"])
    expected = (torch.from_numpy(raw) - mean.view(3, 1, 1)) / std.view(3, 1, 1)
    assert torch.allclose(task.tests["test"].tensors[0][0], expected, atol=1e-4)


def windows(image: torch.Tensor, fill: torch.Tensor, padding: int) -> list[torch.Tensor]:
    """Every crop-and-maybe-flip CropFlip can produce from ``image``."""
    C, H, W = image.shape
    padded = fill.view(C, 1, 1).repeat(1, H + 2 * padding, W + 2 * padding)
    padded[:, padding : padding + H, padding : padding + W] = image
    crops = [padded[:, i : i + H, j : j + W] for i in range(2 * padding + 1) for j in range(2 * padding + 1)]
    return crops + [c.flip(-1) for c in crops]


def test_crop_flip_draws_padded_windows_and_flips():
    image, fill = torch.randn(3, 8, 8), torch.tensor([-1.0, -2.0, -3.0])
    t = CropFlip(fill, padding=2)
    allowed = windows(image, fill, 2)
    seen = set()
    for _ in range(200):
        out = t(image)
        assert out.shape == (3, 8, 8)
        match = [k for k, w in enumerate(allowed) if torch.equal(out, w)]
        assert match, "not a crop of the padded image"
        seen.update(match)
    assert len(seen) > 20 and any(k >= 25 for k in seen) and any(k < 25 for k in seen)
    with pytest.raises(ValueError, match="padding"):
        CropFlip(fill, padding=-1)


def test_only_the_training_split_is_augmented(c10_root):
    task = load_task("cifar10", root=c10_root)
    assert isinstance(task.train, AugmentedTensorDataset) and isinstance(task.train.transform, CropFlip)
    clean = task.train.tensors[0][5]
    fill = torch.tensor(task.info["mean"]).neg() / torch.tensor(task.info["std"])
    assert any(torch.allclose(task.train[5][0], w, atol=1e-6) for w in windows(clean, fill, 4))
    assert torch.equal(task.val[0][0], task.val.tensors[0][0])
    assert torch.equal(task.tests["test"][0][0], task.tests["test"].tensors[0][0])
    plain = load_task("cifar10", root=c10_root, augment=False)
    assert type(plain.train) is TensorDataset and torch.equal(plain.train[5][0], clean)


def test_per_class_subsample_depends_on_the_run_seed_only(c10_root):
    a = load_task("cifar10", root=c10_root, per_class=3, seed=0)
    b = load_task("cifar10", root=c10_root, per_class=3, seed=1)
    assert isinstance(a.train, Subset) and len(a.train) == 30
    assert np.bincount(a.train.dataset.tensors[1][a.train.indices].numpy()).tolist() == [3] * 10
    assert a.train.indices != b.train.indices
    assert torch.equal(a.val.tensors[0], b.val.tensors[0])  # the split comes from split_seed


def test_cifar100_reads_fine_labels(tmp_path):
    files = {
        "train": batch(200, 0, b"fine_labels", 100) | {b"coarse_labels": [0] * 200},
        "test": batch(100, 3, b"fine_labels", 100) | {b"coarse_labels": [0] * 100},
        "meta": {b"fine_label_names": [b"c%d" % i for i in range(100)], b"coarse_label_names": [b"s"] * 20},
    }
    write_tarball(tmp_path / "cifar-100-python.tar.gz", "cifar-100-python", {k: pickle.dumps(v, protocol=2) for k, v in files.items()})
    task = load_task("cifar100", root=tmp_path)
    assert task.num_classes == 100 and task.sizes() == {"train": 180, "val": 20, "test": 100}
    assert task.class_names[:2] == ["c0", "c1"]


def test_options_and_bad_values(c10_root):
    assert task_options("cifar10") == {
        "val_fraction": 0.1,
        "augment": True,
        "split_seed": 0,
        "download": True,
    }
    with pytest.raises(ConfigError, match="val_fraction"):
        load_task("cifar10", root=c10_root, val_fraction=1.5)


# ----- missing files and downloads ---------------------------------------------------------
def assert_one_line_not_found(err: pytest.ExceptionInfo, *needles: str) -> None:
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, HetmemError)  # exit 2 in the CLI
    message = str(err.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message


def test_missing_files_without_download_name_the_file_url_and_place(tmp_path, no_network):
    with pytest.raises(DataNotFoundError) as err:
        load_task("cifar10", root=tmp_path, download=False)
    assert_one_line_not_found(err, "cifar-10-python.tar.gz", C10_URL, str(tmp_path), "download=False")
    assert no_network == []  # download=False never touches the network


def test_failed_download_becomes_data_not_found(tmp_path, no_network):
    root = tmp_path / "data"
    with pytest.raises(DataNotFoundError) as err:
        load_task("cifar10", root=root)
    assert_one_line_not_found(err, C10_URL, str(root), "download failed", "network disabled in tests")
    assert no_network == [C10_URL]
    assert not root.exists()  # nothing left behind


def serve(monkeypatch, payload: bytes) -> list[str]:
    asked = []

    def fake(url, *args, timeout=None, **kwargs):
        assert timeout is not None and timeout <= 30  # fail fast
        asked.append(url)
        return io.BytesIO(payload)

    monkeypatch.setattr(urllib.request, "urlopen", fake)
    return asked


def test_download_writes_the_tarball_then_loads_it(tmp_path, monkeypatch):
    payload = write_tarball(tmp_path / "served.tar.gz", "cifar-10-batches-py", cifar10_files())
    spec = dataclasses.replace(cifar._FILES["cifar10"], md5=hashlib.md5(payload).hexdigest())
    monkeypatch.setitem(cifar._FILES, "cifar10", spec)
    asked = serve(monkeypatch, payload)
    root = tmp_path / "data"
    task = load_task("cifar10", root=root)
    assert asked == [C10_URL] and task.sizes()["train"] == 90
    assert (root / "cifar-10-python.tar.gz").read_bytes() == payload


def test_download_with_a_wrong_checksum_leaves_nothing(tmp_path, monkeypatch):
    payload = write_tarball(tmp_path / "served.tar.gz", "cifar-10-batches-py", cifar10_files())
    serve(monkeypatch, payload)  # the official md5 cannot match this tiny tarball
    with pytest.raises(DataNotFoundError, match="checksum mismatch"):
        load_task("cifar10", root=tmp_path / "data")
    assert os.listdir(tmp_path / "data") == []
    with pytest.raises(OSError, match="checksum"):
        fetch_url("https://example.org/x", tmp_path / "x.bin", md5="0" * 32)
    assert not (tmp_path / "x.bin").exists() and not (tmp_path / "x.bin.part").exists()


# ----- malformed files -----------------------------------------------------------------------
class Sneaky:
    """Unpickling this would call os.getcwd: the loader must refuse any such global."""

    def __reduce__(self):
        return (os.getcwd, ())


@pytest.mark.parametrize(
    "override, match",
    [
        ({"data_batch_2": {b"data": np.zeros((4, 3072), np.uint8)}}, "labels"),
        ({"data_batch_3": batch(4, 0) | {b"data": np.zeros((4, 1024), np.uint8)}}, r"\(N, 3072\)"),
        ({"data_batch_3": batch(4, 0) | {b"labels": [0, 1]}}, "4 integers"),
        ({"test_batch": batch(4, 0) | {b"labels": [0, 1, 2, 10]}}, r"\[0, 10\)"),
        ({"data_batch_1": b"not a pickle"}, "not a readable CIFAR batch"),
        ({"data_batch_1": pickle.dumps(Sneaky(), protocol=2)}, "posix.getcwd is not allowed|os.getcwd is not allowed"),
        ({"data_batch_1": pickle.dumps([1, 2], protocol=2)}, "expected a pickled dict"),
    ],
)
def test_malformed_batches_raise_data_error(tmp_path, override, match):
    write_tarball(tmp_path / "cifar-10-python.tar.gz", "cifar-10-batches-py", cifar10_files(override))
    with pytest.raises(DataError, match=match):
        load_task("cifar10", root=tmp_path)


def test_truncated_tarball_and_incomplete_folder_raise_data_error(tmp_path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DataError, match="not a readable gzip tarball"):
        load_task("cifar10", root=tmp_path)
    files = cifar10_files()
    del files["data_batch_4"]
    write_folder(tmp_path / "other" / "cifar-10-batches-py", files)
    with pytest.raises(DataError, match="data_batch_4 is missing"):
        load_task("cifar10", root=tmp_path / "other")
