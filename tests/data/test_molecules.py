import numpy as np
import pytest
import torch

from hetmem.data import dataset_labels, load_task
from hetmem.data.molecules import solubility_dir, solubility_molecules
from hetmem.errors import ConfigError

FILE_COUNTS = {"train": [417, 402, 206], "test": [102, 115, 40]}  # low / medium / high per SDF file


@pytest.fixture(scope="module")
def given():
    return load_task("molecules")


@pytest.fixture(scope="module")
def size():
    return load_task("molecules", split="size")


def _splits(task):
    return {"train": task.train, "val": task.val, **task.tests}


def _ids(ds) -> np.ndarray:
    return np.array([int(g.mol_id) for g in ds])


def _atoms(ds) -> np.ndarray:
    return np.array([g.num_nodes for g in ds])


def test_solubility_files_parse():
    assert {"solubility.train.sdf", "solubility.test.sdf"} <= {p.name for p in solubility_dir().iterdir()}
    records = solubility_molecules()
    assert len(records) == 1282
    for split, counts in FILE_COUNTS.items():
        labels = [r.label for r in records if r.given_split == split]
        assert np.bincount(labels).tolist() == counts


def test_given_split_sizes_labels_and_graphs(given):
    assert given.sizes() == {"train": 923, "val": 102, "test": 257}
    assert given.num_classes == 3 and given.metric == "mcc" and given.is_graph
    assert given.input_spec.node_features == "atom" and given.input_spec.edge_features == "bond"
    for ds in _splits(given).values():
        for g in ds:
            n, e = g.num_nodes, g.edge_index.shape[1]
            assert g.x.shape == (n, 9) and g.x.dtype == torch.long
            assert g.edge_index.dtype == torch.long and g.edge_attr.shape == (e, 3) and g.edge_attr.dtype == torch.long
            assert g.y.shape == (1,) and g.y.dtype == torch.long
            assert e == 0 or int(g.edge_index.max()) < n
    labels = np.concatenate([dataset_labels(ds) for ds in _splits(given).values()])
    assert np.bincount(labels).tolist() == [a + b for a, b in zip(*FILE_COUNTS.values())]


def test_given_split_is_disjoint_and_follows_the_files(given):
    ids = {k: _ids(ds) for k, ds in _splits(given).items()}
    joined = np.concatenate(list(ids.values()))
    assert len(np.unique(joined)) == len(joined) == 1282
    assert ids["test"].tolist() == list(range(1025, 1282))  # the test file, in file order
    val_counts = np.bincount(dataset_labels(given.val), minlength=3)
    assert np.abs(val_counts - np.array(FILE_COUNTS["train"]) / 10).max() <= 2  # stratified 10%


def test_size_split_protocol(size):
    sizes = size.sizes()
    assert sizes == {"train": 493, "val": 55, "test": 97}
    ids = [_ids(ds) for ds in _splits(size).values()]
    assert len(np.unique(np.concatenate(ids))) == sum(sizes.values())  # disjoint
    small = np.concatenate([_atoms(size.train), _atoms(size.val)])
    large = _atoms(size.tests["test"])
    assert small.max() < size.info["atoms_below"] <= size.info["atoms_above"] < large.min()
    assert small.max() < large.min()
    all_atoms = np.array([r.num_atoms for r in solubility_molecules()])
    assert len(small) == (all_atoms < np.percentile(all_atoms, 50)).sum()
    assert len(large) == (all_atoms > np.percentile(all_atoms, 90)).sum()
    assert abs(sizes["val"] - 0.1 * len(small)) <= 1


def test_determinism_and_per_class(given):
    again = load_task("molecules", seed=4)
    for a, b in zip(_splits(given).values(), _splits(again).values()):
        assert _ids(a).tolist() == _ids(b).tolist()
    assert _ids(load_task("molecules", split_seed=1).val).tolist() != _ids(given.val).tolist()
    sub = load_task("molecules", per_class=10, seed=0)
    assert np.bincount(dataset_labels(sub.train)).tolist() == [10, 10, 10]
    assert sub.train.indices == load_task("molecules", per_class=10, seed=0).train.indices
    assert sub.train.indices != load_task("molecules", per_class=10, seed=1).train.indices


def test_graphs_are_fresh_copies(given):
    g = load_task("molecules").train[0]
    g.x.zero_()
    assert torch.equal(load_task("molecules").train[0].x, given.train[0].x)
    assert given.train[0].x.any()


def test_batches_with_the_pyg_loader(given):
    from torch_geometric.loader import DataLoader

    batch = next(iter(DataLoader(given.train, batch_size=8)))
    assert batch.num_graphs == 8 and batch.y.shape == (8,) and batch.x.shape[1] == 9


def test_unknown_split_is_a_config_error():
    with pytest.raises(ConfigError, match=r"split must be one of \['given', 'size'\], got 'scaffold'"):
        load_task("molecules", split="scaffold")
