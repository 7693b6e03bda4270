"""Memory Mosaics v2 key pieces (thesis chapter 4; no v2 code is released): gated time-variant
leaky keys (Eq. 4.4) and the adaptive kernel bandwidth (Eq. 4.2).

.. math::
    \\bar k_t = g_t \\tilde k_t + \\lambda_t \\bar k_{t-1}, \\quad g_t = e^{W_g x_t}, \\quad
    \\lambda_t = e^{-|W_\\lambda x_t|}, \\quad k_t = \\bar k_t / \\|\\bar k_t\\|
    \\qquad\\qquad \\beta(n) = \\beta_1 n^{\\alpha} + \\beta_0

The thesis gives no parametrisation or initialisation; the choices here are ours and say so.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hetmem.models.mosaics._checks import check_heads
from hetmem.models.mosaics.extractors import NORM_EPS, _heads
from hetmem.models.mosaics.leaky import LEAKY_MODES, LeakyMode

__all__ = ["AdaptiveBandwidth", "GatedLeakyKey", "gated_leaky_average"]


def _decay_matrix(log_decay: Tensor) -> Tensor:
    """(..., C, C) matrix exp(L_i - L_j) for j <= i, L the inclusive cumulative sum of the
    log-decays (..., C): the product of lambda over (j, i]. Masked before exp (L_i - L_j > 0 above)."""
    cum = log_decay.cumsum(-1)  # (..., C)
    diff = cum[..., :, None] - cum[..., None, :]  # (..., C, C)
    causal = torch.ones(diff.shape[-2:], dtype=torch.bool, device=diff.device).tril()
    return torch.where(causal, diff.masked_fill(~causal, 0.0).exp(), torch.zeros((), dtype=diff.dtype, device=diff.device))


def _chunked(x: Tensor, log_decay: Tensor, chunk: int) -> Tensor:
    B, H, T, h = x.shape
    C = min(chunk, T)
    N = -(-T // C)
    pad = N * C - T
    xc = F.pad(x, (0, 0, 0, pad)).view(B, H, N, C, h)  # (B, H, N, C, h)
    lc = F.pad(log_decay, (0, pad)).view(B, H, N, C)  # (B, H, N, C)
    local = _decay_matrix(lc) @ xc  # (B, H, N, C, C) @ (B, H, N, C, h) -> (B, H, N, C, h)
    if N == 1:
        return local.view(B, H, C, h)[:, :, :T]
    cum = lc.cumsum(-1)  # (B, H, N, C)
    carried = _chunked(local[:, :, :, -1], cum[..., -1], chunk)  # (B, H, N, h): state at each chunk's end
    before = F.pad(carried[:, :, :-1], (0, 0, 1, 0))  # (B, H, N, h): state entering chunk n
    out = local + cum.exp()[..., None] * before[:, :, :, None]  # (B, H, N, C, h)
    return out.reshape(B, H, N * C, h)[:, :, :T]


def gated_leaky_average(
    x: Tensor,
    log_decay: Tensor,
    gate: Tensor | None = None,
    *,
    initial: Tensor | None = None,
    mode: LeakyMode = "chunked",
    chunk: int = 16,
) -> Tensor:
    """Time-variant leaky sum ``y_t = g_t x_t + lambda_t y_{t-1}`` (the linear recurrence of Eq. 4.4).

    Args:
        x: (B, H, T, h) inputs.
        log_decay: (B, H, T) log lambda_t <= 0.
        gate: optional (B, H, T) gates g_t (default 1).
        initial: optional (B, H, h) state before the first row.
        mode: ``"chunked"`` (per-chunk matrices, chunk ends carried recursively),
            ``"matrix"`` (one (B, H, T, T) matrix per sequence) or ``"recurrent"`` (a loop).
        chunk: chunk length.

    Returns:
        (B, H, T, h).

    Example:
        >>> y = gated_leaky_average(torch.ones(1, 1, 3, 1), torch.full((1, 1, 3), -math.log(2)))
        >>> y.flatten().tolist()
        [1.0, 1.5, 1.75]
    """
    if x.dim() != 4 or log_decay.shape != x.shape[:3] or (gate is not None and gate.shape != x.shape[:3]):
        raise ValueError(f"gated_leaky_average: need x (B, H, T, h) and log_decay/gate (B, H, T), got {tuple(x.shape)}, {tuple(log_decay.shape)}")
    if mode not in LEAKY_MODES:
        raise ValueError(f"gated_leaky_average: mode must be one of {LEAKY_MODES}, got {mode!r}")
    inputs = x if gate is None else gate[..., None] * x
    if x.shape[2] == 1:  # one step (cached decoding): the sum is the gated input itself
        out = inputs
    elif mode == "matrix":
        out = _decay_matrix(log_decay) @ inputs  # (B, H, T, T) @ (B, H, T, h)
    elif mode == "chunked":
        out = _chunked(inputs, log_decay, chunk)
    else:
        state, rows = torch.zeros_like(x[:, :, 0]), []
        for t in range(x.shape[2]):
            state = inputs[:, :, t] + log_decay[:, :, t, None].exp() * state
            rows.append(state)
        out = torch.stack(rows, dim=2)
    if initial is not None:
        out = out + log_decay.cumsum(-1).exp()[..., None] * initial[:, :, None]
    return out


class GatedLeakyKey(nn.Module):
    """v2 keys: gated, time-variant leaky average of W_k x, then L2 normalisation (Eq. 4.4).

    One gate g_t = exp(W_g x_t) and one decay lambda_t = exp(-|W_lambda x_t|) per head and step.
    Our init (the thesis gives none): W_g, W_lambda std 0.02, gate bias 0 (g ~ 1) and decay
    bias linspace(0.5, 5, H) (lambda ~ the v1 initial decays); keys carry no scale, the
    bandwidth (:class:`AdaptiveBandwidth`) sets the kernel width.

    Shapes:
        x: (B, T, d) -> keys (B, H, T, h) of unit norm, and the state (B, H, h).

    Example:
        >>> keys, state = GatedLeakyKey(8, 2)(torch.randn(3, 5, 8))
        >>> keys.shape, bool(torch.allclose(keys.norm(dim=-1), torch.ones(3, 2, 5)))
        (torch.Size([3, 2, 5, 4]), True)
    """

    def __init__(self, dim: int, num_heads: int, *, bias: bool = False, leaky_mode: LeakyMode = "chunked", leaky_chunk: int = 16) -> None:
        super().__init__()
        check_heads("GatedLeakyKey", dim, num_heads)
        self.num_heads = num_heads
        self.leaky_mode = leaky_mode
        self.leaky_chunk = leaky_chunk
        self.W_k = nn.Linear(dim, dim, bias=bias)
        self.W_g = nn.Linear(dim, num_heads)
        self.W_lambda = nn.Linear(dim, num_heads)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        nn.init.normal_(self.W_k.weight, std=1 / math.sqrt(self.W_k.in_features))
        for layer in (self.W_g, self.W_lambda):
            nn.init.normal_(layer.weight, std=0.02)
        self.W_g.bias.zero_()
        self.W_lambda.bias.copy_(torch.linspace(0.5, 5.0, self.num_heads))

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        raw = _heads(self.W_k(x), self.num_heads)  # (B, H, T, h)
        gate = self.W_g(x).transpose(1, 2).exp()  # (B, H, T)
        log_decay = -self.W_lambda(x).transpose(1, 2).abs()  # (B, H, T)
        summed = gated_leaky_average(raw, log_decay, gate, initial=state, mode=self.leaky_mode, chunk=self.leaky_chunk)
        return summed / (summed.norm(dim=-1, keepdim=True) + NORM_EPS), summed[:, :, -1]


class AdaptiveBandwidth(nn.Module):
    """Per-head kernel bandwidth growing with the number n of pairs a query reads (Eq. 4.2).

    ``beta(n) = beta_1 n^alpha + beta_0`` with beta_0 = softplus(p_0) >= 0, beta_1 = softplus(p_1)
    > 0 and alpha = sigmoid(p_alpha) in (0, 1) (the spec's suggested parametrisation). Our init:
    beta_0 = beta_1 = 1, alpha = 0.5. Multiply the queries by beta (scores beta k_t . k_s).

    A query that reads nothing (n = 0) gets beta(1): its output is zero anyway, and n^alpha at
    n = 0 would give a NaN gradient for alpha (0 * log 0).

    Shapes:
        counts: (..., T) pairs readable per query -> (..., H, T).

    Example:
        >>> beta = AdaptiveBandwidth(2)
        >>> beta(torch.tensor([0.0, 1.0, 4.0]))[0].tolist()
        [2.0, 2.0, 3.0]
    """

    def __init__(self, num_heads: int) -> None:
        super().__init__()
        if num_heads < 1:
            raise ValueError(f"AdaptiveBandwidth: num_heads must be >= 1, got {num_heads}")
        self.p0 = nn.Parameter(torch.empty(num_heads))
        self.p1 = nn.Parameter(torch.empty(num_heads))
        self.p_alpha = nn.Parameter(torch.empty(num_heads))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        inverse_softplus_one = math.log(math.e - 1)
        self.p0.fill_(inverse_softplus_one)
        self.p1.fill_(inverse_softplus_one)
        self.p_alpha.zero_()

    def forward(self, counts: Tensor) -> Tensor:
        n = counts.to(self.p0.dtype).clamp(min=1).unsqueeze(-2)  # (..., 1, T)
        beta1, beta0 = F.softplus(self.p1)[:, None], F.softplus(self.p0)[:, None]  # (H, 1)
        return beta1 * n.pow(torch.sigmoid(self.p_alpha)[:, None]) + beta0  # (..., H, T)
