"""Tiny backbones for the rich-feature tests."""

import torch
from torch import nn


class BNNet(nn.Module):
    """Linear -> BatchNorm -> ReLU: a backbone with running statistics."""

    def __init__(self, in_dim: int = 6, feature_dim: int = 5) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.fc = nn.Linear(in_dim, feature_dim)
        self.bn = nn.BatchNorm1d(feature_dim)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.fc(x)))

    forward = forward_features


def blobs(n: int = 64, in_dim: int = 6, classes: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    centres = 3 * torch.randn(classes, in_dim, generator=g)
    return centres[y] + torch.randn(n, in_dim, generator=g), y
