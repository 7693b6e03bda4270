"""The LightningModule that trains and scores an HMAClassifier on a task."""

from __future__ import annotations

import math
import random
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from hetmem.data import TaskData
from hetmem.distributed import concat_all_gather
from hetmem.models.hma import HMAClassifier
from hetmem.train.config import TrainConfig
from hetmem.train.loaders import EpochLoader, make_loader
from hetmem.train.metrics import classification_metrics

__all__ = ["ClassifierModule", "rng_state", "set_rng_state"]


def rng_state() -> dict[str, Any]:
    """Every RNG a training step may draw from, in types ``torch.load(weights_only=True)`` accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def split_batch(batch: Any) -> tuple[Any, Tensor]:
    """(model input, labels) of a tensor batch ``(x, y)`` or a torch_geometric Batch."""
    if isinstance(batch, (tuple, list)):
        return batch[0], batch[1]
    return batch, batch.y


class ClassifierModule(pl.LightningModule):
    """Cross-entropy training of ``model`` on ``task``, model selection on the validation metric.

    Checkpoints carry, besides what Lightning saves (weights incl. HMA's queue and momentum
    encoder, optimiser, scheduler, loop progress), the run's config under ``"hetmem"`` and,
    under ``"hetmem_resume"``, the RNG states and the number of batches this epoch already
    trained on, so a resumed run continues exactly where it stopped.
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
        self._resume: dict[str, Any] | None = None
        self._train_loader: EpochLoader | None = None

    # ----- data --------------------------------------------------------------------------
    def train_dataloader(self) -> EpochLoader:
        loader = make_loader(self.task.train, self.cfg.batch_size, train=True, seed=self.seed, graph=self.task.is_graph)
        if self._resume is not None:
            epoch, done = self._resume["epoch"], self._resume["batches_done"]
            if done >= len(loader):  # saved after the epoch's last batch: Lightning goes on to the next
                epoch, done = epoch + 1, 0
            loader.resume_at(epoch, done)
        self._train_loader = loader
        return loader

    def val_dataloader(self) -> EpochLoader:
        return make_loader(self.task.val, self.eval_batch_size, train=False, seed=self.seed, graph=self.task.is_graph)

    def test_dataloader(self) -> list[EpochLoader]:
        return [
            make_loader(ds, self.eval_batch_size, train=False, seed=self.seed, graph=self.task.is_graph)
            for ds in self.task.tests.values()
        ]

    # ----- steps -------------------------------------------------------------------------
    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self._resume is not None:  # first batch after a resume: continue the saved RNG streams
            set_rng_state(self._resume["rng"])
            self._resume = None

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = split_batch(batch)
        logits = self.model(x, y)  # reads the memory, then writes this batch into the queue
        loss = F.cross_entropy(logits, y)
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=y.numel(), sync_dist=True)
        return loss

    def _eval_step(self, batch: Any, dataloader_idx: int) -> None:
        x, y = split_batch(batch)
        self._outputs.setdefault(dataloader_idx, []).append((self.model(x).detach(), y.detach()))

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, 0)

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
        params = [p for p in self.model.parameters() if p.requires_grad]
        if o.name == "sgd":
            opt = torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
        elif o.name == "adamw":
            opt = torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
        else:
            opt = torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
        if o.scheduler == "none" and o.warmup_epochs == 0:
            return opt
        epochs = self.cfg.epochs

        def factor(epoch: int) -> float:
            if epoch < o.warmup_epochs:
                return (epoch + 1) / o.warmup_epochs
            if o.scheduler == "cosine":
                t = (epoch - o.warmup_epochs) / max(1, epochs - o.warmup_epochs)
                return 0.5 * (1 + math.cos(math.pi * t))
            if o.scheduler == "step":
                return o.gamma ** ((epoch - o.warmup_epochs) // o.step_size)
            return 1.0

        return {"optimizer": opt, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(opt, factor), "interval": "epoch"}}

    # ----- checkpoints -------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["hetmem"] = {
            "config": self.cfg.to_dict(),
            "seed": self.seed,
            "num_classes": self.task.num_classes,
            "feature_dim": self.model.head.feature_dim,
        }
        progress = self.trainer.fit_loop.epoch_loop.batch_progress.current
        checkpoint["hetmem_resume"] = {
            "rng": rng_state(),
            "epoch": self.trainer.current_epoch,
            "batches_done": progress.processed,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._resume = checkpoint.get("hetmem_resume")
