"""The LightningModule that trains and scores an HMAClassifier on a task."""

from __future__ import annotations

import dataclasses
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from hetmem.data import TaskData
from hetmem.distributed import concat_all_gather
from hetmem.models.hma import HMAClassifier, RetrievalMeter
from hetmem.train.config import TrainConfig
from hetmem.train.guards import DivergenceGuardMixin
from hetmem.train.loaders import EpochLoader, make_loader
from hetmem.train.optim import lr_factor, make_optimizer
from hetmem.train.resume import ExactResumeMixin
from hetmem.train.metrics import classification_metrics

__all__ = ["ClassifierModule", "split_batch"]


def split_batch(batch: Any) -> tuple[Any, Tensor]:
    """(model input, labels) of a tensor batch ``(x, y)`` or a torch_geometric Batch."""
    if isinstance(batch, (tuple, list)):
        return batch[0], batch[1]
    return batch, batch.y


class ClassifierModule(DivergenceGuardMixin, ExactResumeMixin, pl.LightningModule):
    """Cross-entropy training of ``model`` on ``task``, model selection on the validation metric.

    Checkpoints carry, besides what Lightning saves (weights incl. HMA's queue and momentum
    encoder, optimiser, scheduler, loop progress), the run's config under ``"hetmem"`` and
    what exact resume needs (:class:`ExactResumeMixin`). A NaN or Inf loss stops the run with
    a :class:`~hetmem.errors.DivergedError`, and a NaN state is never checkpointed
    (:class:`DivergenceGuardMixin`).
    """

    def __init__(self, model: HMAClassifier, cfg: TrainConfig, task: TaskData, seed: int) -> None:
        super().__init__()
        self.model = model
        self.cfg = cfg
        self.task = task
        self.seed = seed
        self.test_names = list(task.tests)
        self.eval_batch_size = cfg.eval_batch_size or cfg.batch_size
        self.results: dict[str, dict[str, float]] = {}  # split -> metrics, filled by validate/test
        self._outputs: dict[int, list[tuple[Tensor, Tensor]]] = {}
        # retrieval diagnostics on the validation split, every validation epoch (not for "none")
        self.meter = RetrievalMeter(model.head) if model.config.components is not None else None
        self.diagnostics: dict[str, float] = {}  # of the last validation epoch
        self.diagnostics_history: list[dict[str, float]] = []  # one entry per validation epoch of fit()
        self.objective_loss = None  # an objective over environments (cfg.objective), or plain cross-entropy
        if cfg.objective.active:
            from hetmem.train.env_training import ObjectiveLoss

            self.objective_loss = ObjectiveLoss.from_config(model, cfg, max(task.num_envs, 1))

    # ----- data --------------------------------------------------------------------------
    def train_dataloader(self) -> EpochLoader:
        data = self.task.train
        if self.objective_loss is not None:  # rows carry their environment
            from hetmem.train.env_training import with_envs

            envs = self.task.train_envs if self.task.train_envs is not None else [0] * len(data)
            data = with_envs(data, envs)
        loader = make_loader(data, self.cfg.batch_size, train=True, seed=self.seed, graph=self.task.is_graph)
        return self.resumable(loader)

    def val_dataloader(self) -> EpochLoader:
        return make_loader(self.task.val, self.eval_batch_size, train=False, seed=self.seed, graph=self.task.is_graph)

    def test_dataloader(self) -> list[EpochLoader]:
        return [
            make_loader(ds, self.eval_batch_size, train=False, seed=self.seed, graph=self.task.is_graph)
            for ds in self.task.tests.values()
        ]

    # ----- steps -------------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        if self.cfg.freeze_backbone:  # a frozen backbone also keeps its BatchNorm statistics and no dropout
            self.model.backbone.eval()

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = split_batch(batch)
        if self.objective_loss is not None:
            loss, _ = self.objective_loss(x, y, batch[2], self.global_step)
            self.check_finite_loss(loss)
            self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=y.numel(), sync_dist=True)
            return loss
        try:
            logits = self.model(x, y)  # reads the memory, then writes this batch into the queue
        except ValueError as err:  # non-finite features after some steps on finite data: divergence
            if self.global_step == 0 or ("NaN" not in str(err) and "Inf" not in str(err)):
                raise
            raise self._diverged(f"the model's features became NaN or Inf ({err})") from None
        loss = F.cross_entropy(logits, y)
        self.check_finite_loss(loss)
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=y.numel(), sync_dist=True)
        return loss

    def _eval_step(self, batch: Any, dataloader_idx: int) -> None:
        x, y = split_batch(batch)
        self._outputs.setdefault(dataloader_idx, []).append((self.model(x).detach(), y.detach()))

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        if self.meter is None:
            self._eval_step(batch, 0)
            return
        x, y = split_batch(batch)
        features = self.model.backbone.forward_features(x)  # (B, D1)
        out = self.model.head.augment(features, need_weights=True)  # the forward pass, with its weights
        encoder = self.model.momentum_encoder
        momentum = encoder.module.forward_features(x) if encoder is not None else None
        self.meter.update(out, y, momentum_features=momentum, features=features)
        self._outputs.setdefault(0, []).append((self.model.head.fc(out.c3).detach(), y.detach()))

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(batch, dataloader_idx)

    def _split_metrics(self, outputs: list[tuple[Tensor, Tensor]]) -> dict[str, float]:
        logits = concat_all_gather(torch.cat([o[0] for o in outputs]))  # all ranks' rows
        labels = concat_all_gather(torch.cat([o[1] for o in outputs]))
        return classification_metrics(logits, labels, self.task.metric, ogb_name=self.task.info.get("ogb_name"))

    def on_validation_epoch_end(self) -> None:
        if not self._outputs:
            return
        metrics = self._split_metrics(self._outputs.pop(0))
        self._outputs.clear()
        self.results["val"] = metrics
        for name, value in metrics.items():
            self.log(f"val/{name}", value, prog_bar=name == self.task.metric, batch_size=1, sync_dist=True)
        if self.meter is not None:
            self.diagnostics = self.meter.compute()
            self.meter.reset()
            if self.trainer.state.fn == "fit":
                self.diagnostics_history.append({"epoch": self.current_epoch, **self.diagnostics})
            for name, value in self.diagnostics.items():
                self.log(f"diag/{name}", value, batch_size=1, sync_dist=True)

    def on_test_epoch_end(self) -> None:
        for idx, name in enumerate(self.test_names):
            if idx in self._outputs:
                self.results[name] = self._split_metrics(self._outputs[idx])
                for metric, value in self.results[name].items():
                    self.log(f"test/{name}/{metric}", value, batch_size=1, add_dataloader_idx=False, sync_dist=True)
        self._outputs.clear()

    # ----- optimisation ------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        o = self.cfg.optim
        opt = make_optimizer(o, [p for p in self.model.parameters() if p.requires_grad])
        if o.scheduler == "none" and o.warmup_epochs == 0:
            return opt
        schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: lr_factor(o, epoch, self.cfg.epochs))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": schedule, "interval": "epoch"}}

    # ----- checkpoints -------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["hetmem"] = {
            "config": self.cfg.to_dict(),
            "seed": self.seed,
            "num_classes": self.task.num_classes,
            "feature_dim": self.model.head.feature_dim,
            "input_shape": list(self.task.input_spec.shape),
            "diagnostics_history": self.diagnostics_history,
            "input_spec": dataclasses.asdict(self.task.input_spec),  # rebuilds the model without the data
            "class_names": self.task.class_names,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self.diagnostics_history = list(checkpoint.get("hetmem", {}).get("diagnostics_history", []))
