"""``cifar10`` and ``cifar100``: CIFAR (Krizhevsky 2009) from the official python tarballs.

45,000 train / 5,000 validation (stratified, from the training batches) / 10,000 test images,
normalised per channel with the training split's mean and std; training images get a random
32-pixel crop of the 4-pixel zero-padded image and a horizontal flip, drawn on the fly.
"""

from __future__ import annotations

import io
import logging
import pickle
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from hetmem.backbones.spec import InputSpec
from hetmem.data.download import error_line, fetch_or_explain
from hetmem.data.splits import fraction_sizes, stratified_split
from hetmem.data.task import DataError, TaskData, register_task, subsample_per_class
from hetmem.errors import ConfigError

__all__ = [
    "AugmentedTensorDataset",
    "CropFlip",
    "load_cifar10",
    "load_cifar100",
    "read_cifar",
]

log = logging.getLogger(__name__)

# ----- reading the official files ---------------------------------------------------------
@dataclass(frozen=True)
class _CifarFiles:
    title: str  # how users know it
    archive: str  # the official tarball
    folder: str  # the folder the tarball holds
    url: str
    md5: str  # of the tarball, as published with it
    train: tuple[str, ...]  # batch files inside ``folder``
    test: tuple[str, ...]
    label_key: bytes
    meta: str  # file with the class names
    names_key: bytes
    num_classes: int


_FILES = {
    "cifar10": _CifarFiles(
        "CIFAR-10",
        "cifar-10-python.tar.gz",
        "cifar-10-batches-py",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        b"labels",
        "batches.meta",
        b"label_names",
        10,
    ),
    "cifar100": _CifarFiles(
        "CIFAR-100",
        "cifar-100-python.tar.gz",
        "cifar-100-python",
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85",
        ("train",),
        ("test",),
        b"fine_labels",
        "meta",
        b"fine_label_names",
        100,
    ),
}


class _BatchUnpickler(pickle.Unpickler):
    """Rebuilds containers and numpy arrays only: a CIFAR batch needs nothing else, and a file
    that asks for any other global (a way to run code) is refused."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),  # the official files (pickled by numpy 1)
        ("numpy._core.multiarray", "_reconstruct"),  # files pickled by numpy 2
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR file")
        return super().find_class(module, name)


def _unpickle(raw: bytes, where: str) -> dict:
    try:
        obj = _BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, ImportError) as err:
        raise DataError(f"{where}: not a readable CIFAR batch file ({error_line(err)})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a pickled dict, got {type(obj).__name__}")
    return obj


def _read_raw(files: _CifarFiles, source: Path, names: list[str], optional: tuple[str, ...] = ()) -> dict[str, bytes]:
    """The bytes of ``folder/name`` for each of ``names`` (and of each ``optional`` name that is
    there), from the extracted folder ``source`` or the tarball ``source``."""
    if source.is_dir():
        out = {n: (source / n).read_bytes() for n in [*names, *optional] if (source / n).is_file()}
    else:
        wanted = {f"{files.folder}/{n}": n for n in [*names, *optional]}
        out = {}
        try:
            with tarfile.open(source, "r:gz") as tar:
                for member in tar:
                    name = wanted.get(member.name.removeprefix("./"))
                    if name is not None and member.isfile():
                        out[name] = tar.extractfile(member).read()
        except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
            raise DataError(
                f"{source}: not a readable gzip tarball ({error_line(err)}); delete it and fetch {files.url}"
            ) from None
    missing = [n for n in names if n not in out]
    if missing:
        raise DataError(f"{source}: {files.folder}/{missing[0]} is missing (an incomplete copy of {files.archive}?)")
    return out


def _images_and_labels(batch: dict, files: _CifarFiles, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3, 32, 32) uint8 images and (N,) int64 labels of one batch dict, checked."""
    for key in (b"data", files.label_key):
        if key not in batch:
            raise DataError(f"{where}: key {key!r} is missing (keys: {sorted(batch)})")
    data, labels = batch[b"data"], np.asarray(batch[files.label_key])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise DataError(f"{where}: b'data' must be a uint8 array (N, 3072), got {type(data).__name__} {shape}")
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{where}: {files.label_key!r} must be {len(data)} integers, got shape {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= files.num_classes):
        raise DataError(f"{where}: labels must be in [0, {files.num_classes}), got [{labels.min()}, {labels.max()}]")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)  # rows are R, G, B planes of 32x32


def _locate(files: _CifarFiles, root: Path, download: bool) -> Path:
    """The extracted folder or the tarball in ``root``, downloading the tarball if allowed."""
    for candidate in (root / files.folder, root / files.archive):
        if candidate.exists():
            return candidate
    missing = (
        f"{files.title} not found: put {files.archive} ({files.url}) or its extracted folder {files.folder}/ "
        f"in {root}/ or pass --data-root"
    )
    return fetch_or_explain(files.url, root / files.archive, download=download, missing=missing, md5=files.md5)


def read_cifar(task: str, root: Path, *, download: bool = True) -> dict[str, Any]:
    """Reads the official files of ``task`` (``"cifar10"`` or ``"cifar100"``) from ``root``.

    ``root`` holds the tarball (read in place, never extracted) or its extracted folder.

    Returns:
        ``{"train": (images, labels), "test": (images, labels), "class_names": list or None,
        "path": str}``; images uint8 (N, 3, 32, 32), labels int64 (N,).

    Raises:
        DataNotFoundError: neither is in ``root`` and the tarball cannot be downloaded.
        DataError: a file is there but malformed.
    """
    files = _FILES[task]
    source = _locate(files, root, download)
    raw = _read_raw(files, source, [*files.train, *files.test], optional=(files.meta,))
    out: dict[str, Any] = {"path": str(source), "class_names": None}
    for split, names in (("train", files.train), ("test", files.test)):
        parts = [_images_and_labels(_unpickle(raw[n], f"{source}/{n}"), files, f"{source}/{n}") for n in names]
        out[split] = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    if files.meta in raw:  # class names, when the file is there and as expected
        names = _unpickle(raw[files.meta], f"{source}/{files.meta}").get(files.names_key)
        if isinstance(names, list) and len(names) == files.num_classes:
            out["class_names"] = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    return out


# ----- augmentation -------------------------------------------------------------------------
class CropFlip:
    """A random crop of the padded image back to its size, then a horizontal flip with
    probability 1/2 (the standard CIFAR augmentation), for one normalised image.

    The padding is the normalised value of a black pixel, so the result equals padding the raw
    image with zeros, cropping, flipping and normalising afterwards. Draws come from torch's
    global generator (seeded by the runner).

    Args:
        fill: per-channel padding value, shape (C,).
        padding: pixels added on each side before cropping.

    Shapes:
        (C, H, W) -> (C, H, W).

    Example:
        >>> CropFlip(torch.zeros(3))(torch.ones(3, 32, 32)).shape
        torch.Size([3, 32, 32])
    """

    def __init__(self, fill: Tensor, padding: int = 4) -> None:
        if padding < 0:
            raise ValueError(f"CropFlip: padding must be >= 0, got {padding}")
        self.fill = torch.as_tensor(fill, dtype=torch.float32).reshape(-1)
        self.padding = padding

    def __call__(self, x: Tensor) -> Tensor:
        C, H, W = x.shape
        p = self.padding
        padded = self.fill.to(x.dtype).view(C, 1, 1).repeat(1, H + 2 * p, W + 2 * p)  # (C, H+2p, W+2p)
        padded[:, p : p + H, p : p + W] = x
        i, j, flip = torch.randint(0, 2 * p + 1, (3,)).tolist()
        out = padded[:, i : i + H, j : j + W]  # (C, H, W)
        return out.flip(-1) if flip % 2 else out

    def __repr__(self) -> str:
        return f"CropFlip(padding={self.padding})"


class AugmentedTensorDataset(TensorDataset):
    """A ``TensorDataset`` of (x, y) whose x goes through ``transform`` at every access.

    ``tensors`` keep the clean inputs, so labels are read without transforming; hetmem's
    loaders see the ``transform`` attribute and fetch samples one by one.
    """

    def __init__(self, x: Tensor, y: Tensor, transform: Any) -> None:
        super().__init__(x, y)
        self.transform = transform

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        x, y = self.tensors[0][index], self.tensors[1][index]
        return self.transform(x), y


# ----- the tasks ----------------------------------------------------------------------------
def _load_cifar(
    task: str,
    *,
    root: Path,
    seed: int,
    per_class: int | None,
    val_fraction: float,
    augment: bool,
    split_seed: int,
    download: bool,
) -> TaskData:
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
        raise ConfigError(f"task {task!r}: val_fraction must be in (0, 1), got {val_fraction!r}")
    files = _FILES[task]
    raw = read_cifar(task, root, download=download)
    (x_pool, y_pool), (x_test, y_test) = raw["train"], raw["test"]
    train_idx, val_idx = stratified_split(
        y_pool, fraction_sizes(len(y_pool), (1 - val_fraction, val_fraction)), split_seed
    )
    x_train = torch.from_numpy(x_pool[train_idx]).float().div_(255)  # (N, 3, 32, 32) in [0, 1]
    mean = x_train.mean(dim=(0, 2, 3))  # (3,)
    std = x_train.std(dim=(0, 2, 3)).clamp_min(1e-6)  # (3,)

    def normalise(x: Tensor) -> Tensor:
        return x.sub_(mean.view(3, 1, 1)).div_(std.view(3, 1, 1))

    def images(x: np.ndarray) -> Tensor:
        return normalise(torch.from_numpy(x).float().div_(255))

    x_train, y_train = normalise(x_train), torch.from_numpy(y_pool[train_idx])
    if augment:
        train: TensorDataset = AugmentedTensorDataset(x_train, y_train, CropFlip(-mean / std, padding=4))
    else:
        train = TensorDataset(x_train, y_train)
    sizes = {"train": len(train_idx), "val": len(val_idx), "test": len(y_test)}
    return TaskData(
        name=task,
        num_classes=files.num_classes,
        input_spec=InputSpec.image(3, 32, 32),
        train=subsample_per_class(train, per_class, seed),
        val=TensorDataset(images(x_pool[val_idx]), torch.from_numpy(y_pool[val_idx])),
        tests={"test": TensorDataset(images(x_test), torch.from_numpy(y_test))},
        metric="accuracy",
        class_names=raw["class_names"],
        info={
            "source": f"{files.title}, the official python tarball ({files.url})",
            "path": raw["path"],
            "protocol": (
                f"the training batches split stratified into {1 - val_fraction:g} train / {val_fraction:g} "
                "validation; the test batch as test; pixels / 255 normalised per channel with the "
                "training split's mean and std"
            ),
            "augment": "random 32x32 crop of the 4-pixel zero-padded image + horizontal flip" if augment else None,
            "mean": [round(float(m), 6) for m in mean],
            "std": [round(float(s), 6) for s in std],
            "split_seed": split_seed,
            "val_fraction": val_fraction,
            "split_sizes": sizes,
            "per_class": per_class,
        },
    )


@register_task("cifar10", offline=False)
def load_cifar10(
    *,
    root: Path,
    seed: int,
    per_class: int | None,
    val_fraction: float = 0.1,
    augment: bool = True,
    split_seed: int = 0,
    download: bool = True,
) -> TaskData:
    """CIFAR-10: 10 classes of 32x32 colour images, 45,000 / 5,000 / 10,000; metric accuracy.

    Reads ``root/cifar-10-python.tar.gz`` or ``root/cifar-10-batches-py/`` (downloading the
    tarball from https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz when neither is there
    and ``download`` is set). The validation images are a stratified ``val_fraction`` of the
    50,000 training images (500 per class by default).

    Args:
        root: the data directory.
        seed: run seed; only chooses the ``per_class`` training subsample.
        per_class: training images kept per class, or None for all.
        val_fraction: share of the training batches held out for validation.
        augment: random crop (4-pixel padding) and horizontal flip of training images.
        split_seed: seed of the validation hold-out.
        download: fetch the tarball when it is missing (fails fast with no network).

    Returns:
        TaskData with inputs (3, 32, 32) normalised per channel, tests ``{"test": ...}``.

    Raises:
        DataNotFoundError: the files are missing and cannot be downloaded.
        DataError: a file is malformed.
    """
    return _load_cifar(
        "cifar10", root=root, seed=seed, per_class=per_class, val_fraction=val_fraction,
        augment=augment, split_seed=split_seed, download=download,
    )  # fmt: skip


@register_task("cifar100", offline=False)
def load_cifar100(
    *,
    root: Path,
    seed: int,
    per_class: int | None,
    val_fraction: float = 0.1,
    augment: bool = True,
    split_seed: int = 0,
    download: bool = True,
) -> TaskData:
    """CIFAR-100: 100 fine classes of 32x32 colour images, 45,000 / 5,000 / 10,000; metric accuracy.

    Reads ``root/cifar-100-python.tar.gz`` or ``root/cifar-100-python/`` (downloading the
    tarball from https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz when neither is there
    and ``download`` is set); labels are the ``fine_labels``. Options as :func:`load_cifar10`.
    """
    return _load_cifar(
        "cifar100", root=root, seed=seed, per_class=per_class, val_fraction=val_fraction,
        augment=augment, split_seed=split_seed, download=download,
    )  # fmt: skip
