"""The backbone of a ``hetmem pretrain`` or ``hetmem train`` checkpoint, scored frozen
(``hetmem evaluate --knn``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from hetmem.evaluation.frozen import score_backbone

__all__ = ["load_backbone", "evaluate_frozen"]


def load_backbone(checkpoint: str | Path, *, data_root: str | None = None) -> tuple[nn.Module, Any]:
    """The backbone of a ``hetmem pretrain`` or ``hetmem train`` checkpoint and its task."""
    from hetmem.backbones import create_backbone
    from hetmem.data import load_task
    from hetmem.errors import CheckpointError
    from hetmem.train.pretrain import PretrainConfig
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
