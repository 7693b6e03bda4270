"""Training losses and evaluation statistics of sequence tasks, by ``SequenceTaskData.objective``.

An objective turns a model and a batch (see :mod:`hetmem.data.sequence`) into the training
loss, and into ``{name: (sum, count)}`` statistics that add up over evaluation batches.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hetmem.data.sequence import IGNORE
from hetmem.evaluation.sequence_metrics import pfa_scores, token_loss_scores

__all__ = ["Objective", "TokenObjective", "MoonsObjective", "OBJECTIVES", "logits_of"]

Stats = dict[str, tuple[Tensor, Tensor]]


class Objective(Protocol):
    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> Tensor: ...

    def stats(self, model: nn.Module, batch: dict[str, Tensor]) -> Stats: ...


def logits_of(output: Any) -> Tensor:
    """The logits of a language model's forward output (a tensor, or a tuple starting with it)."""
    return output[0] if isinstance(output, (tuple, list)) else output


class TokenObjective:
    """Next-token cross-entropy over non-padded targets; evaluation adds accuracy and the L1
    distance to the exact distribution where the batch carries one (RegBench)."""

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        logits = logits_of(model(batch["idx"]))  # (B, T, V)
        return F.cross_entropy(logits.flatten(0, 1), batch["targets"].flatten(), ignore_index=IGNORE)

    def stats(self, model: nn.Module, batch: dict[str, Tensor]) -> Stats:
        logits = logits_of(model(batch["idx"]))
        out = token_loss_scores(logits, batch["targets"], IGNORE)
        if "dist" in batch:
            out.update(pfa_scores(logits, batch["dist"], batch["mask"], batch["last"]))
        return out


class MoonsObjective:
    """The three-moons toy's loss, ``mean(clip(y_hat - y, -0.5, 0.5)^2)`` (thesis App. B.1: the
    clip keeps the optimiser from chasing errors while the memories are nearly empty), and
    the unclipped mean absolute one-step error for evaluation."""

    clip = 0.5

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        return (model(batch["x"]) - batch["y"]).clamp(-self.clip, self.clip).pow(2).mean()

    def stats(self, model: nn.Module, batch: dict[str, Tensor]) -> Stats:
        err = model(batch["x"]) - batch["y"]
        n = torch.tensor(float(err.numel()), device=err.device)
        return {"loss": (err.clamp(-self.clip, self.clip).pow(2).sum(), n), "abs_error": (err.abs().sum(), n)}


OBJECTIVES: dict[str, Objective] = {"lm": TokenObjective(), "moons": MoonsObjective()}
