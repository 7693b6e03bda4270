"""TU graph classification sets (Morris et al. 2020, https://chrsmrrs.github.io/datasets) through
``torch_geometric.datasets.TUDataset``: the HMA paper's Table 4 (IMDB, REDDIT; G-mixup's
protocol) and Table 6 (NCI1, NCI109, PROTEINS, DD under a graph-size shift; CIGA's protocol).

Node features: the one-hot node labels the set has (plus its continuous node attributes with
``use_node_attr``); IMDB and REDDIT have none, so they get ``fill_features``: a one-hot of the
node degree, degrees from ``max_degree`` up sharing the last slot (default), or a constant 1.
Edge features are dropped (none of these sets has any).
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hetmem.backbones.spec import InputSpec
from hetmem.data.download import error_line, fetch_or_explain
from hetmem.data.splits import check_choice, fraction_sizes, optional_import, size_shift_split, stratified_split
from hetmem.data.task import DataError, TaskData, register_task, subsample_per_class
from hetmem.errors import ConfigError

__all__ = ["TU_NAMES", "NodeFeatures", "load_tu", "size_shift_split"]

# task name -> the name TU Dortmund (and TUDataset) uses
TU_NAMES = {
    "imdb-binary": "IMDB-BINARY",
    "imdb-multi": "IMDB-MULTI",
    "reddit-binary": "REDDIT-BINARY",
    "reddit-multi-5k": "REDDIT-MULTI-5K",
    "reddit-multi-12k": "REDDIT-MULTI-12K",
    "nci1": "NCI1",
    "nci109": "NCI109",
    "proteins": "PROTEINS",
    "dd": "DD",
}
_REQUIRED = ("A", "graph_indicator", "graph_labels")  # NAME_<part>.txt files a classification set needs
FILL_FEATURES = ("degree", "constant")


class NodeFeatures:
    """Turns a TU graph into what a hetmem graph backbone reads: float ``x``, no ``edge_attr``.

    Args:
        fill: None keeps the graph's own ``x``; ``"degree"`` sets ``x`` to the one-hot of each
            node's degree, capped at ``max_degree`` (width ``max_degree + 1``); ``"constant"``
            sets ``x`` to ones (width 1).
        max_degree: the last degree slot, shared by all larger degrees.
    """

    def __init__(self, fill: str | None, max_degree: int = 64) -> None:
        self.fill = fill
        self.max_degree = max_degree

    @property
    def width(self) -> int | None:
        """The feature width this fill gives, or None when the graph's own features are kept."""
        return {None: None, "degree": self.max_degree + 1, "constant": 1}[self.fill]

    def __call__(self, data: Any) -> Any:
        n = int(data.num_nodes)
        if self.fill == "degree":
            degree = torch.bincount(data.edge_index[0], minlength=n).clamp_(max=self.max_degree)  # (N,)
            data.x = torch.nn.functional.one_hot(degree, self.max_degree + 1).float()  # (N, max_degree + 1)
        elif self.fill == "constant":
            data.x = torch.ones(n, 1)
        else:
            data.x = data.x.float()
        if "edge_attr" in data:
            del data.edge_attr
        return data

    def __repr__(self) -> str:
        return f"NodeFeatures(fill={self.fill!r}, max_degree={self.max_degree})"


# ----- finding the files --------------------------------------------------------------------
def _unpack(archive: Path, tu_name: str, raw_dir: Path) -> None:
    """Copies the ``NAME_*.txt`` files of the official zip (``NAME/NAME_*.txt``) into ``raw_dir``."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.namelist() if Path(m).name.startswith(f"{tu_name}_") and m.endswith(".txt")]
            raw_dir.mkdir(parents=True, exist_ok=True)
            for member in members:
                with zf.open(member) as src, open(raw_dir / Path(member).name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise DataError(f"{archive}: not a readable zip ({error_line(err)}); delete it and fetch it again") from None


def _ensure_raw(tu_name: str, base: Path, download: bool, url: str) -> Path:
    """The raw folder ``base/NAME/raw`` with the set's files, from a zip in ``base`` or a download."""
    raw_dir, archive = base / tu_name / "raw", base / f"{tu_name}.zip"

    def have() -> bool:  # the files TUDataset checks before it would download
        return all((raw_dir / f"{tu_name}_{part}.txt").is_file() for part in ("A", "graph_indicator"))

    if not have() and not archive.is_file():
        missing = (
            f"TU data set {tu_name} not found: put {tu_name}.zip ({url}) in {base}/ "
            f"or its {tu_name}_*.txt files in {raw_dir}/, or pass --data-root"
        )
        fetch_or_explain(url, archive, download=download, missing=missing)
    if not have():
        _unpack(archive, tu_name, raw_dir)
    for part in _REQUIRED:
        if not (raw_dir / f"{tu_name}_{part}.txt").is_file():
            raise DataError(f"{raw_dir}: {tu_name}_{part}.txt is missing (an incomplete copy of {tu_name}.zip?)")
    return raw_dir


def _node_counts(dataset: Any) -> np.ndarray:
    """Nodes per graph, shape (G,), read without the feature transform."""
    return np.array([dataset.get(i).num_nodes for i in range(len(dataset))], dtype=np.int64)


def _describe(dataset: Any, features: NodeFeatures, use_node_attr: bool) -> str:
    """What a graph's ``x`` holds, for ``info``."""
    if features.fill == "degree":
        return f"one-hot node degree, capped at {features.max_degree} (the set has no node features)"
    if features.fill == "constant":
        return "a constant 1 (the set has no node features)"
    parts = []
    if use_node_attr and dataset.num_node_attributes:
        parts.append(f"{dataset.num_node_attributes} continuous node attributes")
    if dataset.num_node_labels:
        parts.append(f"one-hot node labels ({dataset.num_node_labels})")
    return " + ".join(parts)


# ----- the tasks ----------------------------------------------------------------------------
def load_tu(
    task: str,
    *,
    root: Path,
    seed: int,
    per_class: int | None,
    split: str = "random",
    split_seed: int = 0,
    use_node_attr: bool = False,
    fill_features: str = "degree",
    max_degree: int = 64,
    download: bool = True,
) -> TaskData:
    """Loads the TU set of ``task`` (a key of :data:`TU_NAMES`); see the registered tasks."""
    check_choice(task, "split", split, ("random", "size"))
    check_choice(task, "fill_features", fill_features, FILL_FEATURES)
    if isinstance(max_degree, bool) or not isinstance(max_degree, int) or max_degree < 1:
        raise ConfigError(f"task {task!r}: max_degree must be a positive int, got {max_degree!r}")
    tu_name = TU_NAMES[task]
    tu_dataset = optional_import("torch_geometric.datasets", "graph").TUDataset
    url = f"{tu_dataset.url}/{tu_name}.zip"
    base = root / "TU"
    raw_dir = _ensure_raw(tu_name, base, download, url)
    try:
        dataset = tu_dataset(str(base), tu_name, use_node_attr=use_node_attr)
    except (ValueError, RuntimeError, IndexError, TypeError, AssertionError) as err:
        raise DataError(f"{raw_dir}: the {tu_name} files could not be read ({error_line(err)})") from None
    if getattr(dataset, "y", None) is None or len(dataset) == 0:
        raise DataError(f"{raw_dir}: {tu_name} has no graphs or no graph labels")
    labels = dataset.y.view(-1).numpy()  # (G,) classes 0..C-1 (TUDataset maps the file's values in order)
    first_x = dataset.get(0).x
    own = first_x is not None and first_x.size(1) > 0
    features = NodeFeatures(None if own else fill_features, max_degree)
    dataset.transform = features
    width = features.width if features.width is not None else int(first_x.size(1))

    if split == "random":
        train_idx, val_idx, test_idx = stratified_split(labels, fraction_sizes(len(labels), (0.8, 0.1, 0.1)), split_seed)
        protocol = "stratified random 80 / 10 / 10 split"
        extra: dict[str, Any] = {}
    else:
        num_nodes = _node_counts(dataset)
        train_idx, val_idx, test_idx = size_shift_split(num_nodes, labels, split_seed)
        protocol = (
            "graph-size shift (HMA Table 6, CIGA): train/val = node count below the 50th percentile "
            "(10% held out, stratified), test = node count above the 90th percentile"
        )
        extra = {"nodes_below": float(np.percentile(num_nodes, 50)), "nodes_above": float(np.percentile(num_nodes, 90))}

    def subset(idx: np.ndarray) -> Any:
        return dataset[torch.as_tensor(idx, dtype=torch.long)]

    return TaskData(
        name=task,
        num_classes=int(labels.max()) + 1,
        input_spec=InputSpec.graph(node_features=width, edge_features=None),
        train=subsample_per_class(subset(train_idx), per_class, seed),
        val=subset(val_idx),
        tests={"test": subset(test_idx)},
        metric="mcc" if split == "size" else "accuracy",
        info={
            "source": f"TU Dortmund graph kernel data set {tu_name} ({url}), read by torch_geometric's TUDataset",
            "path": str(raw_dir),
            "node_features": _describe(dataset, features, use_node_attr),
            "protocol": protocol,
            "split": split,
            "split_seed": split_seed,
            "split_sizes": {"train": len(train_idx), "val": len(val_idx), "test": len(test_idx)},
            "per_class": per_class,
            **extra,
        },
    )


_DOC = """{tu_name} (TU Dortmund) graph classification; metric accuracy, or MCC with ``split="size"``.

    Reads ``root/TU/{tu_name}/raw/{tu_name}_*.txt``, or unpacks ``root/TU/{tu_name}.zip`` there
    (downloading it from {url} when neither is there and ``download`` is set).

    Splits:

    - ``"random"``: stratified 80 / 10 / 10 (``split_seed``).
    - ``"size"``: the graph-size shift of HMA Table 6 (see :func:`size_shift_split`).

    Args:
        root: the data directory.
        seed: run seed; only chooses the ``per_class`` training subsample.
        per_class: training graphs kept per class, or None for all.
        split: ``"random"`` or ``"size"``.
        split_seed: seed of the stratified splits.
        use_node_attr: prepend the set's continuous node attributes (PROTEINS has one) to the
            one-hot node labels.
        fill_features: node features of a set that has none (IMDB, REDDIT): ``"degree"``
            (one-hot degree, width ``max_degree + 1``) or ``"constant"`` (width 1).
        max_degree: the last one-hot degree slot; larger degrees share it.
        download: fetch the zip when it is missing (fails fast with no network).

    Returns:
        TaskData of torch_geometric ``Data`` (float x, edge_index, y long (1,)), tests
        ``{{"test": ...}}``.

    Raises:
        DataNotFoundError: the files are missing and cannot be downloaded.
        DataError: a file is malformed.
    """


def _register(task: str, tu_name: str) -> None:
    def loader(
        *,
        root: Path,
        seed: int,
        per_class: int | None,
        split: str = "random",
        split_seed: int = 0,
        use_node_attr: bool = False,
        fill_features: str = "degree",
        max_degree: int = 64,
        download: bool = True,
    ) -> TaskData:
        return load_tu(
            task, root=root, seed=seed, per_class=per_class, split=split, split_seed=split_seed,
            use_node_attr=use_node_attr, fill_features=fill_features, max_degree=max_degree, download=download,
        )  # fmt: skip

    loader.__name__ = loader.__qualname__ = f"load_{task.replace('-', '_')}"
    loader.__doc__ = _DOC.format(tu_name=tu_name, url=f"https://www.chrsmrrs.com/graphkerneldatasets/{tu_name}.zip")
    register_task(task, offline=False)(loader)


for _task, _tu_name in TU_NAMES.items():
    _register(_task, _tu_name)
