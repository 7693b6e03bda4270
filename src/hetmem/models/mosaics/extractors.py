"""Key and value extractors of a Memory Mosaic memory unit (thesis Eq. 3.11, spec section 2.2).

Per-head scalars follow the official code's ``exp_param_scale``: a parameter p is stored
divided by :data:`EXP_SCALE` = 10 and multiplied by 10 where it is used, which under Adam
acts as a 10x learning rate for these scalars.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hetmem.models.mosaics._checks import check_heads
from hetmem.models.mosaics.leaky import LEAKY_MODES, LeakyMode, leaky_average

__all__ = ["EXP_SCALE", "NORM_EPS", "VALUE_KINDS", "KeyExtractor", "ValueExtractor", "scaled_l2_normalize"]

EXP_SCALE = 10.0  # scalars are stored / 10 and used * 10 (official code: exp_param_scale)
NORM_EPS = 1e-10  # L2-normalisation epsilon (nanoMosaics; the Library has none and NaNs on zero vectors)
VALUE_KINDS: tuple[str, ...] = ("mix", "conv2")


def scaled_l2_normalize(x: Tensor, scale: Tensor) -> Tensor:
    """``scale[h] * x / (||x|| + 1e-10)`` along the last dim of (B, H, T, h), one big multiply."""
    return x * (scale[:, None, None] / (x.norm(dim=-1, keepdim=True) + NORM_EPS))


def _heads(x: Tensor, num_heads: int) -> Tensor:
    B, T, C = x.shape
    return x.view(B, T, num_heads, C // num_heads).transpose(1, 2)  # (B, H, T, h)


class KeyExtractor(nn.Module):
    """Leaky-average keys: ``k_t = s_k^power * Norm(sum_{s<=t} lambda^(t-s) W_k x_s)`` per head.

    Args:
        dim: model width d.
        num_heads: heads H (head width h = d / H).
        scale_power: 1 for a contextual memory (keys double as queries, so the kernel gets
            s_k^2), 2 for a persistent memory (its stored keys carry no scale).
        bias: bias in ``W_k`` (False in the official configs).
        max_log_scale: clamp of ``10 p_beta`` before ``exp`` (5: scores stay below fp16's max).
        leaky_mode, leaky_chunk: how the leaky average is computed
            (:func:`~hetmem.models.mosaics.leaky.leaky_average`).

    Parameters (spec table 2.2): ``W_k`` (d x d), ``leaky_key_beta`` p_lambda (H,) with decay
    b = 10 |p_lambda| (init linspace(0.5, 5, H) / 10, so lambda runs from 0.61 to 0.0067),
    ``kernel_beta`` p_beta (H,) with s_k = exp(min(10 p_beta, 5)) (init 1 / 10).

    Shapes:
        x: (B, T, d); state: optional (B, H, h) unnormalised leaky sum before x.
        returns keys (B, H, T, h) and the new state (B, H, h).

    Example:
        >>> keys, state = KeyExtractor(8, 2)(torch.randn(3, 5, 8))
        >>> keys.shape, state.shape
        (torch.Size([3, 2, 5, 4]), torch.Size([3, 2, 4]))
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        scale_power: int = 1,
        bias: bool = False,
        max_log_scale: float = 5.0,
        leaky_mode: LeakyMode = "chunked",
        leaky_chunk: int = 16,
    ) -> None:
        super().__init__()
        check_heads("KeyExtractor", dim, num_heads)
        if leaky_mode not in LEAKY_MODES:
            raise ValueError(f"KeyExtractor: leaky_mode must be one of {LEAKY_MODES}, got {leaky_mode!r}")
        self.num_heads = num_heads
        self.scale_power = scale_power
        self.max_log_scale = max_log_scale
        self.leaky_mode = leaky_mode
        self.leaky_chunk = leaky_chunk
        self.W_k = nn.Linear(dim, dim, bias=bias)
        self.leaky_key_beta = nn.Parameter(torch.empty(num_heads))
        self.kernel_beta = nn.Parameter(torch.empty(num_heads))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.W_k.reset_parameters()
        with torch.no_grad():
            self.leaky_key_beta.copy_(torch.linspace(0.5, 5.0, self.num_heads) / EXP_SCALE)
            self.kernel_beta.fill_(1.0 / EXP_SCALE)

    @property
    def decay(self) -> Tensor:
        """b = 10 |p_lambda| (H,); lambda = exp(-b)."""
        return self.leaky_key_beta.abs() * EXP_SCALE

    @property
    def scale(self) -> Tensor:
        """The key scale s_k^power (H,)."""
        return torch.exp(self.scale_power * torch.clamp(self.kernel_beta * EXP_SCALE, max=self.max_log_scale))

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        raw = _heads(self.W_k(x), self.num_heads)  # (B, H, T, h)
        summed = leaky_average(
            raw, self.decay, initial=state, mode=self.leaky_mode, chunk=self.leaky_chunk
        )  # (B, H, T, h)
        keys = scaled_l2_normalize(summed, self.scale)  # (B, H, T, h)
        return keys, summed[:, :, -1]

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, scale_power={self.scale_power}, leaky_mode={self.leaky_mode!r}"


class ValueExtractor(nn.Module):
    """One-step look-ahead values: ``v_t = s_v * Norm(mix(now_t, ahead_{t+1}))`` per head.

    ``kind="mix"`` (the official ``lowrlinearconv``): now = ahead = u = W_v x and
    ``v_bar_t = (1 - c) u_{t+1} + c u_t`` with one unconstrained scalar c per head, init
    U(0, 1). (The thesis writes ``u_t + lambda_psi u_{t+1}``; after the normalisation that is
    the case c = 1 / (1 + lambda_psi).) ``kind="conv2"`` (the official ``linearconv`` with
    kernel 2): now = W_0 x, ahead = W_1 x and ``v_bar_t = W_0 x_t + W_1 x_{t+1}``, a full-rank
    convolution (d^2 more parameters). Then s_v = exp(10 p_v), p_v init -0.5 / 10.

    Splitting the value into a part known at t and a part known one step later is what lets
    the cached decoder finish v_t exactly when x_{t+1} arrives.

    Args:
        dim, num_heads: as in :class:`KeyExtractor`.
        kind: ``"mix"`` or ``"conv2"``.
        bias: bias in the projection.

    Shapes:
        ``parts(x)``: x (B, T, d) -> now, ahead each (B, H, T, h);
        ``finish(now[:, :, :-1], ahead[:, :, 1:])``: -> values (B, H, T-1, h) of positions 0..T-2.

    Example:
        >>> values = ValueExtractor(8, 2)
        >>> now, ahead = values.parts(torch.randn(3, 5, 8))
        >>> values.finish(now[:, :, :-1], ahead[:, :, 1:]).shape  # the values of positions 0..3
        torch.Size([3, 2, 4, 4])
    """

    def __init__(self, dim: int, num_heads: int, *, kind: Literal["mix", "conv2"] = "mix", bias: bool = False) -> None:
        super().__init__()
        check_heads("ValueExtractor", dim, num_heads)
        if kind not in VALUE_KINDS:
            raise ValueError(f"ValueExtractor: kind must be one of {VALUE_KINDS}, got {kind!r}")
        self.num_heads = num_heads
        self.kind = kind
        self.W_v = nn.Linear(dim, dim if kind == "mix" else 2 * dim, bias=bias)
        self.coef = nn.Parameter(torch.empty(num_heads)) if kind == "mix" else None
        self.value_beta = nn.Parameter(torch.empty(num_heads))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.W_v.reset_parameters()
        with torch.no_grad():
            if self.coef is not None:
                self.coef.uniform_(0.0, 1.0)
            self.value_beta.fill_(-0.5 / EXP_SCALE)

    @property
    def scale(self) -> Tensor:
        """s_v = exp(10 p_v) (H,)."""
        return torch.exp(self.value_beta * EXP_SCALE)

    def parts(self, x: Tensor) -> tuple[Tensor, Tensor]:
        projected = self.W_v(x)  # (B, T, d) or (B, T, 2d)
        if self.coef is None:
            now, ahead = projected.chunk(2, dim=-1)  # (B, T, d) each: W_0 x, W_1 x
            return _heads(now, self.num_heads), _heads(ahead, self.num_heads)
        u = _heads(projected, self.num_heads)  # (B, H, T, h)
        return u, u

    def finish(self, now: Tensor, ahead_next: Tensor) -> Tensor:
        """Values from the parts of positions t (now) and t + 1 (ahead_next), both (B, H, T', h)."""
        if self.coef is None:
            mixed = now + ahead_next
        else:
            mixed = torch.lerp(ahead_next, now, self.coef[:, None, None])  # (1 - c) u_{t+1} + c u_t
        return scaled_l2_normalize(mixed, self.scale)

    def forward(self, x: Tensor) -> Tensor:
        """Values of every position (B, H, T, h); the last one sees a zero pad (never read)."""
        now, ahead = self.parts(x)
        return self.finish(now, F.pad(ahead[:, :, 1:], (0, 0, 0, 1)))

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, kind={self.kind!r}"
