"""Full-batch training over environments, for M member networks at once (IRM's and RFC's loop).

Each step feeds every training row of every environment (CLOvE: a fresh random mini-batch of
``objective.rows_per_env`` rows per environment and member, as RFC's code steps on one batch of
512 per epoch), computes the objective of :mod:`hetmem.train.env_objectives` per member, and
takes one Adam step on their sum. Nothing here picks a device: the tensors and the model decide
it. Evaluation runs at chosen steps and its numbers are kept as a curve, so a report can show
both the final model of a fixed budget and (labelled as a peek) the best step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from hetmem.train.env_objectives import EnvBatch, EnvObjective, l2_penalty

__all__ = ["EnvData", "Curve", "fit_full_batch", "member_accuracy"]

log = logging.getLogger(__name__)


@dataclass
class EnvData:
    """Training environments of M members: ``x[e]`` (M, N_e, D) or (N_e, D) shared, ``y[e]`` (M, N_e),
    optional 0/1 ``row_weights[e]`` (M, N_e) (groups that differ by member)."""

    x: list[Tensor]
    y: list[Tensor]
    row_weights: list[Tensor] | None = None


@dataclass
class Curve:
    """Metrics at the evaluated steps: ``metrics[name][i]`` holds one value per member at ``steps[i]``."""

    steps: list[int] = field(default_factory=list)
    metrics: dict[str, list[list[float]]] = field(default_factory=dict)

    def add(self, step: int, values: dict[str, Tensor]) -> None:
        self.steps.append(step)
        for name, v in values.items():
            self.metrics.setdefault(name, []).append([float(a) for a in v.detach().cpu().reshape(-1)])

    def member(self, m: int) -> dict[str, list[float]]:
        """Member ``m``'s curve: name -> one value per evaluated step."""
        return {name: [row[m] for row in rows] for name, rows in self.metrics.items()}


@torch.no_grad()
def member_accuracy(model: nn.Module, x: Tensor, y: Tensor, *, chunk: int = 20000) -> Tensor:
    """Accuracy of every member on rows ``x`` (M, N, D) or (N, D) with labels (M, N) or (N,); (M,)."""
    correct = 0.0
    n = x.shape[-2]
    for start in range(0, n, chunk):
        xs = x[..., start : start + chunk, :]
        z = model.head(model.features(xs))  # (M, n) or (M, n, C)
        pred = (z > 0).long() if z.ndim == 2 else z.argmax(-1)
        correct = correct + (pred == y[..., start : start + chunk]).float().sum(-1)
    return correct / n


def _rows(data: EnvData, objective: EnvObjective, members: int, generator: torch.Generator | None):
    """The step's rows: everything, or a random mini-batch per environment and member (CLOvE)."""
    k = objective.rows_per_env
    if k is None:
        return data.x, data.y, data.row_weights
    xs, ys = [], []
    for x, y in zip(data.x, data.y):
        n = x.shape[-2]
        idx = torch.rand(members, n, generator=generator).argsort(-1)[:, : min(k, n)].to(y.device)  # (M, k)
        xm = x if x.ndim == 3 else x.expand(members, *x.shape)
        xs.append(torch.gather(xm, 1, idx.unsqueeze(-1).expand(-1, -1, xm.shape[-1])))  # (M, k, D)
        ys.append(torch.gather(y.expand(members, -1) if y.ndim == 1 else y, 1, idx))
    return xs, ys, None


def fit_full_batch(
    model: nn.Module,
    objective: EnvObjective,
    data: EnvData,
    *,
    steps: int,
    lr: float,
    l2: float = 0.0,
    train: str = "all",
    evaluate: Callable[[nn.Module], dict[str, Tensor]] | None = None,
    eval_at: Iterable[int] = (),
    keep_best: str | None = None,
    seed: int = 0,
) -> Curve:
    """Trains ``model`` (a :class:`~hetmem.models.rich.members.MemberMLP` or ``MemberHead``) for
    ``steps`` full-batch Adam steps.

    Args:
        model: M members with ``features(x)`` and ``head(phi)``.
        objective: the loss over environments (its ``member_shape`` should be (M,) for GroupDRO).
        data: the training environments.
        steps: optimiser steps.
        lr: Adam's learning rate (RFC: 5e-4).
        l2: weight of sum ||theta||^2 (biases included) in the loss, inside the lambda division (RFC).
        train: "all" parameters, or "head" only (a frozen representation: "-cf").
        evaluate: model -> {name: (M,) values}; called after ``t`` steps for every ``t`` in ``eval_at`` (0: before training).
        keep_best: a name ``evaluate`` returns: each member ends with its parameters at the evaluated step
            where that value was highest (early stopping); None keeps the final model.
        seed: the generator of CLOvE's mini-batches.

    Returns:
        The curve of ``evaluate`` at ``eval_at``.
    """
    if train not in ("all", "head"):
        raise ValueError(f"fit_full_batch: train must be 'all' or 'head', got {train!r}")
    if steps < 0:
        raise ValueError(f"fit_full_batch: steps must be >= 0, got {steps}")
    featurizer = list(getattr(model, "featurizer_parameters", lambda: [])()) if train == "all" else []
    head = list(model.head.parameters())
    for p in featurizer + head:
        p.requires_grad_(True)
    if train == "head":
        for p in getattr(model, "featurizer_parameters", lambda: [])():
            p.requires_grad_(False)
    params = featurizer + head
    opt = torch.optim.Adam(params, lr=lr)
    members = head[0].shape[0]
    eval_at = sorted(set(int(t) for t in eval_at if 0 <= t <= steps))
    curve = Curve()
    best_value = best_state = None
    gen = torch.Generator().manual_seed(seed)

    def record(t: int) -> None:
        nonlocal best_value, best_state
        if evaluate is None or t not in eval_at:
            return
        model.eval()
        values = evaluate(model)
        model.train()
        curve.add(t, values)
        if keep_best is not None:
            score = values[keep_best].to(params[0].device)
            if best_value is None:
                best_value, best_state = score.clone(), [p.detach().clone() for p in params]
            else:
                better = score > best_value
                best_value = torch.where(better, score, best_value)
                for kept, p in zip(best_state, params):
                    kept.copy_(torch.where(better.view(-1, *([1] * (p.ndim - 1))), p.detach(), kept))

    record(0)
    for t in range(steps):
        xs, ys, weights = _rows(data, objective, members, gen)
        cache: dict[int, tuple[Tensor, Tensor]] = {}  # environments that share rows (Bonsai's groups) share one pass
        for x in xs:
            if id(x) not in cache:
                phi = model.features(x)  # (M, N_e, H)
                cache[id(x)] = (phi, model.head(phi))
        feats = [cache[id(x)][0] for x in xs]
        logits = [cache[id(x)][1] for x in xs]
        batch = EnvBatch(logits, ys, feats if "features" in objective.needs else None, params, member_ndim=1, row_weights=weights)
        l2_term = l2 * l2_penalty({"featurizer": featurizer, "head": head}, objective.l2_scope, member_ndim=1) if l2 else 0.0
        loss = objective(batch, t, l2_term).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        record(t + 1)
    if best_state is not None:
        with torch.no_grad():
            for p, kept in zip(params, best_state):
                p.copy_(kept)
    return curve
