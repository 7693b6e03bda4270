"""Small molecule batches for the graph backbone tests (torch_geometric, ogb and rdkit needed)."""

import pytest
import torch

SMILES = ("CCO", "c1ccccc1", "CC(=O)O", "C1CC1N")  # ethanol, benzene, acetic acid, cyclopropylamine


def molecule(smiles: str):
    """A torch_geometric Data with OGB's atom (N, 9) and bond (E, 3) integer features."""
    from ogb.utils import smiles2graph
    from torch_geometric.data import Data

    g = smiles2graph(smiles)
    return Data(
        x=torch.from_numpy(g["node_feat"]),
        edge_index=torch.from_numpy(g["edge_index"]),
        edge_attr=torch.from_numpy(g["edge_feat"]),
    )


def batch_of(graphs):
    from torch_geometric.data import Batch

    return Batch.from_data_list(list(graphs))


@pytest.fixture
def molecules():
    """A Batch of four molecules with OGB atom and bond features."""
    pytest.importorskip("torch_geometric")
    pytest.importorskip("ogb")
    pytest.importorskip("rdkit")
    return batch_of(molecule(s) for s in SMILES)
