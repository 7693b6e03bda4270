"""ResNet-18 for 32x32 images (He et al. 2016, CIFAR variant), as a feature extractor."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from hetmem.backbones._checks import check_positive_int
from hetmem.backbones.registry import register_backbone
from hetmem.backbones.spec import InputSpec

__all__ = ["BasicBlock", "ResNet", "resnet18"]


class BasicBlock(nn.Module):
    """Two 3x3 conv + BatchNorm layers with an identity (or 1x1 conv + BatchNorm) shortcut.

    Args:
        in_dim: input channels.
        dim: output channels.
        stride: stride of the first conv and of the shortcut (2 halves H and W).

    Shapes:
        - input: (B, in_dim, H, W).
        - output: (B, dim, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, in_dim: int, dim: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_dim, dim, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(dim)
        self.conv2 = nn.Conv2d(dim, dim, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(dim)
        self.shortcut = nn.Identity()
        if stride != 1 or in_dim != dim:
            self.shortcut = nn.Sequential(nn.Conv2d(in_dim, dim, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(dim))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))  # (B, dim, H', W')
        out = self.bn2(self.conv2(out))  # (B, dim, H', W')
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """A ResNet of BasicBlocks with the CIFAR stem: one 3x3 conv at stride 1 and no max-pool.

    The network of kuangliu/pytorch-cifar, which the HMA paper trains on CIFAR: stem conv +
    BatchNorm + ReLU, four stages of ``blocks[i]`` BasicBlocks ``width * (1, 2, 4, 8)`` wide
    (the first block of stages 2-4 has stride 2), global average pooling. PyTorch's default
    init, as that code base.

    Args:
        in_channels: channels of the input image.
        blocks: BasicBlocks per stage; (2, 2, 2, 2) is ResNet-18.
        width: channels of the first stage; ``feature_dim = 8 * width``.

    Shapes:
        - input: (B, in_channels, H, W); 32x32 in the paper, any size >= 1x1 runs.
        - output: (B, 8 * width).

    Example:
        >>> import torch
        >>> net = ResNet(3, blocks=(1, 1, 1, 1), width=8)
        >>> net(torch.randn(2, 3, 32, 32)).shape
        torch.Size([2, 64])
    """

    def __init__(self, in_channels: int, *, blocks: Sequence[int] = (2, 2, 2, 2), width: int = 64) -> None:
        super().__init__()
        check_positive_int("ResNet", "in_channels", in_channels)
        check_positive_int("ResNet", "width", width)
        if isinstance(blocks, str) or not isinstance(blocks, Sequence) or len(blocks) != 4:
            raise ValueError(f"ResNet: blocks must be a sequence of 4 block counts, got {blocks!r}")
        for count in blocks:
            check_positive_int("ResNet", "blocks", count)
        self.blocks = tuple(blocks)
        self.width = width
        self.feature_dim = 8 * width
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        stages, in_dim = [], width
        for i, count in enumerate(self.blocks):
            dim = width * 2**i
            first = BasicBlock(in_dim, dim, stride=1 if i == 0 else 2)
            stages.append(nn.Sequential(first, *(BasicBlock(dim, dim) for _ in range(count - 1))))
            in_dim = dim
        self.stages = nn.Sequential(*stages)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.BatchNorm2d)):
                module.reset_parameters()

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.stem(x)  # (B, width, H, W)
        x = self.stages(x)  # (B, 8 * width, H / 8, W / 8)
        return x.mean(dim=(2, 3))  # (B, feature_dim)

    forward = forward_features

    def extra_repr(self) -> str:
        return f"blocks={self.blocks}, width={self.width}, feature_dim={self.feature_dim}"


@register_backbone("resnet18", kinds=("image",))
def resnet18(spec: InputSpec, *, width: int = 64) -> ResNet:
    """CIFAR ResNet-18: 3x3 stem at stride 1, no max-pool, BasicBlocks (2, 2, 2, 2), BatchNorm."""
    return ResNet(spec.shape[0], blocks=(2, 2, 2, 2), width=width)
