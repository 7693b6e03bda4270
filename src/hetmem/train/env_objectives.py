"""Objectives over training environments: ERM, IRMv1, vREx, Fishr, SD, IGA, CLOvE, GroupDRO, RERM.

One class per algorithm, in a registry (DomainBed's style). An objective turns one step's
per-environment logits and labels (an :class:`EnvBatch`) into the loss to minimise, following
RFC's code (``coloredmnist/train.py``, thesis ch. 2 and app. A):

.. math::

    L = \\text{data}(L_1, \\dots, L_E) + \\lambda_t\\,\\Omega + \\text{l2}\\,\\textstyle\\sum\\|\\theta\\|^2,
    \\qquad L \\leftarrow L / \\lambda_t \\text{ when } \\lambda_t > 1

with the data term :math:`\\sum_e L_e` (``risk="sum"``, RFC) or their mean (``"mean"``, IRM's
code: this halves lambda's effect with two environments); ERM uses the pooled mean over all
rows. The schedule (the traps of the spec): :math:`\\lambda_t` is ``anneal_weight`` (1, not 0)
for the first ``anneal_steps`` steps, then ``penalty_weight``; the whole loss (L2 included) is
divided by :math:`\\lambda_t` when it exceeds 1, no weight is rescaled and the optimiser is not
reset.

Every tensor may carry leading *member* dimensions (``member_ndim``: an ensemble of networks
trained at once, see :mod:`hetmem.models.rich.members`): losses and penalties are then one
value per member, and members never mix.

Shapes:
    - logits: (*M, N_e) for one binary logit (BCE, labels 0/1), or (*M, N_e, C) (cross-entropy).
    - labels: (N_e,) or (*M, N_e), integer classes.
    - features: (*M, N_e, D), the input of the final linear layer (Fishr).
    - returned loss: (*M,).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, autograd, nn

__all__ = [
    "EnvBatch",
    "EnvObjective",
    "ENV_OBJECTIVES",
    "create_objective",
    "example_losses",
    "l2_penalty",
    "list_objectives",
    "penalty_schedule",
]


@dataclass
class EnvBatch:
    """One step's outputs, split by training environment (see the module's Shapes)."""

    logits: list[Tensor]
    labels: list[Tensor]
    features: list[Tensor] | None = None  # Fishr: inputs of the final linear layer, per environment
    params: Sequence[Tensor] = field(default_factory=list)  # IGA: the trainable parameters
    member_ndim: int = 0  # leading member dimensions of logits, features and params
    row_weights: list[Tensor] | None = None  # per environment (*M, N_e) 0/1 masks: groups that differ by member (Bonsai's)

    def __post_init__(self) -> None:
        if not self.logits or len(self.logits) != len(self.labels):
            raise ValueError(f"EnvBatch: expected one labels tensor per environment's logits, got {len(self.logits)} and {len(self.labels)}")


def example_losses(logits: Tensor, labels: Tensor, member_ndim: int = 0) -> Tensor:
    """Per-row loss: binary cross-entropy with logits for one logit per row, else cross-entropy.

    Returns:
        (*M, N).
    """
    if logits.ndim == member_ndim + 1:  # (*M, N): one binary logit
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype).expand_as(logits), reduction="none")
    target = labels.expand(logits.shape[:-1])  # (*M, N)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none").reshape(target.shape)


def penalty_schedule(step: int, *, penalty_weight: float, anneal_steps: int, anneal_weight: float = 1.0) -> float:
    """lambda_t: ``anneal_weight`` before ``anneal_steps``, ``penalty_weight`` from then on.

    Example:
        >>> [penalty_schedule(t, penalty_weight=1e4, anneal_steps=2) for t in range(4)]
        [1.0, 1.0, 10000.0, 10000.0]
    """
    return float(penalty_weight if step >= anneal_steps else anneal_weight)


class EnvObjective(nn.Module):
    """ERM: the pooled mean loss over every row of every environment (RFC's ``erm_train``).

    Subclasses override :meth:`data_term` and/or :meth:`penalty`. ``needs`` names what an
    :class:`EnvBatch` must carry ("features", "params"); ``l2_scope`` which parameters RFC's code
    puts in its L2 term ("all", "featurizer": Fishr, "none": CLOvE); ``rows_per_env`` asks the
    caller for random mini-batches of that many rows per environment (CLOvE: 512).

    Args:
        penalty_weight: lambda after the anneal (>= 0).
        anneal_steps: steps trained with ``anneal_weight`` first (>= 0).
        anneal_weight: lambda before the anneal (RFC's ``anneal_val``; 1 as IRM's code).
        risk: "sum" of the environment losses (RFC) or their "mean" (IRM's code).
        num_envs: how many environments (GroupDRO's weights).
        member_shape: leading member dimensions (GroupDRO keeps one weight vector per member).
    """

    name = "erm"
    needs: tuple[str, ...] = ()
    l2_scope = "all"
    rows_per_env: int | None = None
    uses_penalty = False

    def __init__(
        self,
        *,
        penalty_weight: float = 0.0,
        anneal_steps: int = 0,
        anneal_weight: float = 1.0,
        risk: str = "sum",
        num_envs: int = 2,
        member_shape: tuple[int, ...] = (),
    ) -> None:
        super().__init__()
        if penalty_weight < 0 or anneal_weight < 0:
            raise ValueError(f"{self.name}: penalty_weight and anneal_weight must be >= 0, got {penalty_weight} and {anneal_weight}")
        if anneal_steps < 0:
            raise ValueError(f"{self.name}: anneal_steps must be >= 0, got {anneal_steps}")
        if risk not in ("sum", "mean"):
            raise ValueError(f"{self.name}: risk must be 'sum' or 'mean', got {risk!r}")
        if num_envs < 1:
            raise ValueError(f"{self.name}: num_envs must be >= 1, got {num_envs}")
        self.penalty_weight = float(penalty_weight)
        self.anneal_steps = int(anneal_steps)
        self.anneal_weight = float(anneal_weight)
        self.risk = risk
        self.num_envs = num_envs
        self.member_shape = tuple(member_shape)

    def extra_repr(self) -> str:
        if not self.uses_penalty:
            return f"risk={self.risk!r}"
        return f"penalty_weight={self.penalty_weight:g}, anneal_steps={self.anneal_steps}, anneal_weight={self.anneal_weight:g}, risk={self.risk!r}"

    # ----- pieces ----------------------------------------------------------------------------
    def prepare(self, batch: EnvBatch) -> EnvBatch:
        """A hook to transform the logits before the losses (IRMv1 multiplies them by a dummy scale)."""
        return batch

    def env_risks(self, batch: EnvBatch) -> Tensor:
        """Mean loss of each environment, (*M, E) (weighted by ``row_weights`` when given)."""
        losses = [example_losses(z, y, batch.member_ndim) for z, y in zip(batch.logits, batch.labels)]
        if batch.row_weights is None:
            return torch.stack([l.mean(-1) for l in losses], dim=-1)
        return torch.stack([(l * w).sum(-1) / w.sum(-1).clamp_min(1) for l, w in zip(losses, batch.row_weights)], dim=-1)

    def data_term(self, batch: EnvBatch, risks: Tensor) -> Tensor:
        losses = torch.cat([example_losses(z, y, batch.member_ndim) for z, y in zip(batch.logits, batch.labels)], dim=-1)
        if batch.row_weights is None:
            return losses.mean(-1)  # pooled over every row
        w = torch.cat(batch.row_weights, dim=-1)
        return (losses * w).sum(-1) / w.sum(-1).clamp_min(1)

    def penalty(self, batch: EnvBatch, risks: Tensor) -> Tensor:
        return risks.new_zeros(risks.shape[:-1])

    def weight(self, step: int) -> float:
        return penalty_schedule(step, penalty_weight=self.penalty_weight, anneal_steps=self.anneal_steps, anneal_weight=self.anneal_weight)

    # ----- the loss ---------------------------------------------------------------------------
    def forward(self, batch: EnvBatch, step: int, l2: Tensor | float = 0.0) -> Tensor:
        """The loss of ``batch`` at optimiser step ``step`` (0-based), per member.

        Args:
            batch: per-environment logits and labels.
            step: how many optimiser steps were taken before this one (the anneal counts these).
            l2: the L2 term already multiplied by its weight, per member (inside the lambda division, as RFC's code).

        Returns:
            (*M,), to be summed over members before ``backward``.
        """
        batch = self.prepare(batch)
        risks = self.env_risks(batch)  # (*M, E)
        loss = self.data_term(batch, risks) + l2
        if not self.uses_penalty:
            return loss
        lam = self.weight(step)
        loss = loss + lam * self.penalty(batch, risks)
        return loss / lam if lam > 1.0 else loss


class _PenaltyObjective(EnvObjective):
    uses_penalty = True

    def data_term(self, batch: EnvBatch, risks: Tensor) -> Tensor:
        return risks.sum(-1) if self.risk == "sum" else risks.mean(-1)


class IRMv1(_PenaltyObjective):
    """IRMv1 (Arjovsky et al. 2019): Omega = mean_e (dL_e(s * f) / ds at s = 1)^2."""

    name = "irmv1"

    def prepare(self, batch: EnvBatch) -> EnvBatch:
        shape = batch.logits[0].shape[: batch.member_ndim]
        self._scale = torch.ones(shape, device=batch.logits[0].device, dtype=batch.logits[0].dtype, requires_grad=True)  # (*M,)

        def scaled(z: Tensor) -> Tensor:
            return z * self._scale.reshape(*shape, *([1] * (z.ndim - batch.member_ndim)))

        return EnvBatch([scaled(z) for z in batch.logits], batch.labels, batch.features, batch.params, batch.member_ndim)

    def penalty(self, batch: EnvBatch, risks: Tensor) -> Tensor:
        grads = [autograd.grad(risks[..., e].sum(), self._scale, create_graph=True)[0] for e in range(risks.shape[-1])]
        return torch.stack(grads, dim=-1).pow(2).mean(-1)


class VREx(_PenaltyObjective):
    """V-REx (Krueger et al. 2021): Omega = the unbiased variance of the environment losses."""

    name = "vrex"

    def penalty(self, batch: EnvBatch, risks: Tensor) -> Tensor:
        return risks.var(dim=-1, unbiased=True) if risks.shape[-1] > 1 else risks.new_zeros(risks.shape[:-1])


class SD(_PenaltyObjective):
    """Spectral decoupling (Pezeshki et al. 2021), as RFC's code: Omega = sum_e mean(logits^2)."""

    name = "sd"

    def penalty(self, batch: EnvBatch, risks: Tensor) -> Tensor:
        m = batch.member_ndim
        return sum(z.pow(2).flatten(m).mean(-1) for z in batch.logits)


def _member_sq_norm(t: Tensor, member_ndim: int) -> Tensor:
    return t.pow(2).flatten(member_ndim).sum(-1) if t.ndim > member_ndim else t.pow(2)


class IGA(_PenaltyObjective):
    """Inter-environment gradient alignment (Koyama & Yamaguchi 2020), as RFC's code:
    Omega = sum_e ||grad L_e - mean_e grad L_e||^2 over every trainable parameter (the mean detached)."""

    name = "iga"
    needs = ("params",)

    def penalty(self, batch: EnvBatch, risks: Tensor) -> Tensor:
        params = [p for p in batch.params if p.requires_grad]
        if not params:
            raise ValueError("iga: the batch carries no trainable parameters")
        grads = [autograd.grad(risks[..., e].sum(), params, create_graph=True) for e in range(risks.shape[-1])]
        mean = [torch.stack([g[i] for g in grads]).mean(0).detach() for i in range(len(params))]
        return sum(_member_sq_norm(g[i] - mean[i], batch.member_ndim) for g in grads for i in range(len(params)))


class Fishr(_PenaltyObjective):
    """Fishr (Rame et al. 2022), as RFC's code: v_e = the uncentred second moment of the per-row
    gradients of the final linear layer (weights and bias) in environment e;
    Omega = sum_e ||v_e - mean_e v_e||^2. L2 on the featurizer only."""

    name = "fishr"
    needs = ("features",)
    l2_scope = "featurizer"

    def penalty(self, batch: EnvBatch, risks: Tensor) -> Tensor:
        if batch.features is None:
            raise ValueError("fishr: the batch carries no features (the inputs of the final linear layer)")
        m = batch.member_ndim
        moments = []
        for z, y, phi in zip(batch.logits, batch.labels, batch.features):
            r = autograd.grad(example_losses(z, y, m).sum(), z, create_graph=True)[0]  # dl_i / dlogits_i: (*M, N[, C])
            r = r if r.ndim > m + 1 else r.unsqueeze(-1)  # (*M, N, C)
            n = r.shape[-2]
            v_w = torch.einsum("...nc,...nd->...cd", r.pow(2), phi.pow(2)) / n  # (*M, C, D)
            v_b = r.pow(2).mean(-2)  # (*M, C)
            moments.append(torch.cat([v_w.flatten(m), v_b.flatten(m)], dim=-1))
        v = torch.stack(moments, dim=-2)  # (*M, E, P)
        return (v - v.mean(-2, keepdim=True)).pow(2).sum((-2, -1))


class CLOvE(_PenaltyObjective):
    """CLOvE (Wald et al. 2021), as RFC's code: the MMCE calibration penalty with the Laplacian
    kernel exp(-|r - r'| / kernel_scale), summed over environments, on mini-batches of 512 rows
    per environment; no L2. Batches larger than ``max_rows`` are subsampled for the penalty."""

    name = "clove"
    l2_scope = "none"
    rows_per_env = 512

    def __init__(self, *, kernel_scale: float = 0.4, max_rows: int = 512, **kw: Any) -> None:
        super().__init__(**kw)
        if kernel_scale <= 0 or max_rows < 2:
            raise ValueError(f"clove: kernel_scale must be > 0 and max_rows >= 2, got {kernel_scale} and {max_rows}")
        self.kernel_scale = kernel_scale
        self.max_rows = max_rows

    def penalty(self, batch: EnvBatch, risks: Tensor) -> Tensor:
        m = batch.member_ndim
        out = 0.0
        for z, y in zip(batch.logits, batch.labels):
            if z.ndim == m + 1:  # one binary logit
                p = torch.sigmoid(z)
                pred = (z > 0).long()
                conf = torch.where(pred.bool(), p, 1 - p)  # (*M, N)
            else:
                conf, pred = torch.softmax(z, -1).max(-1)
            correct = (pred == y.expand_as(pred)).to(z.dtype).detach()
            if conf.shape[-1] > self.max_rows:
                keep = torch.randperm(conf.shape[-1], device=conf.device)[: self.max_rows]
                conf, correct = conf[..., keep], correct[..., keep]
            d = correct - conf  # (*M, N)
            k = torch.exp(-(conf.unsqueeze(-1) - conf.unsqueeze(-2)).abs() / self.kernel_scale)  # (*M, N, N)
            out = out + (d.unsqueeze(-1) * d.unsqueeze(-2) * k).sum((-2, -1)) / conf.shape[-1] ** 2
        return out


class GroupDRO(EnvObjective):
    """GroupDRO (Sagawa et al. 2020), DomainBed's online form: weights q_e <- q_e exp(eta L_e),
    normalised, and the loss sum_e q_e L_e. ``q`` is a non-persistent buffer (not in checkpoints)."""

    name = "groupdro"

    def __init__(self, *, eta: float = 1e-2, **kw: Any) -> None:
        super().__init__(**kw)
        if eta <= 0:
            raise ValueError(f"groupdro: eta must be > 0, got {eta}")
        self.eta = eta
        self.register_buffer("q", torch.full((*self.member_shape, self.num_envs), 1.0 / self.num_envs), persistent=False)

    def data_term(self, batch: EnvBatch, risks: Tensor) -> Tensor:
        if risks.shape[-1] != self.q.shape[-1]:
            raise ValueError(f"groupdro: built for {self.q.shape[-1]} environments, got {risks.shape[-1]}")
        with torch.no_grad():
            q = self.q.to(risks) * torch.exp(self.eta * risks.detach())
            self.q.copy_(q / q.sum(-1, keepdim=True))
        return (self.q.to(risks) * risks).sum(-1)


class RERM(EnvObjective):
    """Robust ERM (RFC's ``dro_train``, Bonsai's discovery rounds): the largest environment loss."""

    name = "rerm"

    def data_term(self, batch: EnvBatch, risks: Tensor) -> Tensor:
        return risks.max(-1).values


ENV_OBJECTIVES: dict[str, type[EnvObjective]] = {
    c.name: c for c in (EnvObjective, IRMv1, VREx, Fishr, SD, IGA, CLOvE, GroupDRO, RERM)
}


def list_objectives() -> list[str]:
    return list(ENV_OBJECTIVES)


def create_objective(name: str, **options: Any) -> EnvObjective:
    """The objective ``name`` of :data:`ENV_OBJECTIVES` with ``options``.

    Raises:
        ValueError: an unknown name or option, or an option out of range.

    Example:
        >>> create_objective("vrex", penalty_weight=1e4, anneal_steps=100)
        VREx(penalty_weight=10000, anneal_steps=100, anneal_weight=1, risk='sum')
    """
    if name not in ENV_OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; expected one of {list_objectives()}")
    try:
        return ENV_OBJECTIVES[name](**options)
    except TypeError as err:
        raise ValueError(f"objective {name!r}: {err}") from None


def l2_penalty(groups: dict[str, Sequence[Tensor]], scope: str, member_ndim: int = 0) -> Tensor | float:
    """Sum of squared parameters (biases included, as RFC's code) over the groups that ``scope``
    names: "all" (featurizer and head), "featurizer", "none" (0).

    Returns:
        (*M,) or 0.0.
    """
    chosen = {"all": ("featurizer", "head"), "featurizer": ("featurizer",), "none": ()}[scope]
    total: Tensor | float = 0.0
    for key in chosen:
        for p in groups.get(key, ()):
            total = total + _member_sq_norm(p, member_ndim)
    return total

