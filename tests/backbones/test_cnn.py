import pytest
import torch

from hetmem.backbones import InputSpec, create_backbone
from hetmem.backbones.cnn import ConvNet


@pytest.mark.parametrize("B", [1, 2])
@pytest.mark.parametrize("channels, size", [(1, 8), (2, 14), (1, 28), (3, 32)])
def test_pools_every_supported_image_size_to_128_features(channels, size, B):
    net = create_backbone("cnn", InputSpec.image(channels, size, size))
    out = net.forward_features(torch.randn(B, channels, size, size))
    assert out.shape == (B, 128) and net.feature_dim == 128


def test_is_domainbeds_mnist_cnn():
    net = create_backbone("cnn", InputSpec.image(2, 14, 14))
    convs = [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in net.convs]
    assert convs == [
        (2, 64, (3, 3), (1, 1), (1, 1)),
        (64, 128, (3, 3), (2, 2), (1, 1)),
        (128, 128, (3, 3), (1, 1), (1, 1)),
        (128, 128, (3, 3), (1, 1), (1, 1)),
    ]
    assert [(n.num_groups, n.num_channels) for n in net.norms] == [(8, 64), (8, 128), (8, 128), (8, 128)]


def test_relu_comes_before_groupnorm():
    """DomainBed normalises after the ReLU, so a norm's input is never negative."""
    net = ConvNet(1, channels=(16, 16))
    seen = []
    net.norms[0].register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    net(torch.randn(2, 1, 8, 8))
    assert (seen[0] >= 0).all() and (seen[0] == 0).any()


def test_channels_set_the_widths_and_feature_dim():
    net = create_backbone("cnn", InputSpec.image(1, 28, 28), channels=[16, 32, 24])
    assert net.feature_dim == 24 and [c.out_channels for c in net.convs] == [16, 32, 24]
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 24)


def test_gradients_reach_the_first_conv():
    net = ConvNet(1, channels=(8, 16))
    out = net(torch.randn(2, 1, 14, 14))
    (out * torch.randn_like(out)).sum().backward()  # random weights: a plain sum is constant after a norm layer
    assert net.convs[0].weight.grad is not None and net.convs[0].weight.grad.abs().sum() > 1e-4


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"channels": (64, 100)}, "multiple of num_groups=8"),
        ({"channels": ()}, "non-empty sequence of widths"),
        ({"channels": 64}, "non-empty sequence of widths"),
        ({"channels": (64, 0)}, "channels must be a positive int"),
        ({"num_groups": 0}, "num_groups must be a positive int"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_backbone("cnn", InputSpec.image(1, 28, 28), **kwargs)
