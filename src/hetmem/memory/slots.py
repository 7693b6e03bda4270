"""Learnable, class-specific memory rows (HMA's synthetic memory)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

__all__ = ["ClassMemorySlots"]


class ClassMemorySlots(nn.Module):
    """``slots_per_class`` learnable rows for each of ``num_classes`` classes.

    The rows are one parameter of shape (num_classes * slots_per_class, dim), grouped by
    class: rows ``[c * slots_per_class, (c + 1) * slots_per_class)`` belong to class ``c``.
    Their class labels are a non-persistent buffer (derived from the sizes, so it follows
    ``.to()`` and is rebuilt on load rather than stored).

    Args:
        num_classes: number of classes n.
        slots_per_class: rows per class m2.
        dim: width of each row.
        init: ``"normal"`` (N(0, std^2), the default) or ``"zeros"``. All-zero slots of one
            class receive identical gradients and stay identical to each other forever; the
            reference code starts there, we default to a small Gaussian.
        std: standard deviation of the ``"normal"`` init.

    Shapes:
        - ``forward()``: returns rows (n * m2, dim) and labels (n * m2,).

    Example:
        >>> slots = ClassMemorySlots(num_classes=3, slots_per_class=2, dim=4)
        >>> rows, labels = slots()
        >>> rows.shape, labels.tolist()
        (torch.Size([6, 4]), [0, 0, 1, 1, 2, 2])
    """

    def __init__(
        self,
        num_classes: int,
        slots_per_class: int,
        dim: int,
        *,
        init: Literal["normal", "zeros"] = "normal",
        std: float = 0.02,
    ) -> None:
        super().__init__()
        for name, value in (("num_classes", num_classes), ("slots_per_class", slots_per_class), ("dim", dim)):
            if value <= 0:
                raise ValueError(f"ClassMemorySlots: {name} must be a positive int, got {value}")
        if init not in ("normal", "zeros"):
            raise ValueError(f"ClassMemorySlots: init must be 'normal' or 'zeros', got {init!r}")
        self.num_classes = num_classes
        self.slots_per_class = slots_per_class
        self.dim = dim
        self.init = init
        self.std = std
        self.slots = nn.Parameter(torch.empty(num_classes * slots_per_class, dim))
        labels = torch.arange(num_classes).repeat_interleave(slots_per_class)  # (n * m2,)
        self.register_buffer("labels", labels, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.init == "zeros":
            nn.init.zeros_(self.slots)
        else:
            nn.init.normal_(self.slots, std=self.std)

    def forward(self) -> tuple[Tensor, Tensor]:
        return self.slots, self.labels

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, slots_per_class={self.slots_per_class}, dim={self.dim}, init={self.init!r}"
