"""Per-step schedules of MaSSL's training (DINO's recipe): pure functions of the step.

Steps count optimiser steps from 0; a run of ``total_steps`` steps takes steps
0 .. total_steps - 1, and every schedule reaches its final value exactly at the last one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "MaSSLSchedule",
    "ScheduleValues",
    "cosine_schedule",
    "learning_rate",
    "teacher_momentum",
    "teacher_temperature",
    "weight_decay",
]


def cosine_schedule(
    step: float,
    total_steps: int,
    start: float,
    end: float,
    *,
    warmup_steps: int = 0,
    warmup_start: float = 0.0,
) -> float:
    """Linear warm-up from ``warmup_start`` to ``start``, then a half cosine from ``start`` to ``end``.

    .. math::
        v(t) = e + \\tfrac12 (s - e) \\left(1 + \\cos \\pi \\frac{t - w}{T - 1 - w}\\right), \\quad w \\le t \\le T - 1

    The value is ``warmup_start`` at step 0, ``start`` at step ``warmup_steps`` and ``end``
    at the last step ``total_steps - 1`` (and after it).

    Example:
        >>> [round(cosine_schedule(t, 5, 1.0, 0.0), 3) for t in range(5)]
        [1.0, 0.854, 0.5, 0.146, 0.0]
        >>> cosine_schedule(1, 10, 2.0, 0.0, warmup_steps=2)
        1.0
    """
    if total_steps < 1:
        raise ValueError(f"cosine_schedule: total_steps must be >= 1, got {total_steps}")
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"cosine_schedule: warmup_steps must be in [0, total_steps), got {warmup_steps} of {total_steps}")
    if step < warmup_steps:
        return warmup_start + (start - warmup_start) * step / warmup_steps
    span = total_steps - 1 - warmup_steps
    progress = 1.0 if span <= 0 else min((step - warmup_steps) / span, 1.0)
    return end + 0.5 * (start - end) * (1.0 + math.cos(math.pi * progress))


def learning_rate(step: float, total_steps: int, *, base_lr: float, min_lr: float = 1e-6, warmup_steps: int = 0) -> float:
    """Linear warm-up from 0 to ``base_lr`` over ``warmup_steps``, then cosine to ``min_lr``."""
    return cosine_schedule(step, total_steps, base_lr, min_lr, warmup_steps=warmup_steps, warmup_start=0.0)


def weight_decay(step: float, total_steps: int, *, start: float = 0.04, end: float = 0.4) -> float:
    """Cosine from ``start`` to ``end`` (rising: a stronger pull to zero late in training)."""
    return cosine_schedule(step, total_steps, start, end)


def teacher_momentum(step: float, total_steps: int, *, base: float = 0.996) -> float:
    """EMA momentum of the teacher: cosine from ``base`` to 1 (the teacher freezes at the end)."""
    return cosine_schedule(step, total_steps, base, 1.0)


def teacher_temperature(step: float, warmup_steps: int, *, start: float = 0.04, end: float = 0.07) -> float:
    """tau_t: linear from ``start`` at step 0 to ``end`` at ``warmup_steps``, then constant.

    Example:
        >>> [round(teacher_temperature(t, 3), 3) for t in (0, 1, 3, 100)]
        [0.04, 0.05, 0.07, 0.07]
    """
    if warmup_steps <= 0 or step >= warmup_steps:
        return end
    return start + (end - start) * step / warmup_steps


class ScheduleValues(NamedTuple):
    lr: float
    weight_decay: float
    momentum: float
    teacher_temp: float


@dataclass(frozen=True)
class MaSSLSchedule:
    """All four schedules of a run, in optimiser steps.

    Epoch counts become steps here (``round(epochs * steps_per_epoch)``). The learning-rate
    warm-up is capped below ``total_steps`` (a short CPU run whose warm-up is longer than the
    run still gets its cosine phase); the teacher temperature warms up at its own pace even
    if that outlasts the run.

    Example:
        >>> sched = MaSSLSchedule.from_epochs(steps_per_epoch=10, max_epochs=5, base_lr=1e-3, warmup_epochs=1,
        ...                                   teacher_temp_warmup_epochs=2)
        >>> sched.at(0).lr, sched.at(10).lr, sched.at(49).momentum, sched.at(20).teacher_temp
        (0.0, 0.001, 1.0, 0.07)
    """

    total_steps: int
    base_lr: float
    min_lr: float = 1e-6
    warmup_steps: int = 0
    weight_decay_start: float = 0.04
    weight_decay_end: float = 0.4
    momentum_base: float = 0.996
    teacher_temp_start: float = 0.04
    teacher_temp_end: float = 0.07
    teacher_temp_warmup_steps: int = 0

    def __post_init__(self) -> None:
        if self.total_steps < 1:
            raise ValueError(f"MaSSLSchedule: total_steps must be >= 1, got {self.total_steps}")
        if not 0 <= self.warmup_steps < self.total_steps:
            raise ValueError(f"MaSSLSchedule: warmup_steps must be in [0, total_steps), got {self.warmup_steps}")

    @classmethod
    def from_epochs(
        cls,
        *,
        steps_per_epoch: int,
        max_epochs: int,
        warmup_epochs: float = 0.0,
        teacher_temp_warmup_epochs: float = 0.0,
        **values: float,
    ) -> MaSSLSchedule:
        if steps_per_epoch < 1 or max_epochs < 1:
            raise ValueError(
                f"MaSSLSchedule: steps_per_epoch and max_epochs must be >= 1, got {steps_per_epoch}, {max_epochs}"
            )
        total = steps_per_epoch * max_epochs
        warmup = min(round(warmup_epochs * steps_per_epoch), total - 1)
        temp_warmup = round(teacher_temp_warmup_epochs * steps_per_epoch)
        return cls(total_steps=total, warmup_steps=warmup, teacher_temp_warmup_steps=temp_warmup, **values)

    def at(self, step: float) -> ScheduleValues:
        """The learning rate, weight decay, teacher momentum and teacher temperature at ``step``."""
        return ScheduleValues(
            lr=learning_rate(step, self.total_steps, base_lr=self.base_lr, min_lr=self.min_lr, warmup_steps=self.warmup_steps),
            weight_decay=weight_decay(step, self.total_steps, start=self.weight_decay_start, end=self.weight_decay_end),
            momentum=teacher_momentum(step, self.total_steps, base=self.momentum_base),
            teacher_temp=teacher_temperature(
                step, self.teacher_temp_warmup_steps, start=self.teacher_temp_start, end=self.teacher_temp_end
            ),
        )
