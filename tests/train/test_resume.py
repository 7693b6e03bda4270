"""Exact resume: a run killed with SIGKILL mid-epoch and resumed ends where an uninterrupted run ends."""

import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

TESTS = Path(__file__).resolve().parents[1]
ENTRY = f"import sys; sys.path.insert(0, {str(TESTS)!r}); import conftest; from hetmem.cli import main; sys.exit(main(sys.argv[1:]))"
STEPS_PER_EPOCH = 13  # 200 samples / 16 per batch, the last batch partial
ARGS = [
    "train", "--task", "_toy", "--backbone", "_toy_mlp", "--epochs", "4", "--batch-size", "16",
    "--set", "task_options.n_train=200", "--set", "checkpoint_every_n_steps=1", "--set", "progress=false",
    "--set", "hma.queue_size=40", "--set", "hma.label_dim=8", "--set", "backbone_options.dropout=0.3",
]


def run(out, *extra, check=True):
    return subprocess.run([sys.executable, "-c", ENTRY, *ARGS, "--out", str(out), *extra], capture_output=True, text=True, check=check)


def step_of(path):
    try:
        return torch.load(path, weights_only=True)["global_step"]
    except Exception:  # not there yet
        return -1


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_equals_uninterrupted(tmp_path):
    run(tmp_path / "a")
    proc = subprocess.Popen([sys.executable, "-c", ENTRY, *ARGS, "--out", str(tmp_path / "b")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = tmp_path / "b" / "seed-0" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while step_of(last) < STEPS_PER_EPOCH + 4 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "b" / "seed-0" / "metrics.json").exists()  # really interrupted
    saved = torch.load(last, weights_only=True)  # the kill never leaves a half-written checkpoint
    assert 0 < saved["global_step"] < 4 * STEPS_PER_EPOCH

    resumed = run(tmp_path / "b", "--resume")
    assert resumed.returncode == 0, resumed.stderr

    a = torch.load(tmp_path / "a" / "seed-0" / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(last, weights_only=True)
    assert a["global_step"] == b["global_step"] == 4 * STEPS_PER_EPOCH
    for key, value in a["state_dict"].items():  # weights, queue, pointer, momentum encoder
        assert torch.equal(value, b["state_dict"][key]), key
    metrics = [json.loads((tmp_path / r / "seed-0" / "metrics.json").read_text())["metrics"] for r in "ab"]
    assert metrics[0] == metrics[1]
    # The resumed run's log holds the whole history (before: only what came after the resume). Only
    # the train/loss of the interrupted epoch differs: Lightning restarts an epoch mean on resume.
    logs = [(tmp_path / r / "seed-0" / "logs" / "metrics.csv").read_text().splitlines() for r in "ab"]
    assert len(logs[0]) == len(logs[1]) == 1 + 2 * 4
    interrupted = saved["epoch"]
    rows = [list(csv.DictReader(log)) for log in logs]
    differ = [(x, y) for x, y in zip(*rows) if x != y]
    assert all(x["epoch"] == str(interrupted) and {k for k in x if x[k] != y[k]} == {"train/loss"} for x, y in differ), differ


# The child presses Ctrl-C itself at step 3 (a real SIGINT): a parent that watched the checkpoints
# and sent it raced the 26-step run on a loaded machine and sometimes found it finished.
CTRL_C_AT_STEP_3 = (
    "import os, signal; from hetmem.train.module import ClassifierModule as M; step = M.training_step\n"
    "def training_step(self, *args):\n"
    "    if self.global_step == 3: os.kill(os.getpid(), signal.SIGINT)\n"
    "    return step(self, *args)\n"
    "M.training_step = training_step\n"
)


@pytest.mark.slow
def test_ctrl_c_prints_the_resume_command_and_that_command_finishes_the_run(tmp_path):
    out = tmp_path / "r"
    proc = subprocess.run([sys.executable, "-c", CTRL_C_AT_STEP_3 + ENTRY, *ARGS, "--epochs", "2", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 130, proc.stderr  # before: exit 1 and no message
    assert step_of(out / "seed-0" / "checkpoints" / "last.ckpt") == 3
    message = proc.stderr.strip().splitlines()[-1]
    assert message == (f"hetmem: interrupted; the checkpoints saved so far are kept in {out}; "
                       f"continue with: hetmem train --out {out} --resume")
    command = shlex.split(message.split("continue with: ")[1])
    resumed = subprocess.run([sys.executable, "-c", ENTRY, *command[1:]], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "seed-0" / "metrics.json").read_text())["metrics"]["val"]["accuracy"] > 0
    assert len((out / "seed-0" / "logs" / "metrics.csv").read_text().splitlines()) == 1 + 2 * 2
