"""The three-moons toy Memory Mosaic (thesis Fig. 3.4, official ``ThreeMoons/model.py``) and its measures.

One contextual memory layer on 6-d inputs (3 moons = 3 complex numbers): keys W_phi x_t,
values W_psi x_{t+1}, a strictly causal Gaussian-kernel read with a fixed bandwidth beta = 50
and no key normalisation, output W_z concat(y). Each of the three maps is a 3 x 3 complex
matrix stored as explicit real and imaginary parts a, b (spec trap 14; the official code
projects an unconstrained 6 x 6 matrix onto that form instead): 54 real parameters in all.
With 1 head (one C^3 memory) the best a read can do is wait for the whole system to repeat
(the lcm of the periods); with 3 heads (three C^1 memories) each head can learn one moon,
which is *predictive disentanglement*. W = I is an exact solution for both.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor, nn

from hetmem.models.mosaics.read import past_attention

__all__ = ["ComplexLinear", "MoonMemory", "moon_loss", "permutation_mass", "rollout_error", "unit_moduli"]


class ComplexLinear(nn.Module):
    """A linear map of ``units`` complex numbers, as a (2u x 2u) real matrix of 2 x 2 blocks
    ``[[a_ij, b_ij], [-b_ij, a_ij]]`` with the parts a, b kept as (u, u) parameters. No bias.

    Example:
        >>> layer = ComplexLinear(3).identity_()
        >>> bool(torch.equal(layer.weight, torch.eye(6)))
        True
    """

    def __init__(self, units: int = 3) -> None:
        super().__init__()
        if units < 1:
            raise ValueError(f"ComplexLinear: units must be >= 1, got {units}")
        self.units = units
        self.a = nn.Parameter(torch.empty(units, units))
        self.b = nn.Parameter(torch.empty(units, units))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """The official init: a real nn.Linear draw U(-1/sqrt(2u), 1/sqrt(2u)) projected onto the block form."""
        n = 2 * self.units
        w = torch.empty(n, n).uniform_(-1 / math.sqrt(n), 1 / math.sqrt(n))
        self.a.copy_(0.5 * (w[0::2, 0::2] + w[1::2, 1::2]))
        self.b.copy_(0.5 * (w[0::2, 1::2] - w[1::2, 0::2]))

    @torch.no_grad()
    def identity_(self) -> ComplexLinear:
        self.a.copy_(torch.eye(self.units))
        self.b.zero_()
        return self

    @property
    def weight(self) -> Tensor:
        """The (2u, 2u) real matrix."""
        rows = torch.stack([torch.stack([self.a, self.b], -1), torch.stack([-self.b, self.a], -1)], -2)  # (u, u, 2, 2)
        return rows.permute(0, 2, 1, 3).reshape(2 * self.units, 2 * self.units)

    def forward(self, x: Tensor) -> Tensor:
        return x @ self.weight.T


def unit_moduli(weight: Tensor) -> Tensor:
    """(u, u) moduli of the 2 x 2 blocks of a (2u, 2u) matrix: sqrt(a^2 + b^2) for a complex block
    (the block's Frobenius norm / sqrt 2, so a real matrix gets a comparable number)."""
    n = weight.shape[0] // 2
    blocks = weight.detach().reshape(n, 2, n, 2)  # [i, r, j, c]
    return blocks.square().sum(dim=(1, 3)).div(2).sqrt()


def permutation_mass(moduli: Tensor) -> float:
    """Share of ``sum |W_ij|`` on the best permutation of the units (1 for a permutation matrix,
    1/u for a uniform one): our number for disentanglement (spec section 6a; not the thesis's).

    Example:
        >>> permutation_mass(torch.tensor([[0.0, 2.0], [1.0, 0.0]]))
        1.0
    """
    n = moduli.shape[0]
    total = float(moduli.sum())
    if total == 0:
        return 0.0
    best = max(sum(float(moduli[i, p[i]]) for i in range(n)) for p in itertools.permutations(range(n)))
    return best / total


def moon_loss(pred: Tensor, target: Tensor, clip: float = 0.5) -> Tensor:
    """``mean(clip(pred - target, -clip, clip)^2)``: the official clipped loss, which stops the
    optimiser chasing errors while the memories are still nearly empty (thesis App. B.1)."""
    return (pred - target).clamp(-clip, clip).square().mean()


class MoonMemory(nn.Module):
    """The 54-parameter three-moons Memory Mosaic.

    .. math::
        \\hat x_{t+1} = W_z\\, \\mathrm{concat}_h \\sum_{s<t} \\mathrm{softmax}_s(\\beta\\, k_t^{(h)} \\cdot k_s^{(h)})\\, v_s^{(h)},
        \\quad k_t = W_\\varphi x_t, \\; v_s = W_\\psi x_{s+1}

    Args:
        num_heads: 1 (one 6-d memory) or 3 (three 2-d memories, one per complex unit).
        beta: fixed kernel bandwidth (official ``attn_scale`` 50).
        complex: complex-structured maps (:class:`ComplexLinear`, the official setting) or
            plain 6 x 6 real matrices (108 parameters).

    Shapes:
        x: (B, T, 6) -> predictions of x_{t+1}: (B, T, 6); row 0 is 0 (nothing stored yet).

    Example:
        >>> model = MoonMemory(num_heads=3)
        >>> model(torch.randn(2, 10, 6)).shape, sum(p.numel() for p in model.parameters())
        (torch.Size([2, 10, 6]), 54)
    """

    dim = 6

    def __init__(self, num_heads: int = 3, beta: float = 50.0, *, complex: bool = True) -> None:
        super().__init__()
        if num_heads not in (1, 3):
            raise ValueError(f"MoonMemory: num_heads must be 1 or 3 (6 = 3 complex units), got {num_heads}")
        if beta <= 0:
            raise ValueError(f"MoonMemory: beta must be > 0, got {beta}")
        self.num_heads = num_heads
        self.beta = float(beta)
        make = (lambda: ComplexLinear(3)) if complex else (lambda: nn.Linear(6, 6, bias=False))
        self.key, self.value, self.out = make(), make(), make()

    @torch.no_grad()
    def identity_(self) -> MoonMemory:
        """Set W_phi = W_psi = W_z = I (the analytic solution)."""
        for layer in (self.key, self.value, self.out):
            if isinstance(layer, ComplexLinear):
                layer.identity_()
            else:
                layer.weight.copy_(torch.eye(6))
        return self

    def _heads(self, x: Tensor) -> Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.num_heads, self.dim // self.num_heads).transpose(1, 2)  # (B, H, T, h)

    def _merge(self, y: Tensor) -> Tensor:
        B, H, T, h = y.shape
        return self.out(y.transpose(1, 2).reshape(B, T, H * h))  # (B, T, 6)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[-1] != self.dim or x.shape[1] == 0:
            raise ValueError(f"MoonMemory: x must be (B, T >= 1, 6), got shape {tuple(x.shape)}")
        keys = self._heads(self.key(x))  # (B, H, T, h)
        values = self._heads(self.value(x[:, 1:]))  # (B, H, T-1, h): v_s = W_psi x_{s+1}; v_{T-1} is never read
        return self._merge(past_attention(keys, keys[:, :, :-1], values, scale=self.beta))

    def weight_moduli(self) -> dict[str, Tensor]:
        """(3, 3) unit moduli of W_phi, W_psi, W_z (thesis Fig. B.1)."""
        return {name: unit_moduli(layer.weight) for name, layer in (("key", self.key), ("value", self.value), ("out", self.out))}


@torch.no_grad()
def rollout_error(model: MoonMemory, x: Tensor, context_lengths: list[int], steps: int = 25) -> Tensor:
    """Mean |x_hat - x| of ``steps``-step autoregressive generation after each context length.

    For a context length c the model reads x_0..x_{c-1}, predicts x_c, feeds its prediction
    back as the next input, and so on for ``steps`` steps; the prediction of x_{c+j} is
    compared with x_{c+j} (the official ``plotctx`` compares it with x_{c+j-1}, an off-by-one
    that adds an error floor: spec trap 8). The averages run over sequences, steps and the 6
    coordinates. The cache is exact: step 0 equals ``model(x[:, :c])[:, c - 1]``.

    Args:
        model: a :class:`MoonMemory`.
        x: (B, T, 6) true sequences with T >= max(context_lengths) + steps.
        context_lengths: each c >= 1.
        steps: generated steps per context (25 in the thesis).

    Returns:
        (len(context_lengths),) mean absolute errors.
    """
    if not context_lengths or min(context_lengths) < 1 or steps < 1:
        raise ValueError(f"rollout_error: need context lengths >= 1 and steps >= 1, got {context_lengths}, {steps}")
    if max(context_lengths) + steps > x.shape[1]:
        raise ValueError(f"rollout_error: sequences of {x.shape[1]} steps are too short for context {max(context_lengths)} + {steps} steps")
    all_keys = model._heads(model.key(x))  # (B, H, T, h)
    all_values = model._heads(model.value(x[:, 1:]))  # (B, H, T-1, h)
    errors = []
    for c in context_lengths:
        keys, values = all_keys[:, :, :c], all_values[:, :, : c - 1]  # k_0..k_{c-1}, v_0..v_{c-2}
        preds = []
        for _ in range(steps):
            y = past_attention(keys[:, :, -1:], keys[:, :, :-1], values, scale=model.beta)  # (B, H, 1, h)
            pred = model._merge(y)  # (B, 1, 6): the prediction of the next input
            preds.append(pred)
            keys = torch.cat([keys, model._heads(model.key(pred))], dim=2)
            values = torch.cat([values, model._heads(model.value(pred))], dim=2)  # v of the position just read
        errors.append((torch.cat(preds, dim=1) - x[:, c : c + steps]).abs().mean())
    return torch.stack(errors)
