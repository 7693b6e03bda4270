"""The results store: one JSON line per finished run, appended atomically.

A row records the experiment, the grid cell, the resolved config, the seed, the metrics, the
wall time, the machine and the library versions. Rows are keyed by (experiment, cell, seed),
so a grid that is run again skips what it already finished. JSON lines rather than a
database: readable with ``cat``, diffable, one ``write`` per row (a kill leaves at most a
partial last line, which :meth:`ResultsStore.rows` ignores).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["ResultsStore", "cell_key", "environment"]


def cell_key(experiment: str, cell: dict[str, Any], seed: int) -> str:
    """A stable id of one run of an experiment: a hash of its name, cell and seed."""
    blob = json.dumps({"experiment": experiment, "cell": cell, "seed": seed}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def environment() -> dict[str, Any]:
    """Library versions and the machine, recorded with every row."""
    import torch

    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for name in ("lightning", "torch_geometric", "numpy", "sklearn"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            pass
    from hetmem import __version__

    versions["hetmem"] = __version__
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return {"versions": versions, "machine": machine}


class ResultsStore:
    """Append-only JSON-lines file of finished runs.

    Example:
        >>> import tempfile
        >>> store = ResultsStore(Path(tempfile.mkdtemp()) / "store.jsonl")
        >>> store.add({"key": "a1", "experiment": "demo", "metrics": {}})
        >>> store.has("a1"), len(list(store.rows()))
        (True, 1)
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def rows(self, experiment: str | None = None) -> Iterator[dict[str, Any]]:
        if not self.path.is_file():
            return
        with open(self.path) as f:
            for line in f:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a partial last line from a killed writer
                    continue
                if experiment is None or row.get("experiment") == experiment:
                    yield row

    def keys(self) -> set[str]:
        return {row["key"] for row in self.rows()}

    def has(self, key: str) -> bool:
        return key in self.keys()

    def add(self, row: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        row = {**row, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        line = json.dumps(row, sort_keys=True) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())  # one write: whole line or nothing useful
            os.fsync(fd)
        finally:
            os.close(fd)
