import pytest
import torch

from hetmem.backbones import InputSpec, create_backbone
from hetmem.backbones.mlp import MLP


@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("spec", [InputSpec.image(2, 14, 14), InputSpec.image(1, 8, 8), InputSpec.vector(13)])
def test_flattens_any_input_into_hidden_dim_features(spec, B):
    net = create_backbone("mlp", spec)
    out = net.forward_features(torch.randn(B, *spec.shape))
    assert out.shape == (B, 390) and net.feature_dim == 390
    assert torch.equal(net(torch.ones(B, *spec.shape)), net.forward_features(torch.ones(B, *spec.shape)))


def test_is_irms_colored_mnist_network_without_its_output_layer():
    net = create_backbone("mlp", InputSpec.image(2, 14, 14))
    assert [(layer.in_features, layer.out_features) for layer in net.layers] == [(392, 390), (390, 390)]
    assert all(torch.equal(layer.bias, torch.zeros(390)) for layer in net.layers)  # IRM's init: zero biases
    bound = (6 / (392 + 390)) ** 0.5  # Xavier-uniform
    assert net.layers[0].weight.abs().max() <= bound
    assert (net(torch.randn(4, 2, 14, 14)) >= 0).all()  # features come out of a ReLU


def test_hidden_dim_and_num_layers_set_the_shape():
    net = create_backbone("mlp", InputSpec.vector(5), hidden_dim=16, num_layers=3)
    assert len(net.layers) == 3 and net.feature_dim == 16
    assert net(torch.randn(2, 5)).shape == (2, 16)
    assert "feature_dim=16" in repr(net)


def test_dropout_acts_in_training_only():
    net = MLP(10, hidden_dim=64, dropout=0.5)
    x = torch.randn(4, 10)
    net.train()
    assert not torch.equal(net(x), net(x))
    net.eval()
    assert torch.equal(net(x), net(x))


def test_gradients_reach_the_first_layer():
    net = MLP(392, hidden_dim=32)
    out = net(torch.randn(4, 2, 14, 14))
    (out * torch.randn_like(out)).sum().backward()
    assert net.layers[0].weight.grad is not None and net.layers[0].weight.grad.abs().sum() > 1e-4


def test_wrong_input_width_raises():
    net = MLP(392)
    with pytest.raises(ValueError, match="expected 392 numbers per row"):
        net(torch.randn(2, 1, 14, 14))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"hidden_dim": 0}, "hidden_dim must be a positive int"),
        ({"num_layers": 1.5}, "num_layers must be a positive int"),
        ({"dropout": 1.0}, r"dropout must be a probability in \[0, 1\)"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_backbone("mlp", InputSpec.vector(4), **kwargs)
