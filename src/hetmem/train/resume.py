"""Exact resume for any LightningModule trained on an :class:`EpochLoader`.

Lightning restores weights, optimiser, scheduler and loop progress, but not the RNG streams,
and the position a loader had inside an epoch (Lightning prefetches a batch, so a loader
cannot know how many of its batches were trained on). This mixin saves both with every
checkpoint and puts them back, so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from hetmem.train.loaders import EpochLoader

__all__ = ["ExactResumeMixin", "rng_state", "set_rng_state"]


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


class ExactResumeMixin:
    """Mix into a LightningModule (before it in the bases) whose ``train_dataloader`` returns
    ``self.resumable(loader)``.

    Saved under ``checkpoint["hetmem_resume"]``: the RNG states, the epoch and the batches of
    it already trained on. On resume the loader skips those batches (or starts the next
    epoch when the checkpoint was taken after an epoch's last batch) and the RNG states are
    restored right before the first batch.
    """

    _resume: dict[str, Any] | None = None

    def resumable(self, loader: EpochLoader) -> EpochLoader:
        if self._resume is not None:
            epoch, done = self._resume["epoch"], self._resume["batches_done"]
            if done >= len(loader):  # saved after the epoch's last batch: Lightning goes on to the next
                epoch, done = epoch + 1, 0
            loader.resume_at(epoch, done)
        return loader

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> Any:
        if self._resume is not None:  # first batch after a resume: continue the saved RNG streams
            set_rng_state(self._resume["rng"])
            self._resume = None
        return super().on_train_batch_start(batch, batch_idx)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        progress = self.trainer.fit_loop.epoch_loop.batch_progress.current
        checkpoint["hetmem_resume"] = {
            "rng": rng_state(),
            "epoch": self.trainer.current_epoch,
            "batches_done": progress.processed,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self._resume = checkpoint.get("hetmem_resume")
