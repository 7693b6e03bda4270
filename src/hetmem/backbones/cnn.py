"""DomainBed's small MNIST CNN (Gulrajani & Lopez-Paz 2021), as a feature extractor."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from hetmem.backbones._checks import check_positive_int
from hetmem.backbones.registry import register_backbone
from hetmem.backbones.spec import InputSpec

__all__ = ["ConvNet", "cnn"]


class ConvNet(nn.Module):
    """3x3 convolutions, each followed by ReLU then GroupNorm, and global average pooling.

    DomainBed's ``MNIST_CNN`` (https://arxiv.org/abs/2007.01434) with its default widths
    (64, 128, 128, 128): padding 1 everywhere and stride 2 in the second convolution only, so
    any input of at least 2x2 pixels works (8x8 digits, 14x14 Colored MNIST, 28x28, 32x32).

    Args:
        in_channels: channels of the input image.
        channels: output width of each convolution; the last one is ``feature_dim``.
        num_groups: GroupNorm groups; every width must be a multiple of it.

    Shapes:
        - input: (B, in_channels, H, W).
        - output: (B, channels[-1]).

    Example:
        >>> import torch
        >>> net = ConvNet(1, channels=(16, 32, 32))
        >>> net(torch.randn(4, 1, 28, 28)).shape
        torch.Size([4, 32])
    """

    def __init__(self, in_channels: int, *, channels: Sequence[int] = (64, 128, 128, 128), num_groups: int = 8) -> None:
        super().__init__()
        check_positive_int("ConvNet", "in_channels", in_channels)
        check_positive_int("ConvNet", "num_groups", num_groups)
        if isinstance(channels, str) or not isinstance(channels, Sequence) or not channels:
            raise ValueError(f"ConvNet: channels must be a non-empty sequence of widths, got {channels!r}")
        channels = tuple(channels)
        for width in channels:
            check_positive_int("ConvNet", "channels", width)
            if width % num_groups:
                raise ValueError(f"ConvNet: every width in channels must be a multiple of num_groups={num_groups}, got {channels}")
        self.channels = channels
        self.feature_dim = channels[-1]
        widths = (in_channels,) + channels
        self.convs = nn.ModuleList(
            nn.Conv2d(w_in, w_out, kernel_size=3, stride=2 if i == 1 else 1, padding=1)
            for i, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:]))
        )
        self.norms = nn.ModuleList(nn.GroupNorm(num_groups, width) for width in channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default init, as DomainBed."""
        for conv, norm in zip(self.convs, self.norms):
            conv.reset_parameters()
            norm.reset_parameters()

    def forward_features(self, x: Tensor) -> Tensor:
        for conv, norm in zip(self.convs, self.norms):
            x = norm(F.relu(conv(x)))  # (B, width, H', W'); H' = ceil(H / 2) from the second conv on
        return x.mean(dim=(2, 3))  # (B, feature_dim)

    forward = forward_features

    def extra_repr(self) -> str:
        return f"feature_dim={self.feature_dim}"


@register_backbone("cnn", kinds=("image",))
def cnn(spec: InputSpec, *, channels: Sequence[int] = (64, 128, 128, 128), num_groups: int = 8) -> ConvNet:
    """DomainBed's MNIST CNN: 3x3 convs (64, 128 stride 2, 128, 128), ReLU + GroupNorm, average pool."""
    return ConvNet(spec.shape[0], channels=channels, num_groups=num_groups)

