import json

import pytest
import torch

from hetmem.cli import main
from hetmem.data import load_task
from hetmem.train.config import resolve_config
from hetmem.train.env_training import ObjectiveLoss, total_steps, with_envs
from hetmem.train.runner import build_model

CMNIST = ["train", "--task", "colored-mnist", "--variant", "none", "--per-class", "40", "--epochs", "2", "--batch-size", "40"]


@pytest.mark.parametrize("extra, match", [
    (["--set", "objective.name=nope"], "unknown objective 'nope'"),
    (["--set", "objective.name=vrex", "--set", "objective.penalty_weight=-1"], "objective.penalty_weight"),
    (["--set", "objective.name=vrex", "--set", "objective.anneal_steps=100"], "is beyond the run: it has 4 optimiser steps"),
    (["--set", "objective.name=iga", "--variant", "hma"], "use variant none"),
    (["--set", "objective.name=clove", "--set", "objective.options.kernel_scale=0"], "kernel_scale must be > 0"),
])
def test_bad_objectives_are_one_line_and_exit_2(tmp_path, capsys, extra, match):
    assert main([*CMNIST, *extra, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1 and not (tmp_path / "r").exists()


def test_an_objective_on_a_task_without_environments_is_refused(tmp_path, capsys):
    assert main(["train", "--task", "_toy", "--backbone", "_toy_mlp", "--set", "objective.name=vrex", "--out", str(tmp_path / "r")]) == 2
    assert "needs a task with training environments; '_toy' has none" in capsys.readouterr().err


def test_the_loss_splits_each_batch_by_environment():
    cfg = resolve_config({"task": "colored-mnist", "variant": "none", "per_class": 20,
                          "objective": {"name": "vrex", "penalty_weight": 5.0, "l2": 0.01}})
    task = load_task("colored-mnist", per_class=20)
    data = with_envs(task.train, task.train_envs)
    assert torch.equal(data.tensors[2], torch.as_tensor(task.train_envs)) and torch.equal(data.tensors[1], task.train.dataset.tensors[1][task.train.indices])
    model = build_model(cfg, task).train()
    x, y, env = data.tensors
    loss, logits = ObjectiveLoss.from_config(model, cfg, 2)(x, y, env, step=0)
    ce = [torch.nn.functional.cross_entropy(logits[env == e], y[env == e]) for e in (0, 1)]
    l2 = sum(p.pow(2).sum() for p in model.parameters())
    expected = (ce[0] + ce[1] + 0.01 * l2 + 5.0 * (ce[0] - ce[1]).pow(2) / 2) / 5.0
    assert torch.allclose(loss, expected, atol=1e-5)
    assert total_steps(cfg, 40) == cfg.epochs


def test_train_with_an_objective_runs_and_records_the_worst_test(tmp_path):
    out = tmp_path / "r"
    assert main([*CMNIST, "--set", "objective.name=irmv1", "--set", "objective.penalty_weight=100",
                 "--set", "objective.anneal_steps=2", "--out", str(out)]) == 0
    metrics = json.loads((out / "seed-0" / "metrics.json").read_text())["metrics"]
    assert {"reversed", "gray", "test_mean"} <= set(metrics)
    cfg = (out / "config.yaml").read_text()
    assert "name: irmv1" in cfg and "anneal_steps: 2" in cfg
