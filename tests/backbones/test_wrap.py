import pytest
import torch
from torch import nn

from hetmem import HMAClassifier, HMAConfig
from hetmem.backbones import WrappedBackbone, wrap


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 4 * 4, 10)
    )


def train_step(model: HMAClassifier, x, y) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = nn.functional.cross_entropy(model(x, y), y)
    loss.backward()
    opt.step()


def test_a_cnn_at_its_output_and_at_a_named_layer():
    net = cnn()
    x = torch.randn(3, 1, 8, 8)
    logits_backbone = wrap(net, example_input=x)
    assert logits_backbone.feature_dim == 10 and torch.equal(logits_backbone.forward_features(x), net(x))
    maps = wrap(net, layer="3", example_input=x)  # (B, 16, 4, 4) maps, averaged over space by default
    assert maps.feature_dim == 16 and maps.module is net
    expected = net[3](net[2](net[1](net[0](x)))).mean((2, 3))
    assert torch.allclose(maps.forward_features(x), expected)
    assert wrap(net, layer="3", pool="flatten", example_input=x).feature_dim == 16 * 4 * 4
    assert torch.allclose(wrap(net, layer="3", pool="max", example_input=x).forward_features(x), net[:4](x).amax((2, 3)))


def test_the_dry_run_changes_no_state_and_keeps_every_mode():
    net = cnn().train()
    net[1].eval()  # a frozen BatchNorm inside a training model
    before = {k: v.clone() for k, v in net.state_dict().items()}
    wrapped = wrap(net, layer="1", example_input=torch.randn(4, 1, 8, 8))
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())  # BatchNorm statistics untouched
    assert net.training and not net[1].training and net[0].training and wrapped.training


def test_the_layers_after_the_hooked_one_do_not_run():
    calls = []
    net = cnn()
    net[6].register_forward_hook(lambda *_: calls.append(1))
    wrap(net, layer="3", example_input=torch.randn(2, 1, 8, 8)).forward_features(torch.randn(2, 1, 8, 8))
    assert calls == []
    assert not net[3]._forward_hooks  # the capturing hook is removed after each call


def test_token_models_and_tuple_outputs():
    lstm = nn.LSTM(input_size=6, hidden_size=12, batch_first=True)  # returns (output, (h, c))
    x = torch.randn(2, 5, 6)
    assert torch.allclose(wrap(lstm, example_input=x, pool="token-mean").forward_features(x), lstm(x)[0].mean(1))
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(d_model=8, nhead=2, batch_first=True), num_layers=1).eval()
    x = torch.randn(3, 4, 8)
    assert torch.allclose(wrap(encoder, example_input=x, pool="cls").forward_features(x), encoder(x)[:, 0])


def test_hma_trains_on_a_wrapped_module_and_its_momentum_encoder_follows():
    backbone = wrap(cnn(), layer="4", example_input=torch.randn(2, 1, 8, 8))
    model = HMAClassifier(backbone, HMAConfig(num_classes=3, label_dim=4, queue_size=8, num_heads=2))
    x, y = torch.randn(6, 1, 8, 8), torch.randint(0, 3, (6,))
    before = backbone.module[0].weight.clone()
    train_step(model, x, y)
    assert not torch.equal(before, backbone.module[0].weight)  # gradients reach the wrapped module
    assert len(model.head.queue) == 6  # the momentum encoder (a copy of the wrapper) wrote features
    assert isinstance(model.momentum_encoder.module, WrappedBackbone)
    assert model.eval()(x).shape == (6, 3)


@pytest.mark.parametrize("kwargs, match", [
    ({"layer": "nope"}, r"has no layer 'nope'; its layers include \['0', '1'"),
    ({"pool": "avg"}, "pool must be one of"),
    ({"inputs": "text"}, r"inputs must be one of \['graph'\]"),
    ({"example_input": None}, "pass example_input"),
    ({"pool": "none"}, r"pooled output of Sequential has shape \(2, 16, 4, 4\)"),
])
def test_bad_arguments_are_clear(kwargs, match):
    args = {"example_input": torch.randn(2, 1, 8, 8), **kwargs}
    net = cnn()[:5] if kwargs.get("pool") == "none" else cnn()
    with pytest.raises(ValueError, match=match):
        wrap(net, **args)


def test_a_module_with_a_dict_output_asks_for_a_layer_or_pool():
    class DictOut(nn.Module):
        def forward(self, x):
            return {"features": x}

    with pytest.raises(ValueError, match="DictOut returned dict, not a tensor"):
        wrap(DictOut(), example_input=torch.randn(2, 3))
    x = torch.randn(2, 3)
    fixed = wrap(DictOut(), example_input=x, inputs=lambda b: {"x": 2 * b}, pool=lambda out, batch: out["features"])
    assert fixed.feature_dim == 3 and torch.equal(fixed.forward_features(x), 2 * x)


# ----- torch_geometric's model zoo ---------------------------------------------------------
def random_graphs(n_graphs: int = 5, width: int = 7, seed: int = 0):
    pytest.importorskip("torch_geometric")
    from torch_geometric.data import Batch, Data

    g = torch.Generator().manual_seed(seed)
    graphs = []
    for i in range(n_graphs):
        n = 3 + i
        edges = torch.randint(0, n, (2, 2 * n), generator=g)
        graphs.append(Data(x=torch.randn(n, width, generator=g), edge_index=torch.cat([edges, edges.flip(0)], 1), y=torch.tensor([i % 2])))
    return Batch.from_data_list(graphs)


@pytest.mark.parametrize("name", ["GIN", "GraphSAGE", "GCN", "GAT"])
def test_pyg_models_pool_per_graph_and_train_under_hma(name):
    models = pytest.importorskip("torch_geometric.nn.models")
    from torch_geometric.nn import global_mean_pool

    gnn = getattr(models, name)(in_channels=7, hidden_channels=16, num_layers=2)
    batch = random_graphs()
    backbone = wrap(gnn, inputs="graph", example_input=batch)
    assert backbone.feature_dim == 16
    expected = global_mean_pool(gnn(batch.x, batch.edge_index), batch.batch)
    assert torch.allclose(backbone.forward_features(batch), expected, atol=1e-6)
    model = HMAClassifier(backbone, HMAConfig(num_classes=2, label_dim=4, queue_size=8, num_heads=2))
    train_step(model, batch, batch.y)
    assert len(model.head.queue) == 5 and model.eval()(batch).shape == (5, 2)


def test_pyg_named_layer_and_max_pool():
    models = pytest.importorskip("torch_geometric.nn.models")
    from torch_geometric.nn import global_max_pool

    gin = models.GIN(in_channels=7, hidden_channels=16, num_layers=3)
    batch = random_graphs()
    backbone = wrap(gin, inputs="graph", layer="convs.0", pool="max", example_input=batch)
    expected = global_max_pool(gin.convs[0](batch.x, batch.edge_index), batch.batch)
    assert torch.allclose(backbone.forward_features(batch), expected, atol=1e-6)


def test_graph_outputs_refuse_token_pools():
    models = pytest.importorskip("torch_geometric.nn.models")
    with pytest.raises(ValueError, match="pool 'cls' does not apply to the node rows of a graph batch"):
        wrap(models.GCN(in_channels=7, hidden_channels=8, num_layers=1), inputs="graph", pool="cls", example_input=random_graphs())


def test_a_module_catching_exceptions_cannot_swallow_the_capture():
    class Careful(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 4), nn.Linear(4, 2)

        def forward(self, x):
            try:
                return self.b(self.a(x))
            except Exception:  # noqa: BLE001
                return torch.zeros(len(x), 2)

    x = torch.randn(2, 3)
    net = Careful()
    assert torch.equal(wrap(net, layer="a", example_input=x).forward_features(x), net.a(x))
