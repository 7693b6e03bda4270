"""The LightningModule that trains and scores a sequence model (Memory Mosaic, GPT, the
three-moons toy) on a sequence task, and the loader that feeds it.

It plugs into the same runner as :class:`~hetmem.train.module.ClassifierModule` (same config,
seeds, run directory, checkpoints, exact resume, results): only the data, the loss and the
scores differ, and those come from the task (:mod:`hetmem.data.sequence`) and its objective
(:mod:`hetmem.train.objectives`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor, nn

from hetmem.data.sequence import BatchSplit, SequenceTaskData
from hetmem.train.config import TrainConfig
from hetmem.train.objectives import OBJECTIVES
from hetmem.train.optim import lr_factor, make_optimizer
from hetmem.train.resume import ExactResumeMixin

__all__ = ["SequenceLoader", "SequenceModule"]


class SequenceLoader:
    """Batches ``0 .. num_batches - 1`` of a split for the current epoch, with the interface of
    :class:`~hetmem.train.loaders.EpochLoader` that Lightning and exact resume use.

    Example:
        >>> from hetmem.data.sequence import Batches
        >>> split = Batches(lambda rng, b: {"x": torch.as_tensor(rng.normal(size=(b, 2)))}, num=3)
        >>> loader = SequenceLoader(split, 4, seed=0)
        >>> loader.resume_at(epoch=2, batches_done=1)
        >>> len(loader), len(list(loader))
        (3, 2)
    """

    def __init__(self, split: BatchSplit, batch_size: int, *, seed: int) -> None:
        if batch_size <= 0:
            raise ValueError(f"SequenceLoader: batch_size must be positive, got {batch_size}")
        self.split = split
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0
        self._skip = 0
        self.sampler = self  # Lightning calls loader.sampler.set_epoch(epoch)
        self.batch_sampler = None

    def __len__(self) -> int:
        return self.split.num_batches(self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, epoch: int, batches_done: int) -> None:
        self.epoch, self._skip = epoch, batches_done

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "batch_size": self.batch_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state != self.state_dict():
            raise ValueError(f"SequenceLoader: resuming with a different loader ({state} in the checkpoint, now {self.state_dict()})")

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        skip, self._skip = self._skip, 0
        for index in range(skip, len(self)):
            yield self.split.batch(seed=self.seed, epoch=self.epoch, index=index, batch_size=self.batch_size)


class SequenceModule(ExactResumeMixin, pl.LightningModule):
    """Trains ``model`` on ``task`` with the task's objective; validation picks the checkpoint
    by ``task.metric`` (``task.metric_mode``), tests score every named test split.

    The learning-rate schedule is the config's (warm-up, cosine or linear decay to
    ``optim.min_lr``) stepped every optimiser step, with epochs as its unit.
    """

    def __init__(self, model: nn.Module, cfg: TrainConfig, task: SequenceTaskData, seed: int) -> None:
        super().__init__()
        if task.objective not in OBJECTIVES:
            raise ValueError(f"SequenceModule: unknown objective {task.objective!r}; expected one of {sorted(OBJECTIVES)}")
        self.model = model
        self.cfg = cfg
        self.task = task
        self.seed = seed
        self.objective = OBJECTIVES[task.objective]
        self.test_names = list(task.tests)
        self.eval_batch_size = cfg.eval_batch_size or cfg.batch_size
        self.results: dict[str, dict[str, float]] = {}  # split -> metrics, filled by validate/test
        self._sums: dict[int, dict[str, list[Tensor]]] = {}

    # ----- data --------------------------------------------------------------------------
    def train_dataloader(self) -> SequenceLoader:
        return self.resumable(SequenceLoader(self.task.train, self.cfg.batch_size, seed=self.seed))

    def val_dataloader(self) -> SequenceLoader:
        return SequenceLoader(self.task.val, self.eval_batch_size, seed=self.seed)

    def test_dataloader(self) -> list[SequenceLoader]:
        return [SequenceLoader(split, self.eval_batch_size, seed=self.seed) for split in self.task.tests.values()]

    # ----- steps -------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self.objective.loss(self.model, batch)
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=len(next(iter(batch.values()))))
        return loss

    def _eval_step(self, batch: dict[str, Tensor], dataloader_idx: int) -> None:
        sums = self._sums.setdefault(dataloader_idx, {})
        for name, (total, count) in self.objective.stats(self.model, batch).items():
            acc = sums.setdefault(name, [torch.zeros((), dtype=torch.float64), torch.zeros((), dtype=torch.float64)])
            acc[0] += total.detach().double().cpu()
            acc[1] += count.detach().double().cpu()

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, 0)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(batch, dataloader_idx)

    def _metrics(self, idx: int) -> dict[str, float]:
        return {name: float(total / count) if count > 0 else float("nan") for name, (total, count) in self._sums.pop(idx, {}).items()}

    def on_validation_epoch_end(self) -> None:
        if 0 not in self._sums:
            return
        self.results["val"] = self._metrics(0)
        self._sums.clear()
        for name, value in self.results["val"].items():
            self.log(f"val/{name}", value, prog_bar=name == self.task.metric, batch_size=1)

    def on_test_epoch_end(self) -> None:
        for idx, name in enumerate(self.test_names):
            if idx in self._sums:
                self.results[name] = self._metrics(idx)
                for metric, value in self.results[name].items():
                    self.log(f"test/{name}/{metric}", value, batch_size=1, add_dataloader_idx=False)
        self._sums.clear()

    # ----- optimisation ------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        o = self.cfg.optim
        groups = getattr(self.model, "optim_groups", None)  # the language models decay matrices only (thesis App. B.3)
        opt = make_optimizer(o, groups(o.weight_decay) if groups else [p for p in self.model.parameters() if p.requires_grad])
        if o.scheduler == "none" and o.warmup_epochs == 0:
            return opt
        steps = self.task.train.num_batches(self.cfg.batch_size)  # optimiser steps per epoch
        schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(o, step / steps, self.cfg.epochs, 1 / steps))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    # ----- checkpoints -------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["hetmem"] = {
            "config": self.cfg.to_dict(),
            "seed": self.seed,
            "kind": "sequence",
            "objective": self.task.objective,
            "vocab": self.task.vocab,
            "max_len": self.task.max_len,
            "num_parameters": sum(p.numel() for p in self.model.parameters()),
        }
