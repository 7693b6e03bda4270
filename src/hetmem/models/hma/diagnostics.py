"""Retrieval diagnostics: does HMA's attention read its memory, or average it?

A memory that is *read* puts its attention on rows that share the query's class; a memory
that is averaged spreads it as uniformly as the rows' class mix. For each labelled query the
meter measures, per attention head and then averaged over heads:

- ``rma_same_class``: the share of the queue read (weights renormalised over the queue rows)
  that falls on rows of the query's class; ``rma_uniform``: the same share under uniform
  weights (the fraction of queue rows of that class); ``rma_lift`` = their ratio (1 = the
  read is a class-blind mean; 3 = three times the same-class mass a mean gives).
- ``rma_top1``: how often the queue row with the largest weight has the query's class.
- ``rma_entropy``: entropy of the renormalised queue weights over log(M) (1 = uniform).
- ``rma_memory_mass``: weight on the queue as opposed to the row itself.
- the same for the slot read (``sma_*``, uniform = 1 / num_classes); ``sma_memory_mass`` is
  the weight on the slots as opposed to the batch rows (or the row itself).
- ``slot_ncm``: leave-one-out nearest-class-mean accuracy of the slots' feature part (class
  separability; 1 / num_classes for slots in one blob), and ``momentum_cosine``: the cosine
  between the backbone's and the momentum encoder's features of the same input (how stale
  the queue's features are).

Example:
    >>> from hetmem.models.hma import HMAConfig, HMAHead
    >>> head = HMAHead(8, HMAConfig(num_classes=2, label_dim=4, queue_size=16, slots_per_class=2)).eval()
    >>> head.write_memory_(torch.randn(6, 8), torch.tensor([0, 1, 0, 1, 0, 1]))
    >>> meter = RetrievalMeter(head)
    >>> meter.update(head.augment(torch.randn(3, 8), need_weights=True), torch.tensor([0, 1, 1]))
    >>> sorted(meter.compute())[:3]
    ['rma_entropy', 'rma_lift', 'rma_memory_mass']
"""

from __future__ import annotations

import math
import torch
from torch import Tensor

from hetmem.models.hma.head import HMAHead, HMAOutput

__all__ = ["RetrievalMeter", "memory_read_stats", "slot_ncm_accuracy"]


def memory_read_stats(weights: Tensor, row_labels: Tensor, labels: Tensor) -> dict[str, Tensor]:
    """Per-query statistics of one read, summed over the batch (means are taken by the meter).

    Args:
        weights: attention over the memory rows only, (H, B, M), not renormalised.
        row_labels: the class of each memory row, (M,).
        labels: the class of each query, (B,).

    Returns:
        sums over the B queries (each averaged over heads) of ``same_class``, ``uniform``,
        ``top1``, ``entropy``, ``memory_mass``.
    """
    H, B, M = weights.shape
    mass = weights.sum(-1)  # (H, B)
    p = weights / mass.clamp_min(1e-12).unsqueeze(-1)  # (H, B, M) renormalised over the memory
    same = row_labels.unsqueeze(0) == labels.unsqueeze(1)  # (B, M)
    share = (p * same).sum(-1)  # (H, B)
    top1 = same.gather(1, p.argmax(-1).T).T.float()  # (H, B): the argmax row's class matches
    entropy = -(p * p.clamp_min(1e-12).log()).sum(-1) / max(math.log(M), 1e-12)  # (H, B)
    return {
        "same_class": share.mean(0).sum(),
        "uniform": same.float().mean(1).sum(),
        "top1": top1.mean(0).sum(),
        "entropy": entropy.mean(0).sum() if M > 1 else weights.new_tensor(float(B)),
        "memory_mass": mass.mean(0).sum(),
    }


@torch.no_grad()
def slot_ncm_accuracy(head: HMAHead) -> float | None:
    """Leave-one-out nearest-class-mean accuracy of the slots (None with one slot per class)."""
    if head.slots is None or head.slots.slots_per_class < 2:
        return None
    slots, labels = head.slots()  # (S, width), (S,)
    n, m = head.num_classes, head.slots.slots_per_class
    sums = slots.view(n, m, -1).sum(1)  # (n, width): rows are grouped by class
    # each slot against every class mean, its own class's mean computed without it
    means = sums.unsqueeze(0).expand(slots.shape[0], -1, -1).clone()  # (S, n, width)
    idx = torch.arange(slots.shape[0], device=slots.device)
    means[idx, labels] -= slots
    counts = torch.full((n,), float(m), device=slots.device).expand(slots.shape[0], -1).clone()  # (S, n)
    counts[idx, labels] -= 1
    means = means / counts.unsqueeze(-1)
    nearest = (means - slots.unsqueeze(1)).norm(dim=-1).argmin(-1)  # (S,)
    return float((nearest == labels).float().mean())


class RetrievalMeter:
    """Accumulates retrieval diagnostics of an :class:`HMAHead` over evaluation batches.

    Feed it the :class:`HMAOutput` of ``head.augment(features, need_weights=True)`` and the
    batch's true labels; :meth:`compute` returns the means (see the module docstring).
    """

    def __init__(self, head: HMAHead) -> None:
        self.head = head
        self.sums: dict[str, Tensor] = {}  # a plain dict: the meter is pickled by spawned DDP workers
        self.count = 0

    def _sum(self, name: str, value: Tensor) -> None:
        self.sums[name] = self.sums.get(name, 0.0) + value.detach().float().cpu()

    def _add(self, prefix: str, stats: dict[str, Tensor]) -> None:
        for name, value in stats.items():
            self._sum(f"{prefix}_{name}", value)

    @torch.no_grad()
    def update(self, out: HMAOutput, labels: Tensor, momentum_features: Tensor | None = None, features: Tensor | None = None) -> None:
        """Adds one batch: ``out`` with weights, ``labels`` (B,), optionally the backbone's and
        the momentum encoder's features of the same inputs, each (B, D1)."""
        B = labels.shape[0]
        head = self.head
        if out.rma_weights is not None and head.queue is not None and len(head.queue):
            queue_labels = head.queue.read()[1]  # (M1,)
            self._add("rma", memory_read_stats(out.rma_weights[..., 1:], queue_labels, labels))
        if out.sma_weights is not None and head.slots is not None:
            slot_labels = head.slots()[1]  # (S,)
            S = slot_labels.shape[0]
            self._add("sma", memory_read_stats(out.sma_weights[..., -S:], slot_labels, labels))
        if momentum_features is not None and features is not None:
            cos = torch.nn.functional.cosine_similarity(features, momentum_features, dim=1)  # (B,)
            self._sum("momentum_cosine", cos.sum())
        self.count += B

    def compute(self) -> dict[str, float]:
        """Means over every query seen; ``*_lift`` = same_class / uniform; ``slot_ncm`` if defined."""
        if not self.count:
            return {}
        out = {name: float(value) / self.count for name, value in self.sums.items()}
        for prefix in ("rma", "sma"):
            if f"{prefix}_uniform" in out:
                out[f"{prefix}_lift"] = out[f"{prefix}_same_class"] / max(out[f"{prefix}_uniform"], 1e-12)
        ncm = slot_ncm_accuracy(self.head)
        if ncm is not None:
            out["slot_ncm"] = ncm
        return dict(sorted(out.items()))

    def reset(self) -> None:
        self.sums.clear()
        self.count = 0
