import pytest
import torch
from torch import nn


class TinyBackbone(nn.Module):
    """A small backbone with the hetmem interface, with BatchNorm (buffers) and dropout."""

    def __init__(self, in_dim: int = 12, feature_dim: int = 20) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.net = nn.Sequential(nn.Linear(in_dim, feature_dim), nn.BatchNorm1d(feature_dim), nn.ReLU(), nn.Dropout(0.1))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.fixture
def tiny_backbone() -> TinyBackbone:
    torch.manual_seed(0)
    return TinyBackbone()


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
