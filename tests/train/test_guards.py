"""The divergence guard and the CSV log a resumed run continues."""

import csv

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from hetmem.errors import DivergedError
from hetmem.train.guards import DivergenceGuardMixin, ResumableCSVLogger


class Guarded(DivergenceGuardMixin, pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(2, 2)
        self.register_buffer("queue", torch.zeros(3))


def test_a_non_finite_loss_raises_naming_the_step():
    module = Guarded()
    module.check_finite_loss(torch.tensor(1.5))
    with pytest.raises(DivergedError, match=r"training diverged at epoch 0, step 0: the training loss is inf; lower"):
        module.check_finite_loss(torch.tensor(float("inf")))


@pytest.mark.parametrize("name", ["layer.weight", "queue"])
def test_a_non_finite_state_is_never_checkpointed(name):
    module = Guarded()
    checkpoint = {}
    module.on_save_checkpoint(checkpoint)  # finite: saved
    with torch.no_grad():
        module.state_dict(keep_vars=True)[name].view(-1)[0] = float("nan")
    with pytest.raises(DivergedError, match=rf"1 weight tensor\(s\) became NaN or Inf \(first: {name}\); not saved"):
        module.on_save_checkpoint({})


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_resumed_log_keeps_the_rows_before_the_checkpoint_and_appends(tmp_path):
    first = ResumableCSVLogger(str(tmp_path), name="logs", version="")
    for step in (5, 11, 17):
        first.log_metrics({"epoch": step // 6, "train/loss": 1.0 / step}, step=step)
    first.save()
    resumed = ResumableCSVLogger(str(tmp_path), name="logs", version="", keep_before_step=12)  # checkpoint at step 12
    resumed.log_metrics({"epoch": 2, "train/loss": 0.5, "val/accuracy": 0.9}, step=17)
    resumed.save()
    rows = _rows(tmp_path / "logs" / "metrics.csv")
    assert [r["step"] for r in rows] == ["5", "11", "17"]  # before: only the row logged after the resume
    assert rows[-1]["val/accuracy"] == "0.9" and rows[0]["train/loss"] == str(1.0 / 5)
    fresh = ResumableCSVLogger(str(tmp_path), name="logs", version="")  # not a resume: a new log
    fresh.log_metrics({"epoch": 0, "train/loss": 2.0}, step=5)
    fresh.save()
    assert [r["train/loss"] for r in _rows(tmp_path / "logs" / "metrics.csv")] == ["2.0"]
