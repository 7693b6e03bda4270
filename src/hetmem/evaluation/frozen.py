"""Scoring a backbone's frozen features: weighted k-NN and a linear probe, for any backbone a
``hetmem pretrain`` or ``hetmem train`` checkpoint holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from hetmem.evaluation.knn import extract_features, weighted_knn_predict
from hetmem.evaluation.linear_probe import fit_linear_probe

__all__ = ["score_backbone", "load_backbone", "evaluate_frozen"]


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


def load_backbone(checkpoint: str | Path, *, data_root: str | None = None) -> tuple[nn.Module, Any]:
    """The backbone of a ``hetmem pretrain`` or ``hetmem train`` checkpoint and its task."""
    from hetmem.backbones import create_backbone
    from hetmem.data import load_task
    from hetmem.errors import CheckpointError
    from hetmem.massl.pretrain import PretrainConfig
    from hetmem.train.checkpoint import load_backbone_weights, read_checkpoint
    from hetmem.train.runner import load_trained

    path = Path(checkpoint)
    if path.is_dir():  # a run directory: its best (hetmem train) or last (hetmem pretrain) checkpoint
        found = sorted(path.glob("**/checkpoints/best.ckpt")) or sorted(path.glob("**/checkpoints/last.ckpt"))
        if not found:
            raise CheckpointError(f"no checkpoints/best.ckpt or last.ckpt under {str(path)!r}")
        path = found[0]
    state = read_checkpoint(path)
    if isinstance(state.get("hetmem"), dict):
        model, _, task, _ = load_trained(path, data_root=data_root)
        return model.backbone, task
    meta = state.get("hetmem_pretrain")
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {str(path)!r} was written by neither hetmem pretrain nor hetmem train")
    cfg = PretrainConfig(**meta["config"])
    task = load_task(cfg.task, root=data_root or cfg.data_root, seed=meta.get("seed", 0), **cfg.task_options)
    backbone = create_backbone(cfg.backbone, task.input_spec, **cfg.backbone_options)
    load_backbone_weights(backbone, path, backbone=cfg.backbone, options=cfg.backbone_options, input_shape=task.input_spec.shape)
    return backbone.eval(), task


def evaluate_frozen(
    checkpoint: str | Path, *, k: int = 20, temperature: float = 0.07, probe: bool = False, data_root: str | None = None
) -> dict[str, dict[str, float]]:
    """``hetmem evaluate --knn``: k-NN (and optionally linear-probe) accuracy of a checkpoint's backbone."""
    backbone, task = load_backbone(checkpoint, data_root=data_root)
    return score_backbone(backbone, task, k=k, temperature=temperature, probe=probe)
