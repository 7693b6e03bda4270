import pytest
import torch

from hetmem.backbones import InputSpec, create_backbone
from hetmem.backbones.resnet import BasicBlock, ResNet


def test_default_is_the_cifar_resnet18():
    net = create_backbone("resnet18", InputSpec.image(3, 32, 32))
    assert net.feature_dim == 512
    stem = net.stem[0]
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1)  # CIFAR stem: no 7x7 conv, no max-pool
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in net.modules())
    assert [len(stage) for stage in net.stages] == [2, 2, 2, 2]
    assert sum(p.numel() for p in net.parameters()) == 11_168_832  # kuangliu's ResNet18 less its 10-way Linear
    net.eval()
    assert net(torch.randn(1, 3, 32, 32)).shape == (1, 512)


@pytest.mark.parametrize("channels, size", [(1, 8), (2, 14), (1, 28), (3, 32)])
def test_every_supported_image_size(channels, size):
    net = create_backbone("resnet18", InputSpec.image(channels, size, size), width=8)
    assert net(torch.randn(2, channels, size, size)).shape == (2, 64)
    net.eval()  # a single image needs running statistics (BatchNorm)
    assert net.forward_features(torch.randn(1, channels, size, size)).shape == (1, 64)


def test_stages_double_the_width_and_halve_the_resolution():
    net = ResNet(3, blocks=(1, 1, 1, 1), width=4)
    shapes = []
    for stage in net.stages:
        stage.register_forward_hook(lambda module, inputs, output: shapes.append(tuple(output.shape)))
    net(torch.randn(2, 3, 32, 32))
    assert shapes == [(2, 4, 32, 32), (2, 8, 16, 16), (2, 16, 8, 8), (2, 32, 4, 4)]


def test_projection_shortcut_only_where_the_shape_changes():
    assert isinstance(BasicBlock(8, 8).shortcut, torch.nn.Identity)
    assert isinstance(BasicBlock(8, 16, stride=2).shortcut, torch.nn.Sequential)
    assert BasicBlock(8, 16, stride=2)(torch.randn(2, 8, 7, 7)).shape == (2, 16, 4, 4)


def test_gradients_reach_the_stem_and_batchnorm_statistics_move():
    net = ResNet(1, blocks=(1, 1, 1, 1), width=4)
    out = net(torch.randn(4, 1, 14, 14))
    (out * torch.randn_like(out)).sum().backward()  # random weights: a plain sum is constant after a norm layer
    assert net.stem[0].weight.grad is not None and net.stem[0].weight.grad.abs().sum() > 1e-4
    assert not torch.equal(net.stem[1].running_mean, torch.zeros(4))


@pytest.mark.parametrize(
    "kwargs, match",
    [({"width": 0}, "width must be a positive int"), ({"blocks": (2, 2, 2)}, "sequence of 4 block counts")],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ResNet(3, **kwargs)
    if "width" in kwargs:
        with pytest.raises(ValueError, match=match):
            create_backbone("resnet18", InputSpec.image(3, 32, 32), **kwargs)
