"""MaSSL's projection head: an MLP without BatchNorm whose output lies on the unit sphere."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ProjectionHead"]


class ProjectionHead(nn.Module):
    """``num_layers`` Linear layers with GELU between them, then L2 normalisation.

    MaSSL's head (3 layers, hidden 2048, output 256, no BatchNorm; DINO's head without its
    weight-normalised prototype layer, since MaSSL's 'prototypes' are the memory rows).
    Weights start from a truncated normal with std 0.02 and biases at zero, as in the
    reference code.

    Args:
        in_dim: backbone feature width.
        hidden_dim: width of the hidden layers (2048 in the paper; smaller on a CPU).
        out_dim: embedding width D, the width of the memory rows (256 in the paper).
        num_layers: number of Linear layers, >= 1.

    Shapes:
        - input: (B, in_dim); output: (B, out_dim) with unit L2 norm per row.

    Example:
        >>> import torch
        >>> head = ProjectionHead(32, hidden_dim=64, out_dim=16)
        >>> z = head(torch.randn(5, 32))
        >>> z.shape, bool(torch.allclose(z.norm(dim=1), torch.ones(5)))
        (torch.Size([5, 16]), True)
    """

    def __init__(self, in_dim: int, *, hidden_dim: int = 2048, out_dim: int = 256, num_layers: int = 3) -> None:
        super().__init__()
        for name, value in (("in_dim", in_dim), ("hidden_dim", hidden_dim), ("out_dim", out_dim), ("num_layers", num_layers)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"ProjectionHead: {name} must be a positive int, got {value!r}")
        widths = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        layers: list[nn.Module] = []
        for i, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:])):
            if i > 0:
                layers.append(nn.GELU())
            layers.append(nn.Linear(w_in, w_out))
        self.mlp = nn.Sequential(*layers)
        self.out_dim = out_dim
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                nn.init.trunc_normal_(layer.weight, std=0.02)
                nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.mlp(x), dim=-1, eps=1e-6)  # (B, out_dim)
