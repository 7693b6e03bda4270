"""Independent copies of IRM's Colored MNIST MLP trained at once (one per seed, or per Cat member).

Every weight carries a leading member dimension M; members never share a parameter, so one
Adam step on the summed loss equals M separate Adam steps (Adam is elementwise). Each member is
initialised from its own generator (``seed``, ``stream``), so a member's run does not depend on
which other members it was batched with.

Shapes:
    - x: (M, N, D) (each member its own rows) or (N, D) (shared rows).
    - features: (M, N, H); logits: (M, N) for one output, else (M, N, O).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["MemberMLP", "MemberHead", "member_generator"]


def member_generator(seed: int, stream: int) -> torch.Generator:
    """The generator of one member's initialisation: seed and a stream (round, phase, copy)."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(stream))


def _xavier(rows: int, cols: int, g: torch.Generator) -> Tensor:
    bound = math.sqrt(6.0 / (rows + cols))
    return (torch.rand(rows, cols, generator=g) * 2 - 1) * bound  # (fan_in, fan_out), torch's xavier_uniform_ bound


class MemberHead(nn.Module):
    """M linear heads ``features (M, N, H) -> logits``: Xavier weights, zero biases (RFC's TopMLP).

    Args:
        seeds: one seed per member.
        in_features: H.
        out: logits per row (1: a binary logit, squeezed).
        stream: the initialisation stream.
    """

    def __init__(self, seeds: Sequence[int], in_features: int, *, out: int = 1, stream: int = 0) -> None:
        super().__init__()
        gens = [member_generator(s, stream) for s in seeds]
        self.out = out
        self.weight = nn.Parameter(torch.stack([_xavier(in_features, out, g) for g in gens]))  # (M, H, O)
        self.bias = nn.Parameter(torch.zeros(len(seeds), out))  # (M, O)

    def forward(self, phi: Tensor) -> Tensor:
        z = torch.baddbmm(self.bias.unsqueeze(1), phi, self.weight)  # (M, N, O)
        return z.squeeze(-1) if self.out == 1 else z

    def features(self, x: Tensor) -> Tensor:
        """Identity: a head alone reads precomputed (frozen) features."""
        return x

    @property
    def head(self) -> MemberHead:
        """Itself: a head alone is a model whose whole network is its head (the "-cf" case)."""
        return self


class MemberMLP(nn.Module):
    """M copies of Linear(D, H), ReLU, Linear(H, H), ReLU (IRM's MLP) and a :class:`MemberHead`.

    Args:
        seeds: one seed per member.
        in_features: D (2 x 14 x 14 = 392 for Colored MNIST).
        hidden_dim: H (390 in IRM and RFC).
        out: logits per row (1: binary; K: Bonsai's synthesis heads).
        stream: the initialisation stream (a fresh init per Bonsai round, say).

    Example:
        >>> net = MemberMLP([0, 1], in_features=8, hidden_dim=4)
        >>> net(torch.randn(2, 5, 8)).shape, net.features(torch.randn(5, 8)).shape
        (torch.Size([2, 5]), torch.Size([2, 5, 4]))
    """

    def __init__(self, seeds: Sequence[int], *, in_features: int, hidden_dim: int = 390, out: int = 1, stream: int = 0) -> None:
        super().__init__()
        if not seeds or in_features <= 0 or hidden_dim <= 0 or out <= 0:
            raise ValueError(f"MemberMLP: need seeds and positive sizes, got {len(seeds)} seeds, in_features={in_features}, "
                             f"hidden_dim={hidden_dim}, out={out}")
        gens = [member_generator(s, stream) for s in seeds]
        self.in_features, self.hidden_dim = in_features, hidden_dim
        self.w1 = nn.Parameter(torch.stack([_xavier(in_features, hidden_dim, g) for g in gens]))  # (M, D, H)
        self.b1 = nn.Parameter(torch.zeros(len(seeds), hidden_dim))
        self.w2 = nn.Parameter(torch.stack([_xavier(hidden_dim, hidden_dim, g) for g in gens]))  # (M, H, H)
        self.b2 = nn.Parameter(torch.zeros(len(seeds), hidden_dim))
        self.head = MemberHead(seeds, hidden_dim, out=out, stream=stream + 500)

    @property
    def num_members(self) -> int:
        return self.w1.shape[0]

    def features(self, x: Tensor) -> Tensor:
        h = torch.relu(torch.matmul(x, self.w1) + self.b1.unsqueeze(1))  # (M, N, H); (N, D) broadcasts to every member
        return torch.relu(torch.baddbmm(self.b2.unsqueeze(1), h, self.w2))  # (M, N, H)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    def featurizer_parameters(self) -> list[nn.Parameter]:
        return [self.w1, self.b1, self.w2, self.b2]

    def extra_repr(self) -> str:
        return f"members={self.num_members}, in_features={self.in_features}, hidden_dim={self.hidden_dim}"
