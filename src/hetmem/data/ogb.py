"""OGB molecule property prediction (Hu et al. 2020), the HMA paper's Table 3: ``ogbg-molbace``,
``ogbg-molbbbp`` and ``ogbg-molhiv`` through ``ogb.graphproppred.PygGraphPropPredDataset``, with
OGB's scaffold split and metric ROC-AUC.

ogb's own loader would download with no timeout, ask on stdin about updates, and (with torch
>= 2.6) fail to reopen the file it saved; so the folder is checked (or fetched and unpacked) here
first, ogb only ever reads a complete copy, and its saved file is loaded with torch_geometric's
storage classes allowed.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import pickle
import shutil
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from hetmem.backbones.spec import InputSpec
from hetmem.data.download import error_line, fetch_or_explain
from hetmem.data.splits import optional_import
from hetmem.data.task import DataError, TaskData, register_task, subsample_per_class

__all__ = ["OGB_TASKS", "GraphLabel", "load_ogb", "ogb_meta"]

log = logging.getLogger(__name__)

OGB_TASKS = ("ogbg-molbace", "ogbg-molbbbp", "ogbg-molhiv")
_RAW = ("edge", "node-feat", "edge-feat", "graph-label", "num-node-list", "num-edge-list")  # raw/<name>.csv.gz


def ogb_meta(name: str) -> dict[str, str]:
    """Row ``name`` of ogb's ``graphproppred/master.csv`` (url, download_name, version, split...)."""
    graphproppred = optional_import("ogb.graphproppred", "graph")
    with open(Path(graphproppred.__file__).parent / "master.csv", newline="") as f:
        rows = list(csv.reader(f))
    column = rows[0].index(name)
    return {row[0]: row[column] for row in rows[1:]}


class GraphLabel:
    """OGB's (1, 1) label of a single-task data set as hetmem's long label of shape (1,)."""

    def __call__(self, data: Any) -> Any:
        data.y = data.y.reshape(1).long()
        return data

    def __repr__(self) -> str:
        return "GraphLabel()"


# ----- finding the files --------------------------------------------------------------------
def _unpack(archive: Path, inner: str, folder: Path) -> None:
    """Unpacks the official zip (one folder ``inner/``) to ``folder``, as ogb's own download does."""
    staging = folder.with_name(f".{folder.name}.unpacking")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(staging)  # (zipfile drops absolute and '..' parts of member names)
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise DataError(f"{archive}: not a readable zip ({error_line(err)}); delete it and fetch it again") from None
    if not (staging / inner).is_dir():
        shutil.rmtree(staging, ignore_errors=True)
        raise DataError(f"{archive}: expected a folder {inner}/ inside")
    (staging / inner).rename(folder)
    shutil.rmtree(staging, ignore_errors=True)


def _ensure_folder(name: str, meta: dict[str, str], base: Path, download: bool) -> Path:
    """The complete folder ogb reads, unpacked from a zip in ``base`` or downloaded first.

    Everything ogb would otherwise do on its own (download, ask about an update) is settled
    here: afterwards the folder has its release file, raw files and split files.
    """
    dir_name = name.replace("-", "_")
    if (base / f"{dir_name}_pyg").exists():  # ogb's rule for folders from its older versions
        dir_name += "_pyg"
    folder, url, archive = base / dir_name, meta["url"], base / f"{meta['download_name']}.zip"
    if folder.is_dir() and not any(p.is_file() for p in folder.rglob("*")):
        shutil.rmtree(folder)  # an empty leftover of an interrupted ogb download
    if not folder.is_dir():
        if not archive.is_file():
            missing = f"OGB data set {name} not found: put {archive.name} ({url}) in {base}/ (it is unpacked to {folder}/), or pass --data-root"
            fetch_or_explain(url, archive, download=download, missing=missing)
        _unpack(archive, meta["download_name"], folder)
    release = folder / f"RELEASE_v{meta['version']}.txt"
    needed = [release, *(folder / "raw" / f"{f}.csv.gz" for f in _RAW)]
    split_dir = folder / "split" / meta["split"]
    if not (split_dir / "split_dict.pt").is_file():
        needed += [split_dir / f"{part}.csv.gz" for part in ("train", "valid", "test")]
    missing = [p for p in needed if not p.is_file()]
    if missing:
        raise DataError(
            f"{folder}: {missing[0].relative_to(folder)} is missing (an incomplete or outdated copy of {name}): "
            f"delete the folder and put {archive.name} ({url}) in {base}/"
        )
    return folder


def _open_dataset(name: str, base: Path, folder: Path) -> tuple[Any, dict[str, torch.Tensor]]:
    """ogb's dataset (processing the raw files on first use) and its official split, quietly."""
    graphproppred = optional_import("ogb.graphproppred", "graph")
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import GlobalStorage

    chatter = io.StringIO()  # ogb prints progress and tqdm bars; they go to the debug log
    try:
        with (
            torch.serialization.safe_globals([DataEdgeAttr, DataTensorAttr, GlobalStorage]),
            contextlib.redirect_stdout(chatter),
            contextlib.redirect_stderr(chatter),
            warnings.catch_warnings(),
        ):
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")  # ogb's labels
            dataset = graphproppred.PygGraphPropPredDataset(name, root=str(base), transform=GraphLabel())
            split = dataset.get_idx_split()
    except (ValueError, RuntimeError, IndexError, KeyError, TypeError, EOFError, OSError, pickle.UnpicklingError) as err:
        raise DataError(f"{folder}: the {name} files could not be read ({error_line(err)})") from None
    finally:
        log.debug("ogb said: %s", chatter.getvalue())
    return dataset, split


# ----- the tasks ----------------------------------------------------------------------------
def load_ogb(name: str, *, root: Path, seed: int, per_class: int | None, download: bool = True) -> TaskData:
    """Loads the OGB binary classification set ``name`` (one of :data:`OGB_TASKS`)."""
    meta = ogb_meta(name)
    base = root / "ogb"
    folder = _ensure_folder(name, meta, base, download)
    dataset, split = _open_dataset(name, base, folder)
    y = dataset.y.reshape(len(dataset), -1)  # (G, 1)
    if y.size(1) != 1:
        raise DataError(f"{folder}: expected one label per graph, got {y.size(1)}")
    labelled = ~torch.isnan(y[:, 0]) if y.is_floating_point() else torch.ones(len(y), dtype=torch.bool)  # (G,)
    values = set(y[labelled, 0].tolist())  # ogb stores float labels when some are NaN
    if not values <= {0, 1}:
        raise DataError(f"{folder}: labels must be 0 or 1, got values {sorted(values)[:5]}")
    parts, dropped = {}, {}
    for part in ("train", "valid", "test"):
        idx = torch.as_tensor(split[part], dtype=torch.long).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= len(dataset)):
            raise DataError(f"{folder}: the {part} split indexes graphs outside [0, {len(dataset)})")
        keep = idx[labelled[idx]]  # graphs with no label (NaN; none in these three sets) are left out
        parts[part], dropped["val" if part == "valid" else part] = dataset[keep], len(idx) - len(keep)
    return TaskData(
        name=name,
        num_classes=2,
        input_spec=InputSpec.graph("atom", "bond"),
        train=subsample_per_class(parts["train"], per_class, seed),
        val=parts["valid"],
        tests={"test": parts["test"]},
        metric="rocauc",
        info={
            "source": f"OGB {name} ({meta['url']}), read by ogb's PygGraphPropPredDataset",
            "ogb_name": name,
            "path": str(folder),
            "protocol": f"OGB's {meta['split']} split (get_idx_split); ROC-AUC of the class-1 probability",
            "split_sizes": {"train": len(parts["train"]), "val": len(parts["valid"]), "test": len(parts["test"])},
            "unlabelled_dropped": dropped,
            "per_class": per_class,
        },
    )


_DOC = """{name} (OGB, Hu et al. 2020): binary molecule property, scaffold split; metric ROC-AUC.

    Reads ``root/ogb/{dir_name}/`` (the layout ogb makes), or unpacks ``root/ogb/{zip_name}``
    there (downloading it from {url} when neither is there and ``download`` is set). Graphs
    carry OGB's 9 integer atom features and 3 bond features; a graph without a label (NaN) would
    be left out of its split (these sets have none), and ``info["unlabelled_dropped"]`` counts
    them.

    Args:
        root: the data directory.
        seed: run seed; only chooses the ``per_class`` training subsample.
        per_class: training molecules kept per class, or None for all.
        download: fetch the zip when it is missing (fails fast with no network).

    Returns:
        TaskData of torch_geometric ``Data`` (long x (N, 9), edge_attr (E, 3), y long (1,)),
        2 classes, tests ``{{"test": ...}}``, ``info["ogb_name"]`` for ogb's Evaluator.

    Raises:
        DataNotFoundError: the files are missing and cannot be downloaded.
        DataError: a file is malformed or the copy is incomplete.
    """

_ZIPS = {"ogbg-molbace": "bace", "ogbg-molbbbp": "bbbp", "ogbg-molhiv": "hiv"}  # master.csv's download_name


def _register(name: str) -> None:
    def loader(*, root: Path, seed: int, per_class: int | None, download: bool = True) -> TaskData:
        return load_ogb(name, root=root, seed=seed, per_class=per_class, download=download)

    loader.__name__ = loader.__qualname__ = f"load_{name.replace('-', '_')}"
    loader.__doc__ = _DOC.format(
        name=name,
        dir_name=name.replace("-", "_"),
        zip_name=f"{_ZIPS[name]}.zip",
        url=f"http://snap.stanford.edu/ogb/data/graphproppred/csv_mol_download/{_ZIPS[name]}.zip",
    )
    register_task(name, offline=False)(loader)


for _name in OGB_TASKS:
    _register(_name)
