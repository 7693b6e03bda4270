"""An exponential-moving-average copy of a network (MoCo's key encoder, a DINO-style teacher)."""

from __future__ import annotations

import copy
from typing import Any, Literal

import torch
from torch import nn

__all__ = ["MomentumEncoder"]

BufferMode = Literal["ema", "copy", "keep"]


class MomentumEncoder(nn.Module):
    """A frozen copy of ``module`` that follows it by exponential moving average.

    .. math::
        \\theta_m \\leftarrow \\lambda \\theta_m + (1 - \\lambda) \\theta

    The copy never receives gradients (``requires_grad=False``) and always runs in eval mode
    (no dropout noise, BatchNorm uses its running statistics), whatever mode its parent is in.
    Floating-point buffers (BatchNorm running mean and variance) follow ``buffers``:
    ``"ema"`` averages them with the same rule, ``"copy"`` copies them from the source,
    ``"keep"`` leaves them as they were when the copy was made. Integer buffers
    (``num_batches_tracked``) are copied under ``"ema"`` and ``"copy"``.

    Args:
        module: the network to follow; it is deep-copied, not shared.
        momentum: the EMA coefficient lambda in [0, 1]; 0.999 as in MoCo.
        buffers: how floating-point buffers are updated, see above.

    Example:
        >>> net = nn.Linear(3, 2)
        >>> ema = MomentumEncoder(net, momentum=0.9)
        >>> ema.update_(net)
        >>> ema(torch.zeros(1, 3)).shape
        torch.Size([1, 2])
    """

    def __init__(self, module: nn.Module, *, momentum: float = 0.999, buffers: BufferMode = "ema") -> None:
        super().__init__()
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"MomentumEncoder: momentum must be in [0, 1], got {momentum}")
        if buffers not in ("ema", "copy", "keep"):
            raise ValueError(f"MomentumEncoder: buffers must be 'ema', 'copy' or 'keep', got {buffers!r}")
        self.momentum = momentum
        self.buffers_mode = buffers
        self.module = copy.deepcopy(module)
        self.module.requires_grad_(False)
        self.module.eval()

    def train(self, mode: bool = True) -> MomentumEncoder:
        """Stays in eval mode: ``parent.train()`` must not switch on dropout or batch statistics."""
        super().train(mode)
        self.module.eval()
        return self

    @torch.no_grad()
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    @torch.no_grad()
    def update_(self, source: nn.Module, momentum: float | None = None) -> None:
        """Moves the copy towards ``source`` (which must have the same structure), in place."""
        m = self.momentum if momentum is None else momentum
        targets = list(self.module.parameters())
        sources = [p.detach() for p in source.parameters()]
        if len(targets) != len(sources):
            raise ValueError(
                f"MomentumEncoder.update_: source has {len(sources)} parameters, the copy has {len(targets)}"
            )
        if targets:
            torch._foreach_mul_(targets, m)
            torch._foreach_add_(targets, sources, alpha=1.0 - m)
        if self.buffers_mode == "keep":
            return
        for target, src in zip(self.module.buffers(), source.buffers()):
            if self.buffers_mode == "ema" and target.is_floating_point():
                target.mul_(m).add_(src.detach(), alpha=1.0 - m)
            else:
                target.copy_(src)

    def extra_repr(self) -> str:
        return f"momentum={self.momentum}, buffers={self.buffers_mode!r}"
