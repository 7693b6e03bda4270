"""A step-exact training loop on in-memory tensors, shared by the rich-feature methods.

Why not Lightning here: the methods of thesis chapter 2 are defined in optimiser steps (2,000
fine-tuning steps with the learning rate divided by 10 at step 1,000, a checkpoint every 100
steps, five snapshots of one run, one epoch of head training), and the few-shot study fits
thousands of tiny classifiers; a plain loop over tensors states those schedules exactly and
costs nothing per call, where a Trainer costs about a second to set up. hetmem's
``train`` command (Lightning) stays the way to train a task's model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hetmem.errors import DivergedError

__all__ = ["Recipe", "epochs_to_steps", "fit_steps", "predict_logits", "accuracy"]


@dataclass(frozen=True)
class Recipe:
    """How a model is trained: optimiser, learning rate and its step schedule, batch size.

    Args:
        steps: optimiser steps.
        lr: learning rate.
        batch_size: rows per step (the last incomplete batch of an epoch is dropped when the
            data hold at least one full batch).
        optimizer: ``"sgd"`` (with ``momentum``) or ``"adam"``.
        momentum: SGD momentum (0 is plain SGD).
        weight_decay: L2 penalty of the optimiser.
        lr_drop_at: steps at which the learning rate is multiplied by ``gamma``.
        gamma: the factor of each drop.

    Example:
        >>> Recipe(steps=2000, lr=1e-3, batch_size=32, lr_drop_at=(1000,)).lr_at(1500)
        0.0001
    """

    steps: int
    lr: float
    batch_size: int = 64
    optimizer: Literal["sgd", "adam"] = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_drop_at: tuple[int, ...] = ()
    gamma: float = 0.1

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError(f"Recipe: steps must be an int >= 0, got {self.steps!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size <= 0:
            raise ValueError(f"Recipe: batch_size must be a positive int, got {self.batch_size!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"Recipe: lr must be a finite number > 0, got {self.lr!r}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"Recipe: optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"Recipe: momentum must be in [0, 1), got {self.momentum!r}")
        if self.weight_decay < 0:
            raise ValueError(f"Recipe: weight_decay must be >= 0, got {self.weight_decay!r}")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"Recipe: gamma must be in (0, 1], got {self.gamma!r}")
        object.__setattr__(self, "lr_drop_at", tuple(int(s) for s in self.lr_drop_at))

    def lr_at(self, step: int) -> float:
        """The learning rate of optimiser step ``step`` (0-based)."""
        return self.lr * self.gamma ** sum(step >= s for s in self.lr_drop_at)

    def make_optimizer(self, params: Iterable[Tensor]) -> torch.optim.Optimizer:
        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)


def epochs_to_steps(epochs: int, n: int, batch_size: int) -> int:
    """Optimiser steps in ``epochs`` passes over ``n`` rows: full batches only (at least one)."""
    return epochs * (n // batch_size if n >= batch_size else 1)


def _batches(n: int, batch_size: int, generator: torch.Generator) -> Iterable[Tensor]:
    """Index batches of successive random permutations of range(n), forever."""
    full = n >= batch_size
    while True:
        order = torch.randperm(n, generator=generator)
        stop = n - n % batch_size if full else n
        for start in range(0, stop, batch_size):
            yield order[start : start + batch_size]


def _cross_entropy(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(model(x), y)


def fit_steps(
    model: nn.Module,
    inputs: Tensor,
    targets: Tensor,
    recipe: Recipe,
    *,
    seed: int = 0,
    loss_fn: Callable[[nn.Module, Tensor, Tensor], Tensor] | None = None,
    params: Iterable[Tensor] | None = None,
    transform: Callable[[Tensor, torch.Generator], Tensor] | None = None,
    every: int = 0,
    callback: Callable[[int, nn.Module], None] | None = None,
) -> list[float]:
    """Trains ``model`` for ``recipe.steps`` optimiser steps on ``(inputs, targets)``.

    Args:
        model: put in training mode; its own ``train()`` decides what that means (a frozen
            backbone stays in eval mode).
        inputs: (N, ...) rows, on any device; batches move to the model's device.
        targets: (N, ...) what ``loss_fn`` compares the outputs with (labels by default).
        recipe: optimiser, learning rate schedule, batch size, steps.
        seed: seeds the batch order, the dropout masks and ``transform``'s draws; the global
            random state is left as it was.
        loss_fn: ``loss_fn(model, x, t) -> scalar``; cross-entropy of ``model(x)`` by default.
        params: the parameters to optimise (default: those of ``model`` with ``requires_grad``).
        transform: ``transform(x, generator) -> x`` applied to every training batch (augmentation).
        every: call ``callback(step, model)`` after every ``every``-th step (1-based step count).
        callback: e.g. a checkpoint or a snapshot.

    Returns:
        The loss of every step.

    Raises:
        DivergedError: the loss became NaN or Inf.
    """
    n = len(inputs)
    if n == 0 or len(targets) != n:
        raise ValueError(f"fit_steps: expected as many targets as inputs (N >= 1), got {n} inputs and {len(targets)} targets")
    if every < 0 or (every and callback is None):
        raise ValueError(f"fit_steps: every must be >= 0 and needs a callback, got every={every!r}, callback={callback!r}")
    loss_fn = loss_fn or _cross_entropy
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    if not params:
        raise ValueError("fit_steps: nothing to train (no parameter requires grad)")
    first = next(model.parameters())
    device = first.device
    optimizer = recipe.make_optimizer(params)
    generator = torch.Generator().manual_seed(seed)
    batches = _batches(n, recipe.batch_size, generator)
    model.train()
    losses: list[float] = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)  # dropout masks too: a run depends on its seed only, and leaves the global RNG as it was
        for step in range(recipe.steps):
            losses.append(_step(model, optimizer, recipe, step, inputs, targets, next(batches), device, loss_fn, transform, generator))
            if every and (step + 1) % every == 0:
                callback(step + 1, model)
    return losses


def _step(model, optimizer, recipe, step, inputs, targets, idx, device, loss_fn, transform, generator) -> float:
    for group in optimizer.param_groups:
        group["lr"] = recipe.lr_at(step)
    x = inputs[idx].to(device)
    if transform is not None:
        x = transform(x, generator)
    loss = loss_fn(model, x, targets[idx].to(device))
    if not torch.isfinite(loss):
        raise DivergedError(f"training diverged at step {step}: the loss is {loss.item()} (lr {recipe.lr_at(step):g})")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


@torch.no_grad()
def predict_logits(model: nn.Module, inputs: Tensor, *, batch_size: int = 1024) -> Tensor:
    """``model(inputs)`` in eval mode, in batches, on the CPU; the model's mode is restored.

    Shapes:
        - inputs: (N, ...); output: (N, C), or whatever ``model`` returns per row.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        out = [model(inputs[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(inputs), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out)


def accuracy(logits: Tensor, labels: Tensor) -> float:
    """Top-1 accuracy in [0, 1] of logits (N, C) against labels (N,)."""
    return float((logits.argmax(dim=-1) == labels.to(logits.device)).float().mean())
