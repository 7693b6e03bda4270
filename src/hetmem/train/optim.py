"""The optimiser and learning-rate schedule of an :class:`~hetmem.train.config.OptimConfig`,
shared by the classification and sequence LightningModules."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

__all__ = ["make_optimizer", "lr_factor"]


def make_optimizer(o: Any, params: Iterable[Any]) -> torch.optim.Optimizer:
    """SGD (with momentum), Adam or AdamW over ``params`` (tensors or param-group dicts; a group's
    own ``weight_decay`` wins over ``o.weight_decay``)."""
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    if o.name == "adamw":
        return torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
    return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)


def lr_factor(o: Any, position: float, total: float, unit: float = 1.0) -> float:
    """The multiplier of ``o.lr`` at ``position`` epochs into a run of ``total`` epochs.

    Args:
        o: an OptimConfig (``scheduler``, ``warmup_epochs``, ``step_size``, ``gamma``, ``min_lr``).
        position: epochs finished before this update (0-based; fractional for a per-step schedule).
        total: epochs in the run.
        unit: the length of one update in epochs (1 for a per-epoch schedule, 1/steps for a
            per-step one): warm-up reaches the full rate at its last update.

    A linear warm-up over ``warmup_epochs``, then ``cosine`` or ``linear`` decay to ``min_lr`` at
    the end, ``step`` decay by ``gamma`` every ``step_size`` epochs, or a constant rate.

    Example:
        >>> from types import SimpleNamespace
        >>> o = SimpleNamespace(lr=1.0, min_lr=0.1, scheduler="linear", warmup_epochs=0, step_size=1, gamma=1.0)
        >>> [round(lr_factor(o, p, 10), 2) for p in (0, 5, 10)]
        [1.0, 0.55, 0.1]
    """
    if position < o.warmup_epochs:
        return (position + unit) / o.warmup_epochs
    t = min(1.0, (position - o.warmup_epochs) / max(unit, total - o.warmup_epochs))
    floor = getattr(o, "min_lr", 0.0) / o.lr
    if o.scheduler == "cosine":
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))
    if o.scheduler == "linear":
        return floor + (1 - floor) * (1 - t)
    if o.scheduler == "step":
        return o.gamma ** ((position - o.warmup_epochs) // o.step_size)
    return 1.0
