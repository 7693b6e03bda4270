"""Distill_n: one network that learns the features of n teachers (thesis Fig. 2.6, eqs. A.1, A.4).

One backbone Phi carries n linear heads w_i; head i learns to reproduce teacher i's logits
``v_i(phi_i(x))`` at temperature tau (Hinton et al. 2015), so Phi must hold the features of
every teacher:

.. math::
    \\min_{\\Phi, w_1..w_n} \\sum_i \\sum_x (1 - \\alpha)\\, \\mathrm{CE}(s(w_i \\Phi(x)), y)
        + \\alpha\\, \\tau^2\\, \\mathrm{KL}\\big(s_\\tau(v_i \\phi_i(x)) \\,\\|\\, s_\\tau(w_i \\Phi(x))\\big)

with ``s_tau(v) = softmax(v / tau)``, tau = 10; ``alpha = 1`` is eq. A.1 (no labels), the
few-shot experiments search alpha in {0.8, 0.9, 1}. The sum over x is a mean over each batch here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hetmem.models.rich.fit import Recipe, fit_steps, predict_logits

__all__ = ["DistillNet", "distill_loss", "teacher_logits", "distill"]


def distill_loss(student: Tensor, teacher: Tensor, labels: Tensor | None = None, *, tau: float = 10.0, alpha: float = 1.0) -> Tensor:
    """Eq. A.4: summed over the n heads, averaged over the batch.

    Args:
        student: logits of the student's heads w_i Phi(x), (n, B, C).
        teacher: logits of the teachers v_i phi_i(x), (n, B, C); no gradient flows into them.
        labels: (B,) true classes, needed when ``alpha < 1``.
        tau: the softmax temperature of both sides of the KL term.
        alpha: weight of the KL term; ``1 - alpha`` weighs the cross-entropy on the labels.

    Returns:
        A scalar.

    Example:
        >>> s = torch.tensor([[[10 * torch.log(torch.tensor(3.0)), 0.0]]])  # s_10 = (3/4, 1/4)
        >>> round(distill_loss(s, torch.zeros(1, 1, 2)).item(), 4)  # 100 * KL((1/2, 1/2) || (3/4, 1/4))
        14.3841
    """
    if student.dim() != 3 or student.shape != teacher.shape:
        raise ValueError(f"distill_loss: expected student and teacher logits of the same shape (n, B, C), got "
                         f"{tuple(student.shape)} and {tuple(teacher.shape)}")
    if not tau > 0:
        raise ValueError(f"distill_loss: tau must be > 0, got {tau!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"distill_loss: alpha must be in [0, 1], got {alpha!r}")
    n, b, c = student.shape
    log_q = F.log_softmax(student / tau, dim=-1)  # (n, B, C)
    log_p = F.log_softmax(teacher.detach() / tau, dim=-1)  # (n, B, C)
    kl = (log_p.exp() * (log_p - log_q)).sum(dim=-1)  # (n, B): KL(p || q) per head and row
    loss = alpha * tau**2 * kl.mean(dim=1).sum()
    if alpha < 1.0:
        if labels is None or labels.shape != (b,):
            raise ValueError(f"distill_loss: alpha < 1 needs labels of shape ({b},), got {None if labels is None else tuple(labels.shape)}")
        ce = F.cross_entropy(student.reshape(n * b, c), labels.repeat(n), reduction="none").view(n, b)  # (n, B)
        loss = loss + (1.0 - alpha) * ce.mean(dim=1).sum()
    return loss


class DistillNet(nn.Module):
    """A student backbone with one linear head per teacher.

    Args:
        backbone: the student Phi (``forward_features``, ``feature_dim``).
        num_teachers: n, the number of heads.
        num_classes: outputs of every head.

    Shapes:
        - input: (B, ...); ``forward_features``: (B, feature_dim); output: (n, B, num_classes).
    """

    def __init__(self, backbone: nn.Module, num_teachers: int, num_classes: int) -> None:
        super().__init__()
        dim = getattr(backbone, "feature_dim", None)
        if not callable(getattr(backbone, "forward_features", None)) or isinstance(dim, bool) or not isinstance(dim, int):
            raise ValueError("DistillNet: the backbone needs forward_features(x) and an int feature_dim")
        for name, value in (("num_teachers", num_teachers), ("num_classes", num_classes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DistillNet: {name} must be a positive int, got {value!r}")
        self.backbone = backbone
        self.feature_dim = dim
        self.heads = nn.ModuleList(nn.Linear(dim, num_classes) for _ in range(num_teachers))

    def forward_features(self, x: Tensor) -> Tensor:
        return self.backbone.forward_features(x)  # (B, feature_dim)

    def forward(self, x: Tensor) -> Tensor:
        z = self.forward_features(x)
        return torch.stack([head(z) for head in self.heads])  # (n, B, C)

    def extra_repr(self) -> str:
        return f"feature_dim={self.feature_dim}, num_teachers={len(self.heads)}"


def teacher_logits(teachers: Sequence[nn.Module], inputs: Tensor, *, batch_size: int = 1024) -> Tensor:
    """The teachers' logits on every row, in eval mode: (N, n, C) on the CPU."""
    if not teachers:
        raise ValueError("teacher_logits: needs at least one teacher")
    return torch.stack([predict_logits(t, inputs, batch_size=batch_size) for t in teachers], dim=1)  # (N, n, C)


def distill(
    student: DistillNet,
    teachers: Sequence[nn.Module],
    inputs: Tensor,
    labels: Tensor | None = None,
    recipe: Recipe | None = None,
    *,
    tau: float = 10.0,
    alpha: float = 1.0,
    seed: int = 0,
) -> list[float]:
    """Trains ``student`` (in place) to match the n ``teachers`` with :func:`distill_loss`.

    The teachers' logits are computed once, in eval mode, on the given inputs.

    Args:
        student: a :class:`DistillNet` with one head per teacher.
        teachers: n classifiers mapping inputs to (B, C) logits.
        inputs, labels: the training set (labels needed when ``alpha < 1``).
        recipe: how to train the student.

    Returns:
        The loss of every step.
    """
    if recipe is None:
        raise ValueError("distill: a Recipe is required")
    if len(teachers) != len(student.heads):
        raise ValueError(f"distill: the student has {len(student.heads)} heads for {len(teachers)} teachers")
    if alpha < 1.0 and labels is None:
        raise ValueError("distill: alpha < 1 adds a cross-entropy term and needs labels")
    targets = teacher_logits(teachers, inputs)  # (N, n, C)
    if labels is not None:  # carry the labels in one extra column: (N, n, C + 1)
        targets = torch.cat([targets, labels.to(targets).view(-1, 1, 1).expand(-1, targets.shape[1], 1)], dim=2)

    def loss_fn(model: nn.Module, x: Tensor, t: Tensor) -> Tensor:
        t = t.transpose(0, 1)  # (n, B, C[+1])
        y = t[0, :, -1].long() if labels is not None else None
        return distill_loss(model(x), t[..., :-1] if labels is not None else t, y, tau=tau, alpha=alpha)

    return fit_steps(student, inputs, targets, recipe, seed=seed, loss_fn=loss_fn)
