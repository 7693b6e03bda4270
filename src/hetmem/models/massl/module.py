"""MaSSLModule: self-supervised pretraining of a backbone with MaSSL under PyTorch Lightning."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor, nn

from hetmem.models.massl.augment import MultiCropAugmentation
from hetmem.models.massl.model import MaSSL, MaSSLConfig
from hetmem.models.massl.schedules import MaSSLSchedule

__all__ = ["MaSSLModule", "clip_grad_per_tensor_"]

log = logging.getLogger(__name__)


@torch.no_grad()
def clip_grad_per_tensor_(parameters: Iterable[nn.Parameter], max_norm: float) -> list[Tensor]:
    """Rescales each gradient tensor whose L2 norm exceeds ``max_norm`` to norm ``max_norm``.

    DINO's and MaSSL's clipping: every tensor on its own, not the global norm of all of them.

    Returns:
        the norms of the gradients before clipping, one 0-d tensor per parameter with a gradient.

    Example:
        >>> p = nn.Parameter(torch.zeros(2)); p.grad = torch.tensor([3.0, 4.0])
        >>> norms = clip_grad_per_tensor_([p], 1.0)
        >>> [round(float(n), 3) for n in norms], [round(g, 3) for g in p.grad.tolist()]
        ([5.0], [0.6, 0.8])
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return []
    norms = torch._foreach_norm(grads)
    scales = [torch.clamp(max_norm / (n + 1e-6), max=1.0) for n in norms]
    torch._foreach_mul_(grads, scales)
    return list(norms)


class MaSSLModule(pl.LightningModule):
    """Trains a ``MaSSL`` model on batches ``(images, labels)``; labels are ignored.

    Per optimiser step t (DINO's and MaSSL's recipe, schedules from ``MaSSLSchedule``):

    - views: 2 global and ``n_local`` local crops from ``MultiCropAugmentation`` (drawn from
      the global torch RNG, so ``seed_everything`` and checkpoint RNG state control them);
    - AdamW with learning rate warm-up then cosine; weight decay rising on a cosine from
      ``weight_decay`` to ``weight_decay_end`` on parameters with ndim >= 2 only (biases and
      norm weights are not decayed);
    - gradients clipped per tensor at ``clip_grad`` (in ``configure_gradient_clipping``;
      a Trainer ``gradient_clip_val`` is applied on top of it);
    - after the step, the teacher's EMA update with momentum rising from ``momentum_base``
      to 1, and teacher temperature warming from ``teacher_temp_start`` to ``teacher_temp``.

    Collapse monitors are logged every epoch (means over the epoch's steps):
    ``train/loss``, ``train/student_std`` (per-dimension batch std of the unit student
    embeddings; 0 means collapse, about 1/sqrt(D) a spread), ``train/teacher_entropy``,
    ``train/student_entropy``, ``train/distinct_rows``, and the schedule values.

    Args:
        config: MaSSL hyper-parameters (a dict is accepted, as restored from a checkpoint).
        steps_per_epoch: optimiser steps per epoch (batches / accumulate_grad_batches).
        max_epochs: epochs of the run; the schedules end at ``steps_per_epoch * max_epochs``.
        backbone: optional backbone module; None builds ``config.backbone`` from the registry.

    Example:
        >>> config = MaSSLConfig(backbone_kwargs={"channels": (8, 8)}, image_shape=(1, 8, 8), hidden_dim=16,
        ...                      out_dim=8, memory_size=32, block_size=8, n_local=1, local_crop_size=4)
        >>> module = MaSSLModule(config, steps_per_epoch=10, max_epochs=2)
        >>> module.schedule.total_steps, module.augment.num_views
        (20, 3)
    """

    def __init__(
        self,
        config: MaSSLConfig | dict[str, Any],
        steps_per_epoch: int,
        max_epochs: int,
        backbone: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if isinstance(config, dict):
            config = MaSSLConfig(**config)
        self.save_hyperparameters(
            {"config": asdict(config), "steps_per_epoch": steps_per_epoch, "max_epochs": max_epochs}
        )
        self.config = config
        self.model = MaSSL(config, backbone)
        self.augment = MultiCropAugmentation(
            n_local=config.n_local,
            global_size=config.global_crop_size,
            local_size=config.local_crop_size,
            global_scale=config.global_crop_scale,
            local_scale=config.local_crop_scale,
            blur_sigma=config.blur_sigma,
            solarize_p=config.solarize_p,
            jitter_p=config.jitter_p,
            flips=config.flips,
        )
        self.schedule = MaSSLSchedule.from_epochs(
            steps_per_epoch=steps_per_epoch,
            max_epochs=max_epochs,
            warmup_epochs=config.warmup_epochs,
            teacher_temp_warmup_epochs=config.teacher_temp_warmup_epochs,
            base_lr=config.lr,
            min_lr=config.min_lr,
            weight_decay_start=config.weight_decay,
            weight_decay_end=config.weight_decay_end,
            momentum_base=config.momentum_base,
            teacher_temp_start=config.teacher_temp_start,
            teacher_temp_end=config.teacher_temp,
        )
        self._ema_step = 0  # optimiser steps already followed by a teacher update

    @property
    def backbone(self) -> nn.Module:
        """The student backbone being pretrained."""
        return self.model.backbone

    def configure_optimizers(self) -> torch.optim.Optimizer:
        decay, no_decay = [], []
        for p in self.model.student.parameters():
            if p.requires_grad:
                (decay if p.ndim >= 2 else no_decay).append(p)
        values = self.schedule.at(0)
        groups = [
            {"params": decay, "weight_decay": values.weight_decay, "apply_decay": True},
            {"params": no_decay, "weight_decay": 0.0, "apply_decay": False},
        ]
        return torch.optim.AdamW([g for g in groups if g["params"]], lr=values.lr)

    def on_train_start(self) -> None:
        self._ema_step = self.global_step

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        values = self.schedule.at(self.global_step)  # the step this batch's gradient goes into
        for optimizer in self.trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = values.lr
                group["weight_decay"] = values.weight_decay if group.get("apply_decay", True) else 0.0

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch  # (B, C, H, W); labels unused
        views = self.augment(x)
        values = self.schedule.at(self.global_step)
        loss, stats = self.model(views, teacher_temp=values.teacher_temp)
        if not torch.isfinite(stats["loss"]):
            log.warning("MaSSL: non-finite loss %s at step %d", float(stats["loss"]), self.global_step)
        metrics = {f"train/{k}": v.float() for k, v in stats.items()}
        metrics.update({f"train/{k}": float(v) for k, v in values._asdict().items()})
        self.log_dict(metrics, on_step=False, on_epoch=True, batch_size=x.shape[0])
        return loss

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        if self.config.clip_grad > 0:
            clip_grad_per_tensor_(self.model.student.parameters(), self.config.clip_grad)
        if gradient_clip_val:
            self.clip_gradients(optimizer, gradient_clip_val=gradient_clip_val, gradient_clip_algorithm=gradient_clip_algorithm)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # global_step counts optimiser steps: it moved iff this batch ended with a step
        if self.global_step > self._ema_step:
            self.model.update_teacher_(self.schedule.at(self.global_step - 1).momentum)
            self._ema_step = self.global_step
