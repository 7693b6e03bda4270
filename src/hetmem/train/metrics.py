"""Classification metrics from logits: accuracy, Matthews correlation, ROC-AUC (OGB's Evaluator
for OGB data sets), and cross-entropy."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["METRICS", "classification_metrics"]

METRICS = ("accuracy", "mcc", "rocauc")


def _rocauc(probs: Tensor, labels: Tensor, ogb_name: str | None) -> float:
    if probs.shape[1] != 2:
        from sklearn.metrics import roc_auc_score

        return float(roc_auc_score(labels.numpy(), probs.numpy(), multi_class="ovr"))
    score = probs[:, 1:]  # (N, 1): probability of the positive class
    if ogb_name is not None:
        from ogb.graphproppred import Evaluator

        result = Evaluator(ogb_name).eval({"y_true": labels.view(-1, 1).numpy(), "y_pred": score.numpy()})
        return float(result["rocauc"])
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels.numpy(), score.view(-1).numpy()))


def classification_metrics(logits: Tensor, labels: Tensor, metric: str = "accuracy", *, ogb_name: str | None = None) -> dict[str, float]:
    """Always ``loss`` and ``accuracy``; plus ``metric`` when it is mcc or rocauc.

    Shapes:
        logits: (N, C); labels: (N,).
    """
    if metric not in METRICS:
        raise ValueError(f"classification_metrics: metric must be one of {METRICS}, got {metric!r}")
    logits, labels = logits.detach().float().cpu(), labels.detach().long().cpu()
    preds = logits.argmax(1)
    out = {"loss": float(F.cross_entropy(logits, labels)), "accuracy": float((preds == labels).float().mean())}
    if metric == "mcc":
        from sklearn.metrics import matthews_corrcoef

        out["mcc"] = float(matthews_corrcoef(labels.numpy(), preds.numpy()))
    elif metric == "rocauc":
        out["rocauc"] = _rocauc(logits.softmax(1), labels, ogb_name) if labels.unique().numel() > 1 else float("nan")
    return out
