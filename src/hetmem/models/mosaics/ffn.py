"""The SwiGLU feed-forward network (Shazeer 2020, arXiv 2002.05202): the persistent memory of
Memory Mosaics v2 (thesis section 4.2.1) and the MLP of the Llama baseline."""

from __future__ import annotations

import torch  # noqa: F401  (doctest)
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SwiGLU"]


class SwiGLU(nn.Module):
    """A SwiGLU feed-forward network, ``W_2 (silu(W_1 x) * W_3 x)``.

    Example:
        >>> SwiGLU(8, 20)(torch.randn(2, 3, 8)).shape
        torch.Size([2, 3, 8])
    """

    def __init__(self, dim: int, hidden: int, *, bias: bool = False) -> None:
        super().__init__()
        if dim < 1 or hidden < 1:
            raise ValueError(f"SwiGLU: dim and hidden must be >= 1, got {dim}, {hidden}")
        self.w1 = nn.Linear(dim, hidden, bias=bias)
        self.w3 = nn.Linear(dim, hidden, bias=bias)
        self.w2 = nn.Linear(hidden, dim, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))

