import pytest
import torch
from torch import nn

pytest.importorskip("torch_geometric")
from hetmem.backbones.graph_conv import GCNConv, GINConv  # noqa: E402

# a path 0 - 1 - 2 plus the edge 3 -> 1, so node 1 has in-degree 3
EDGE_INDEX = torch.tensor([[0, 1, 1, 2, 3], [1, 0, 2, 1, 1]])


def dense_adjacency(edge_index: torch.Tensor, n: int) -> torch.Tensor:
    """A[i, j] = number of edges j -> i."""
    a = torch.zeros(n, n)
    a.index_put_((edge_index[1], edge_index[0]), torch.ones(edge_index.shape[1]), accumulate=True)
    return a


def test_gin_follows_the_ogb_rule_with_edge_features():
    conv = GINConv(3, edge_encoder=nn.Linear(2, 3)).eval()
    with torch.no_grad():
        conv.eps.fill_(0.3)
    x, edge_attr = torch.randn(4, 3), torch.randn(5, 2)
    e = conv.edge_encoder(edge_attr)
    neighbours = torch.zeros(4, 3)
    for k, (j, i) in enumerate(EDGE_INDEX.t().tolist()):
        neighbours[i] += torch.relu(x[j] + e[k])
    expected = conv.mlp(1.3 * x + neighbours)
    assert torch.allclose(conv(x, EDGE_INDEX, edge_attr), expected, atol=1e-6)


def test_gin_without_edge_features_is_the_original_gin():
    conv = GINConv(3).eval()
    x = torch.randn(4, 3) - 1.0  # negative entries: a ReLU on the messages would show
    expected = conv.mlp(x + dense_adjacency(EDGE_INDEX, 4) @ x)
    assert torch.allclose(conv(x, EDGE_INDEX), expected, atol=1e-6)


def test_gcn_without_edge_features_is_kipf_and_wellings_propagation():
    conv = GCNConv(3)
    x = torch.randn(4, 3)
    a_hat = dense_adjacency(EDGE_INDEX, 4) + torch.eye(4)
    d = a_hat.sum(dim=1).rsqrt()  # in-degree + 1
    expected = d[:, None] * a_hat * d[None, :] @ conv.linear(x)
    assert torch.allclose(conv(x, EDGE_INDEX), expected, atol=1e-6)
    assert conv.root is None


def test_gcn_follows_the_ogb_rule_with_edge_features():
    conv = GCNConv(3, edge_encoder=nn.Linear(2, 3))
    x, edge_attr = torch.randn(4, 3), torch.randn(5, 2)
    h, e = conv.linear(x), conv.edge_encoder(edge_attr)
    deg = torch.tensor([1.0, 3.0, 1.0, 0.0]) + 1
    expected = torch.relu(h + conv.root) / deg[:, None]
    for k, (j, i) in enumerate(EDGE_INDEX.t().tolist()):
        expected[i] += torch.relu(h[j] + e[k]) / (deg[i] * deg[j]).sqrt()
    assert torch.allclose(conv(x, EDGE_INDEX, edge_attr), expected, atol=1e-6)


@pytest.mark.parametrize("make", [lambda: GINConv(3, edge_encoder=nn.Linear(2, 3)), lambda: GCNConv(3, edge_encoder=nn.Linear(2, 3))])
def test_edgeless_graphs_and_missing_edge_features(make):
    conv = make().eval()
    x, no_edges = torch.randn(2, 3), torch.zeros(2, 0, dtype=torch.long)
    out = conv(x, no_edges)  # no edge_attr is fine when there are no edges
    assert torch.allclose(out, conv(x, no_edges, torch.zeros(0, 2)))
    with pytest.raises(ValueError, match="reads edge features, but the batch has no edge_attr"):
        conv(torch.randn(4, 3), EDGE_INDEX)


def test_gradients_reach_the_edge_encoder_and_eps():
    conv = GINConv(3, edge_encoder=nn.Linear(2, 3))
    out = conv(torch.randn(4, 3), EDGE_INDEX, torch.randn(5, 2))
    (out * torch.randn_like(out)).sum().backward()  # random weights: a plain sum is constant after a norm layer
    assert conv.edge_encoder.weight.grad.abs().sum() > 1e-4 and conv.eps.grad.abs().sum() > 0


def test_repr_shows_the_whole_layer():
    text = repr(GINConv(4))
    assert text.startswith("GINConv(\n  dim=4") and "Linear(in_features=4, out_features=8" in text
    assert repr(GCNConv(4)).startswith("GCNConv(\n  dim=4")
