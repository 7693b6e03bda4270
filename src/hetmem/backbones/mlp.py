"""The MLP of IRM's Colored MNIST experiments (Arjovsky et al. 2019), as a feature extractor."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from hetmem.backbones._checks import check_dropout, check_positive_int
from hetmem.backbones.registry import register_backbone
from hetmem.backbones.spec import InputSpec

__all__ = ["MLP", "mlp"]


class MLP(nn.Module):
    """Flatten, then ``num_layers`` blocks of (Linear, ReLU, Dropout), all ``hidden_dim`` wide.

    IRM's Colored MNIST network (https://arxiv.org/abs/1907.02893) is Linear(2*14*14, 390),
    ReLU, Linear(390, 390), ReLU, Linear(390, 1). This is that network without its output
    layer (HMA puts the classifier on top), with IRM's init: Xavier-uniform weights, zero biases.

    Args:
        in_features: numbers per sample after flattening (``InputSpec.numel``).
        hidden_dim: width of every hidden layer; also ``feature_dim``.
        num_layers: number of hidden Linear + ReLU layers.
        dropout: dropout probability after each ReLU (0 for none, as in IRM).

    Shapes:
        - input: (B, ...) with ``in_features`` numbers per row, e.g. (B, 2, 14, 14) or (B, F).
        - output: (B, hidden_dim).

    Example:
        >>> import torch
        >>> net = MLP(2 * 14 * 14, hidden_dim=64)
        >>> net(torch.randn(5, 2, 14, 14)).shape
        torch.Size([5, 64])
    """

    def __init__(self, in_features: int, *, hidden_dim: int = 390, num_layers: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("hidden_dim", hidden_dim), ("num_layers", num_layers)):
            check_positive_int("MLP", name, value)
        check_dropout("MLP", "dropout", dropout)
        self.in_features = in_features
        self.feature_dim = hidden_dim
        widths = [in_features] + [hidden_dim] * num_layers
        self.layers = nn.ModuleList(nn.Linear(w_in, w_out) for w_in, w_out in zip(widths[:-1], widths[1:]))
        self.dropout = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in self.layers:
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        x = x.flatten(1)  # (B, in_features)
        if x.shape[1] != self.in_features:
            raise ValueError(f"MLP: expected {self.in_features} numbers per row, got input of shape {tuple(x.shape)}")
        for layer in self.layers:
            x = self.dropout(F.relu(layer(x)))  # (B, hidden_dim)
        return x

    forward = forward_features

    def extra_repr(self) -> str:
        return f"feature_dim={self.feature_dim}"


@register_backbone("mlp", kinds=("image", "vector"))
def mlp(spec: InputSpec, *, hidden_dim: int = 390, num_layers: int = 2, dropout: float = 0.0) -> MLP:
    """IRM's Colored MNIST MLP (flattens images): ``num_layers`` x (Linear, ReLU), ``hidden_dim`` wide."""
    return MLP(spec.numel, hidden_dim=hidden_dim, num_layers=num_layers, dropout=dropout)
