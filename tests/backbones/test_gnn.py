import subprocess
import sys

import pytest
import torch

from hetmem.backbones import InputSpec, create_backbone

pytest.importorskip("torch_geometric")
pytest.importorskip("ogb")
from torch_geometric.data import Data  # noqa: E402

from hetmem.backbones.gnn import GNN, GraphBatchNorm, global_pool  # noqa: E402

from .conftest import SMILES, batch_of, molecule  # noqa: E402

SMALL = {"hidden_dim": 16, "num_layers": 3}
NAMES = ("gcn", "gin", "gcn-v", "gin-v")


def float_graph(n: int, edges: list[tuple[int, int]], width: int = 5, edge_width: int | None = None) -> Data:
    """A graph with float node features (TU-style), undirected edges, optional float edge features."""
    edge_index = torch.tensor(edges, dtype=torch.long).t().reshape(2, -1)
    edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)  # both directions
    data = Data(x=torch.randn(n, width), edge_index=edge_index)
    if edge_width is not None:
        data.edge_attr = torch.randn(edge_index.shape[1], edge_width)
    return data


def permuted(data: Data, perm: torch.Tensor) -> Data:
    """The same graph with node i renumbered perm.argsort()[i]."""
    new_index = perm.argsort()
    return Data(x=data.x[perm], edge_index=new_index[data.edge_index], edge_attr=data.edge_attr)


def random_loss(out: torch.Tensor) -> torch.Tensor:
    return (out * torch.randn_like(out)).sum()  # a plain sum is constant after a BatchNorm


@pytest.mark.parametrize("name", NAMES)
def test_molecules_with_atom_and_bond_features(name, molecules):
    net = create_backbone(name, InputSpec.graph("atom", "bond"), **SMALL)
    out = net.forward_features(molecules)
    assert out.shape == (4, 16) and net.feature_dim == 16 and torch.isfinite(out).all()
    random_loss(out).backward()
    first = net.node_encoder.atom_embedding_list[0].weight  # the atom-type embedding
    assert first.grad is not None and first.grad.abs().sum() > 1e-4
    bond = net.convs[0].edge_encoder.bond_embedding_list[0].weight
    assert bond.grad is not None and bond.grad.abs().sum() > 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_a_single_graph_in_training_and_a_bare_data(name, molecules):
    net = create_backbone(name, InputSpec.graph(), **SMALL).train()
    assert net(batch_of([molecule("CCO")])).shape == (1, 16)
    assert net(batch_of([molecule("C")])).shape == (1, 16)  # one atom, no bonds: BatchNorm of one row
    net.eval()
    single = molecule("CC(=O)O")
    assert torch.allclose(net(single), net(batch_of([single])))  # a Data without `batch` is one graph


def test_defaults_follow_the_ogb_examples():
    net = create_backbone("gin", InputSpec.graph())
    assert net.feature_dim == 300 and len(net.convs) == 3 and net.pooling == "mean"
    assert net.dropout.p == 0.5 and net.virtual_node is None
    assert net.convs[0].mlp[0].out_features == 600  # the GIN MLP is 2 x hidden_dim wide inside
    vn = create_backbone("gin-v", InputSpec.graph())
    assert len(vn.virtual_node.mlps) == 2  # one update between each pair of layers
    assert create_backbone("gcn", InputSpec.graph(), virtual_node=True).virtual_node is not None


@pytest.mark.parametrize("name", NAMES)
def test_float_node_features_without_edge_features(name):
    spec = InputSpec.graph(node_features=5, edge_features=None)
    net = create_backbone(name, spec, **SMALL)
    batch = batch_of([float_graph(4, [(0, 1), (1, 2), (2, 3)]), float_graph(3, [(0, 1)]), float_graph(1, [])])
    assert net(batch).shape == (3, 16)
    assert net.convs[0].edge_encoder is None
    batch.x = (batch.x > 0).long()  # integer one-hot style features are read as floats
    assert net(batch).shape == (3, 16)


def test_float_edge_features():
    net = create_backbone("gin", InputSpec.graph(node_features=5, edge_features=2), **SMALL)
    batch = batch_of([float_graph(4, [(0, 1), (1, 2)], edge_width=2), float_graph(3, [(0, 2)], edge_width=2)])
    out = net(batch)
    random_loss(out).backward()
    assert out.shape == (2, 16) and net.convs[0].edge_encoder.weight.grad.abs().sum() > 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_graphs_without_edges(name):
    net = create_backbone(name, InputSpec.graph(), **SMALL)
    edgeless = [molecule("C"), molecule("[Na+].[Cl-]")]  # methane as one heavy atom; a salt of two ions
    assert edgeless[1].edge_index.shape == (2, 0)
    assert torch.isfinite(net(batch_of(edgeless))).all()  # a batch with no edge at all
    assert net(batch_of(edgeless + [molecule("CCO")])).shape == (3, 16)


@pytest.mark.parametrize("pooling", ["mean", "max", "sum"])
@pytest.mark.parametrize("name", NAMES)
def test_features_are_invariant_to_node_order(name, pooling):
    net = create_backbone(name, InputSpec.graph(), pooling=pooling, **SMALL).eval()
    graphs = [molecule(s) for s in SMILES]
    out = net(batch_of(graphs))
    g = torch.Generator().manual_seed(1)
    shuffled = [permuted(d, torch.randperm(d.num_nodes, generator=g)) for d in graphs]
    assert any(not torch.equal(a.x, b.x) for a, b in zip(shuffled, graphs))  # the order did change
    assert torch.allclose(net(batch_of(shuffled)), out, atol=1e-5)
    assert not torch.allclose(out[0], out[1])  # and the features do tell molecules apart


@pytest.mark.parametrize("name", NAMES)
def test_in_eval_a_graphs_features_do_not_depend_on_the_rest_of_the_batch(name):
    net = create_backbone(name, InputSpec.graph(), **SMALL).eval()
    alone = net(batch_of([molecule("CCO")]))
    together = net(batch_of([molecule("CCO"), molecule("c1ccccc1")]))
    assert torch.allclose(together[:1], alone, atol=1e-6)


def test_poolings_share_the_node_rows():
    nets = {p: create_backbone("gin", InputSpec.graph(), pooling=p, **SMALL).eval() for p in ("mean", "max", "sum")}
    for p in ("max", "sum"):
        nets[p].load_state_dict(nets["mean"].state_dict())
    batch = batch_of(molecule(s) for s in SMILES)
    counts = torch.bincount(batch.batch).unsqueeze(-1).float()  # (G, 1) atoms per molecule
    mean, top, total = (nets[p](batch) for p in ("mean", "max", "sum"))
    assert torch.allclose(total, counts * mean, atol=1e-5)
    assert (top >= mean - 1e-6).all() and not torch.allclose(top, mean)


def test_global_pool_by_graph_including_an_empty_one():
    h = torch.tensor([[1.0, -2.0], [3.0, 4.0], [5.0, 0.0]])
    batch = torch.tensor([0, 0, 2])  # graph 1 has no nodes
    assert global_pool(h, batch, 3, "mean").tolist() == [[2.0, 1.0], [0.0, 0.0], [5.0, 0.0]]
    assert global_pool(h, batch, 3, "max").tolist() == [[3.0, 4.0], [0.0, 0.0], [5.0, 0.0]]
    assert global_pool(h, batch, 3, "sum").tolist() == [[4.0, 2.0], [0.0, 0.0], [5.0, 0.0]]


def test_the_virtual_node_carries_information():
    """gin-v with gin's weights loaded still differs: the virtual-node updates are used."""
    plain = create_backbone("gin", InputSpec.graph(), **SMALL).eval()
    vn = create_backbone("gin-v", InputSpec.graph(), **SMALL).eval()
    missing, unexpected = vn.load_state_dict(plain.state_dict(), strict=False)
    assert unexpected == [] and missing and all(k.startswith("virtual_node.") for k in missing)
    batch = batch_of(molecule(s) for s in SMILES)
    assert not torch.allclose(vn(batch), plain(batch))


def test_graph_batchnorm_takes_one_row_in_training():
    norm, reference = GraphBatchNorm(3), torch.nn.BatchNorm1d(3)
    x = torch.randn(5, 3)
    assert torch.allclose(norm(x), reference(x)) and torch.allclose(norm.running_mean, reference.running_mean)
    stats = norm.running_mean.clone(), norm.running_var.clone()
    row = torch.randn(1, 3)
    expected = (row - stats[0]) / (stats[1] + norm.eps).sqrt()  # weight 1, bias 0
    assert torch.allclose(norm(row), expected, atol=1e-6)
    assert torch.equal(norm.running_mean, stats[0]) and torch.equal(norm.running_var, stats[1])


def test_runs_on_the_device_of_its_parameters():
    net = create_backbone("gin-v", InputSpec.graph(), **SMALL).to("meta")
    out = net(batch_of(molecule(s) for s in SMILES).to("meta"))
    assert out.device.type == "meta" and out.shape == (4, 16)


def test_wrong_inputs_raise(molecules):
    net = create_backbone("gin", InputSpec.graph(), **SMALL)
    molecules.x = molecules.x.float()
    with pytest.raises(ValueError, match="atom features must be integer indices"):
        net(molecules)
    tu = create_backbone("gin", InputSpec.graph(node_features=5, edge_features=None), **SMALL)
    with pytest.raises(ValueError, match=r"expected node features of shape \(N, 5\)"):
        tu(batch_of([float_graph(3, [(0, 1)], width=4)]))
    no_bonds = molecule("CCO")
    no_bonds.edge_attr = None
    with pytest.raises(ValueError, match="no edge_attr"):
        net(batch_of([no_bonds]))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"pooling": "median"}, r"pooling must be one of \['max', 'mean', 'sum'\]"),
        ({"hidden_dim": 0}, "hidden_dim must be a positive int"),
        ({"num_layers": 2.0}, "num_layers must be a positive int"),
        ({"dropout": 1.0}, "dropout must be a probability"),
        ({"virtual_node": "yes"}, "virtual_node must be True or False"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_backbone("gcn", InputSpec.graph(), **kwargs)


def test_bad_specs_and_convs_raise():
    with pytest.raises(ValueError, match="node_features must be 'atom' or a positive int width"):
        create_backbone("gin", InputSpec.graph(node_features="pixels"))
    with pytest.raises(ValueError, match="edge_features must be 'bond', a positive int width or None"):
        create_backbone("gin", InputSpec.graph(edge_features=0))
    with pytest.raises(ValueError, match=r"conv must be one of \['gcn', 'gin'\]"):
        GNN("atom", "bond", conv="gat")


def test_importing_the_backbones_needs_no_torch_geometric():
    code = (
        "import sys\n"
        "sys.modules.update({'torch_geometric': None, 'ogb': None})  # as if not installed\n"
        "from hetmem.backbones import InputSpec, create_backbone\n"
        "assert create_backbone('mlp', InputSpec.vector(3)).feature_dim == 390\n"
        "try:\n"
        "    create_backbone('gin', InputSpec.graph())\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "need 'torch_geometric'" in done.stdout and "pip install 'hetmem[graph]'" in done.stdout
