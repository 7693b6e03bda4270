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
        init: ``"normal"`` (N(0, std^2), the default), ``"zeros"`` or ``"data"``. All-zero
            slots of one class receive identical gradients and stay identical to each other
            forever; the reference code starts there. ``"data"`` starts normal, then
            :meth:`seed_` copies the first rows of each class it is given into that class's
            slots (once per class; a persistent flag remembers which classes are seeded).
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
        init: Literal["normal", "zeros", "data"] = "normal",
        std: float = 0.02,
    ) -> None:
        super().__init__()
        for name, value in (("num_classes", num_classes), ("slots_per_class", slots_per_class), ("dim", dim)):
            if value <= 0:
                raise ValueError(f"ClassMemorySlots: {name} must be a positive int, got {value}")
        if init not in ("normal", "zeros", "data"):
            raise ValueError(f"ClassMemorySlots: init must be 'normal', 'zeros' or 'data', got {init!r}")
        self.num_classes = num_classes
        self.slots_per_class = slots_per_class
        self.dim = dim
        self.init = init
        self.std = std
        self.slots = nn.Parameter(torch.empty(num_classes * slots_per_class, dim))
        labels = torch.arange(num_classes).repeat_interleave(slots_per_class)  # (n * m2,)
        self.register_buffer("labels", labels, persistent=False)
        if init == "data":
            self.register_buffer("seeded", torch.zeros(num_classes, dtype=torch.bool))  # classes seeded from data
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.init == "zeros":
            nn.init.zeros_(self.slots)
        else:
            nn.init.normal_(self.slots, std=self.std)
        if self.init == "data":
            self.seeded.zero_()

    @torch.no_grad()
    def seed_(self, rows: Tensor, labels: Tensor) -> None:
        """``init="data"``: each class not seeded yet that has rows here takes them as its slots.

        A class with fewer rows than slots repeats them; the slot's ``"normal"`` start is added,
        so repeated rows do not make identical slots. Does nothing for other inits.

        Shapes:
            rows (N, dim), labels (N,).
        """
        if self.init != "data" or bool(self.seeded.all()):
            return
        m = self.slots_per_class
        for c in labels.unique().tolist():
            if self.seeded[c]:
                continue
            own = rows[labels == c]  # (N_c, dim)
            pick = own[torch.arange(m, device=own.device) % own.shape[0]]  # (m, dim)
            self.slots[c * m : (c + 1) * m] += pick.to(self.slots.dtype)
            self.seeded[c] = True

    def forward(self) -> tuple[Tensor, Tensor]:
        return self.slots, self.labels

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, slots_per_class={self.slots_per_class}, dim={self.dim}, init={self.init!r}"
