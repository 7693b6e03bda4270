"""Input and output files of ``hetmem predict``: .npy / .pt / .csv rows in, .csv / .npz out."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hetmem.inference.trained import Predictions

__all__ = ["INPUT_SUFFIXES", "OUTPUT_SUFFIXES", "read_inputs", "write_predictions"]

INPUT_SUFFIXES = (".npy", ".pt", ".csv")
OUTPUT_SUFFIXES = (".csv", ".npz")


def _read_csv(path: Path) -> np.ndarray:
    """Numeric rows, one sample a row; a first row that is not numeric is a header and skipped."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    rows = []
    for number, line in enumerate(lines, start=1):
        fields = line.split(",")
        try:
            rows.append([float(f) for f in fields])
        except ValueError:
            if number == 1 and not rows:
                continue  # a header
            raise ValueError(f"{str(path)!r} line {number}: expected comma-separated numbers, got {line[:60]!r}") from None
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        raise ValueError(f"{str(path)!r}: rows have different numbers of columns {sorted(widths)}")
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)


def read_inputs(path: str | Path) -> Any:
    """The array or tensor in ``path``: a .npy array, a .pt tensor (or a dict with key "x", or
    an (x, y) pair), or .csv rows of numbers (each row one flattened sample).

    Raises:
        ValueError: missing file, unknown suffix, unreadable content.
    """
    path = Path(path)
    if path.suffix not in INPUT_SUFFIXES:
        raise ValueError(f"input {str(path)!r}: unsupported file type {path.suffix!r}; expected one of {list(INPUT_SUFFIXES)}")
    if not path.is_file():
        raise ValueError(f"input {str(path)!r} does not exist")
    try:
        if path.suffix == ".csv":
            return _read_csv(path)
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
        data = torch.load(path, map_location="cpu", weights_only=True)
    except ValueError:
        raise
    except Exception as err:  # noqa: BLE001  any decoding failure: the file is unusable
        raise ValueError(f"input {str(path)!r} could not be read ({str(err).strip().splitlines()[0][:160]})") from None
    if isinstance(data, dict):
        data = data.get("x")
    elif isinstance(data, (tuple, list)) and data and isinstance(data[0], torch.Tensor):
        data = data[0]
    if not isinstance(data, torch.Tensor):
        raise ValueError(f"input {str(path)!r}: expected a tensor, a dict with key 'x' or an (x, y) pair")
    return data


def write_predictions(path: str | Path, predictions: Predictions, *, overwrite: bool = False) -> Path:
    """Writes ``predictions`` to ``path`` (written to a temporary file, then renamed).

    - ``.csv``: a header ``row,prediction,prob_0,...,prob_{C-1}``, then one line per input
      row in input order (probabilities with 6 significant digits);
    - ``.npz``: arrays ``predictions`` (N,) int64, ``probabilities`` and ``logits`` (N, C) float32.

    Raises:
        ValueError: unknown suffix, or the file exists and ``overwrite`` is false.
    """
    path = Path(path)
    if path.suffix not in OUTPUT_SUFFIXES:
        raise ValueError(f"output {str(path)!r}: unsupported file type {path.suffix!r}; expected one of {list(OUTPUT_SUFFIXES)}")
    if path.exists() and not overwrite:
        raise ValueError(f"output {str(path)!r} already exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    labels, probs = predictions.labels.numpy(), predictions.probabilities.numpy()
    if path.suffix == ".npz":
        np.savez(tmp, predictions=labels.astype(np.int64), probabilities=probs, logits=predictions.logits.numpy())
    else:
        header = ",".join(["row", "prediction", *(f"prob_{c}" for c in range(probs.shape[1]))])
        lines = [header] + [f"{i},{labels[i]}," + ",".join(f"{p:.6g}" for p in probs[i]) for i in range(len(labels))]
        tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path
