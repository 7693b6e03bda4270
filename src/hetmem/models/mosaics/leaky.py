"""The leaky (exponentially decaying) causal average behind Memory Mosaic keys.

.. math::
    \\bar k_t = \\sum_{s \\le t} \\lambda^{t-s} \\tilde k_s = \\tilde k_t + \\lambda \\bar k_{t-1},
    \\qquad \\lambda = e^{-b}, \\; b \\ge 0 \\text{ per head}

Three exact ways to compute it, all tested equal:

- ``"chunked"`` (default): the matrix form below inside chunks of C steps, and the chunks'
  end states carried forward by the same leaky average over chunks (decay C b, applied
  recursively): O(T C h) per head, no Python loop over T. Measured on a 2-core CPU (1 thread,
  fwd+bwd, H = 4, h = 32): 2.9 ms vs 15 ms for the matrix at B = 8, T = 256 and 3.4 ms vs
  84 ms at B = 2, T = 1024; the matrix's (H, T, T) elementwise work and its gradient dominate.
- ``"matrix"``: one batched matmul with the (H, T, T) lower-triangular matrix
  ``exp(-b (t - s))`` (the official code's form; O(T^2 h) per head).
- ``"recurrent"``: the recurrence step by step (a loop over T). The reference, and what the
  cached decoder does one token at a time.

Both matrices are built with the exponent masked *before* ``exp`` (spec trap 13): above the
diagonal ``exp(+b (s - t))`` overflows to inf and masking afterwards gives ``0 * inf = NaN``
gradients for the decay ``b``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

__all__ = ["LEAKY_MODES", "LeakyMode", "leaky_average", "leaky_matrix"]

LeakyMode = Literal["chunked", "matrix", "recurrent"]
LEAKY_MODES: tuple[str, ...] = ("chunked", "matrix", "recurrent")


def leaky_matrix(decay: Tensor, size: int) -> Tensor:
    """The (H, T, T) matrix ``M[h, t, s] = exp(-decay[h] (t - s))`` for s <= t, else 0.

    Args:
        decay: per-head decay rates b >= 0, shape (H,).
        size: T.

    Example:
        >>> leaky_matrix(torch.tensor([0.0, 1.0]), 3)[1]  # lambda = exp(-1)
        tensor([[1.0000, 0.0000, 0.0000],
                [0.3679, 1.0000, 0.0000],
                [0.1353, 0.3679, 1.0000]])
    """
    steps = torch.arange(size, device=decay.device, dtype=decay.dtype)
    dist = steps[:, None] - steps[None, :]  # (T, T): t - s
    exponent = -decay[:, None, None] * dist.clamp(min=0)  # (H, T, T), 0 above the diagonal: never +inf
    return torch.where(dist >= 0, exponent.exp(), torch.zeros((), dtype=decay.dtype, device=decay.device))


def _initial_term(initial: Tensor, decay: Tensor, T: int) -> Tensor:
    """``lambda^(t+1) * initial`` for t < T: what a state carried in from before the chunk adds."""
    steps = torch.arange(1, T + 1, device=decay.device, dtype=decay.dtype)
    powers = torch.exp(-decay[:, None] * steps)  # (H, T)
    return powers[None, :, :, None] * initial[:, :, None, :]  # (B, H, T, h)


def _per_head_matmul(m: Tensor, x: Tensor) -> Tensor:
    """``m @ x`` for m (H, T, T) and x (B, H, T, h) as ONE (H)-batched matmul: broadcasting m
    over B would make autograd build a (B, H, T, T) gradient for m and sum it (10x slower)."""
    B, H, T, h = x.shape
    folded = x.permute(1, 2, 0, 3).reshape(H, T, B * h)  # (H, T, B*h)
    return (m @ folded).view(H, T, B, h).permute(2, 0, 1, 3)  # (B, H, T, h)


def _matrix(x: Tensor, decay: Tensor) -> Tensor:
    return _per_head_matmul(leaky_matrix(decay, x.shape[2]), x)


def _chunked(x: Tensor, decay: Tensor, chunk: int) -> Tensor:
    B, H, T, h = x.shape
    C = min(chunk, T)
    N = -(-T // C)  # chunks
    padded = torch.nn.functional.pad(x, (0, 0, 0, N * C - T))  # (B, H, N*C, h)
    folded = padded.view(B, H, N, C, h).transpose(2, 3).reshape(B, H, C, N * h)  # (B, H, C, N*h)
    local = _per_head_matmul(leaky_matrix(decay, C), folded)  # (B, H, C, N*h)
    local = local.reshape(B, H, C, N, h).transpose(2, 3)  # (B, H, N, C, h)
    if N == 1:
        return local.reshape(B, H, C, h)[:, :, :T]
    ends = local[:, :, :, -1]  # (B, H, N, h): each chunk's own sum at its last step
    carried = _chunked(ends, decay * C, chunk)  # (B, H, N, h): the full state at the end of chunk n (a leaky average over chunks)
    before = torch.nn.functional.pad(carried[:, :, :-1], (0, 0, 1, 0))  # (B, H, N, h): state entering chunk n
    steps = torch.arange(1, C + 1, device=x.device, dtype=x.dtype)
    powers = torch.exp(-decay[:, None] * steps)  # (H, C): lambda^(i+1)
    out = local + powers[None, :, None, :, None] * before[:, :, :, None, :]  # (B, H, N, C, h)
    return out.reshape(B, H, N * C, h)[:, :, :T]


def _recurrent(x: Tensor, decay: Tensor) -> Tensor:
    lam = torch.exp(-decay)[None, :, None]  # (1, H, 1)
    state = torch.zeros_like(x[:, :, 0])  # (B, H, h)
    out = []
    for t in range(x.shape[2]):
        state = x[:, :, t] + lam * state
        out.append(state)
    return torch.stack(out, dim=2)  # (B, H, T, h)


def leaky_average(
    x: Tensor,
    decay: Tensor,
    *,
    initial: Tensor | None = None,
    mode: LeakyMode = "chunked",
    chunk: int = 16,
) -> Tensor:
    """Causal leaky sum ``y_t = sum_{s<=t} exp(-decay (t - s)) x_s`` per head (unnormalised).

    Args:
        x: (B, H, T, h) per-head inputs.
        decay: (H,) decay rates b >= 0 (lambda = exp(-b)).
        initial: optional (B, H, h) state carried in from positions before ``x`` (the value of
            ``y`` one step before the first row); it adds ``lambda^(t+1) initial`` to row t.
        mode: ``"chunked"``, ``"matrix"`` or ``"recurrent"`` (see the module docstring).
        chunk: chunk length C of the chunked mode (T <= C is the matrix form).

    Returns:
        (B, H, T, h).

    Example:
        >>> x = torch.ones(1, 1, 3, 1)
        >>> leaky_average(x, torch.tensor([0.0])).flatten().tolist()
        [1.0, 2.0, 3.0]
    """
    if x.dim() != 4:
        raise ValueError(f"leaky_average: x must be (B, H, T, h), got shape {tuple(x.shape)}")
    if decay.shape != (x.shape[1],):
        raise ValueError(f"leaky_average: decay must have shape ({x.shape[1]},) (one per head), got {tuple(decay.shape)}")
    if mode not in LEAKY_MODES:
        raise ValueError(f"leaky_average: mode must be one of {LEAKY_MODES}, got {mode!r}")
    if chunk < 1:
        raise ValueError(f"leaky_average: chunk must be >= 1, got {chunk}")
    T = x.shape[2]
    if T == 0:
        return x
    decay = decay.to(x.dtype)
    if T == 1:  # one step (cached decoding): the sum is the input itself
        out = x
    elif mode == "matrix":
        out = _matrix(x, decay)
    elif mode == "chunked":
        out = _chunked(x, decay, chunk)
    else:
        out = _recurrent(x, decay)
    if initial is not None:
        out = out + _initial_term(initial.to(x.dtype), decay, T)
    return out
