"""Scoring a backbone's frozen features: weighted k-NN and a linear probe.

Loading the backbone of a checkpoint is the runner's job (:mod:`hetmem.train.frozen`); this
module knows nothing of run directories or of the methods that trained the backbone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from hetmem.evaluation.knn import extract_features, weighted_knn_predict
from hetmem.evaluation.linear_probe import fit_linear_probe

__all__ = ["score_backbone"]


def score_backbone(
    backbone: nn.Module, task: Any, *, k: int = 20, temperature: float = 0.07, probe: bool = True
) -> dict[str, dict[str, float]]:
    """k-NN (k = 20, temperature 0.07) and linear-probe accuracy of frozen ``backbone`` features.

    The training split is the k-NN memory and the probe's training set; every other split
    (validation, tests) is scored.

    Returns:
        split -> {"knn_accuracy", "linear_probe_accuracy"} (the probe only with ``probe``).
    """
    from hetmem.train.loaders import EpochLoader

    def features(ds: Any):
        return extract_features(backbone, EpochLoader(ds, 512, shuffle=False, graph=task.is_graph))

    train_x, train_y = features(task.train)
    lin = fit_linear_probe(train_x, train_y) if probe else None
    out: dict[str, dict[str, float]] = {}
    for name, ds in {"val": task.val, **task.tests}.items():
        x, y = features(ds)
        pred = weighted_knn_predict(train_x, train_y, x, num_classes=task.num_classes, k=k, temperature=temperature)
        out[name] = {"knn_accuracy": float((pred == y).float().mean())}
        if lin is not None:
            out[name]["linear_probe_accuracy"] = lin.accuracy(x, y)
    return out
