"""Scores of next-token predictions against an exact next-token distribution (RegBench).

Each function returns ``{name: (sum, count)}`` so that scores add up over batches (and
processes) before the one division: the mean over every scored position of every sequence.

- ``accuracy``: the greedy (argmax) next token is legal, i.e. has probability > 0 under the
  language's PFA.
- ``tvd``: ``sum_v |p_model(v) - p_pfa(v)|`` over the whole vocabulary, the L1 distance, **without**
  the 1/2 of the textbook total variation distance (seq_icl's ``prob_distance_dfa`` and the
  thesis's Fig. 3.10 use this form; it lies in [0, 2]).
- ``last_accuracy``, ``last_tvd``: the same at each sequence's last scored position only
  ("predict the last token of testing sequences", thesis §3.5.2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["pfa_scores", "token_loss_scores"]


def pfa_scores(logits: Tensor, dist: Tensor, mask: Tensor, last: Tensor) -> dict[str, tuple[Tensor, Tensor]]:
    """Accuracy and L1 distance to the exact distribution, per position and at the last one.

    Args:
        logits: (B, T, V) model outputs.
        dist: (B, T, V) exact next-token probabilities (rows sum to 1 where scored).
        mask: (B, T) bool, the positions to score.
        last: (B,) long, each sequence's last scored position.

    Returns:
        ``{"accuracy", "tvd", "last_accuracy", "last_tvd"}`` -> (sum, count).

    Example:
        >>> dist = torch.tensor([[[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]])
        >>> s = pfa_scores(dist.log(), dist, torch.tensor([[True, True]]), torch.tensor([1]))
        >>> float(s["tvd"][0]), float(s["accuracy"][0]), int(s["accuracy"][1])
        (0.0, 2.0, 2)
    """
    B, T, V = logits.shape
    probs = logits.float().softmax(-1)
    legal = dist.gather(-1, probs.argmax(-1, keepdim=True)).squeeze(-1) > 0  # (B, T)
    l1 = (probs - dist).abs().sum(-1)  # (B, T)
    mask = mask.bool()
    rows = torch.arange(B, device=logits.device)
    has = mask[rows, last]  # sequences with a scored last position
    count = mask.sum().to(probs)
    last_count = has.sum().to(probs)
    return {
        "accuracy": ((legal & mask).sum().to(probs), count),
        "tvd": ((l1 * mask).sum(), count),
        "last_accuracy": ((legal[rows, last] & has).sum().to(probs), last_count),
        "last_tvd": ((l1[rows, last] * has).sum(), last_count),
    }


def token_loss_scores(logits: Tensor, targets: Tensor, ignore_index: int = -100) -> dict[str, tuple[Tensor, Tensor]]:
    """Mean cross-entropy (nats per token) over the positions whose target is not ignored.

    Example:
        >>> logits = torch.zeros(1, 3, 4)
        >>> s, n = token_loss_scores(logits, torch.tensor([[1, 2, -100]]))["loss"]
        >>> round(float(s / n), 4), int(n)
        (1.3863, 2)
    """
    losses = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=ignore_index, reduction="none")
    valid = targets.flatten() != ignore_index
    return {"loss": (losses[valid].sum(), valid.sum().to(losses))}
