"""What keeps a run whole: a divergence guard (no NaN step goes unnoticed, no NaN state is ever
checkpointed), a CSV log that a resumed run appends to, and spawned ranks that end with their parent.
"""

from __future__ import annotations

import csv
import os
from typing import Any

import torch
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from torch import Tensor

from hetmem.errors import DivergedError

__all__ = ["DivergenceGuardMixin", "ResumableCSVLogger", "DieWithParent"]


class DivergenceGuardMixin:
    """Mix into a LightningModule (before it in the bases) to stop a diverging run.

    Call :meth:`check_finite_loss` in ``training_step``. Every checkpoint is checked before it
    is written: a state with a NaN or Inf weight or buffer raises instead, so ``last.ckpt`` and
    ``best.ckpt`` keep the last good state.
    """

    def _diverged(self, what: str) -> DivergedError:
        return DivergedError(
            f"training diverged at epoch {self.current_epoch}, step {self.global_step}: {what}; "
            "lower the learning rate or clip the gradients"
        )

    def check_finite_loss(self, loss: Tensor) -> None:
        if not bool(torch.isfinite(loss.detach()).all()):  # one host sync per step
            raise self._diverged(f"the training loss is {loss.detach().float().mean().item()}")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = [(k, v) for k, v in self.state_dict().items() if v.is_floating_point()]
        finite = torch.stack([torch.isfinite(v).all() for _, v in state]) if state else torch.ones(1, dtype=torch.bool)
        if not bool(finite.all()):
            bad = [k for (k, _), ok in zip(state, finite.tolist()) if not ok]
            raise self._diverged(f"{len(bad)} weight tensor(s) became NaN or Inf (first: {bad[0]}); not saved")
        super().on_save_checkpoint(checkpoint)


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer deletes an existing ``metrics.csv``; this one keeps its rows
    logged before ``keep_before_step`` (those a resumed run does not repeat) and appends."""

    def __init__(self, log_dir: str, keep_before_step: int | None) -> None:
        path = os.path.join(log_dir, self.NAME_METRICS_FILE)
        rows, keys = [], []
        if keep_before_step is not None and os.path.isfile(path):
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                keys = list(reader.fieldnames or [])
                rows = [r for r in reader if r.get("step", "").isdigit() and int(r["step"]) < keep_before_step]
        super().__init__(log_dir)  # deletes the file
        if keys:
            with open(self.metrics_file_path, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=keys)
                writer.writeheader()
                writer.writerows(rows)
            self.metrics_keys = keys


class ResumableCSVLogger(CSVLogger):
    """:class:`CSVLogger` that continues ``metrics.csv`` when a run resumes from a checkpoint
    taken at ``keep_before_step`` (its ``global_step``); ``None`` starts a new file."""

    def __init__(self, *args: Any, keep_before_step: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._keep_before_step = keep_before_step

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(self.log_dir, self._keep_before_step)
        return self._experiment


class DieWithParent(Callback):
    """Each rank that Lightning spawns (``--devices N``) ends when the process that spawned it
    ends, even by SIGKILL (:func:`hetmem.processes.die_with_parent`)."""

    def __init__(self) -> None:
        self.parent_pid = os.getpid()

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if os.getpid() != self.parent_pid:  # in a spawned rank
            from hetmem.processes import die_with_parent

            die_with_parent(self.parent_pid)
