"""Sequence tasks through the one training machinery: config, runner, checkpoints, resume."""

import json

import pytest
import torch

from hetmem.errors import ConfigError
from hetmem.train.config import resolve_config
from hetmem.train.runner import evaluate, train

REGBENCH = {"task": "regbench", "backbone": "_tiny_lm", "epochs": 2, "batch_size": 8, "progress": False,
            "backbone_options": {}, "task_options": {"num_languages": 24, "num_val_languages": 8, "num_test_languages": 8, "num_iid": 4}}


def test_regbench_trains_and_scores_accuracy_and_tvd(tmp_path):
    cfg = resolve_config(REGBENCH)
    assert cfg.variant == "none" and cfg.optim.name == "adamw"  # the task's defaults
    run = train(cfg, tmp_path / "r")
    m = run.seeds[0].metrics
    assert set(m) == {"val", "test", "iid"}  # no "test_mean" over unrelated test sets
    assert set(m["test"]) == {"loss", "accuracy", "tvd", "last_accuracy", "last_tvd"}
    assert 0 <= m["test"]["accuracy"] <= 1 and 0 <= m["test"]["tvd"] <= 2
    ckpt = torch.load(tmp_path / "r" / "seed-0" / "checkpoints" / "best.ckpt", weights_only=True)
    assert ckpt["hetmem"]["kind"] == "sequence" and len(ckpt["hetmem"]["vocab"]) == 20
    again = evaluate(tmp_path / "r")
    assert again["test"]["accuracy"] == pytest.approx(m["test"]["accuracy"])


def test_the_learning_rate_follows_the_schedule_step_by_step(tmp_path):
    cfg = resolve_config(REGBENCH, {"optim": {"lr": 0.01, "scheduler": "linear", "min_lr": 0.001, "warmup_epochs": 0}})
    train(cfg, tmp_path / "r")
    lines = (tmp_path / "r" / "seed-0" / "logs" / "metrics.csv").read_text().splitlines()
    assert "train/loss_step" in lines[0]
    steps = sum(1 for l in lines[1:] if l.split(",")[lines[0].split(",").index("train/loss_step")])
    assert steps == 2 * 3  # 24 sequences / batch 8 = 3 steps per epoch


def test_an_interrupted_run_resumes_to_the_same_result(tmp_path, monkeypatch):
    from hetmem.train.sequence import SequenceModule

    cfg = resolve_config(REGBENCH, {"checkpoint_every_n_steps": 1})
    full = train(cfg, tmp_path / "full").seeds[0].metrics
    step = SequenceModule.training_step

    def crash_at_step_4(self, batch, batch_idx):  # mid second epoch (3 steps per epoch)
        if self.global_step == 4:
            raise RuntimeError("killed")
        return step(self, batch, batch_idx)

    monkeypatch.setattr(SequenceModule, "training_step", crash_at_step_4)
    with pytest.raises(RuntimeError, match="killed"):
        train(cfg, tmp_path / "part")
    assert torch.load(tmp_path / "part" / "seed-0" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 4
    monkeypatch.setattr(SequenceModule, "training_step", step)
    resumed = train(cfg, tmp_path / "part", resume=True).seeds[0].metrics
    assert resumed == full


def test_shakespeare_trains_on_the_local_archive(tmp_path, shakespeare_root):
    cfg = resolve_config({"task": "shakespeare", "backbone": "_tiny_lm", "backbone_options": {}, "epochs": 1, "batch_size": 4,
                          "progress": False, "data_root": str(shakespeare_root),
                          "task_options": {"seq_len": 16, "steps_per_epoch": 3, "eval_windows": 4}})
    run = train(cfg, tmp_path / "r")
    m = run.seeds[0].metrics
    assert set(m) == {"val", "plays", "milton"} and m["milton"]["loss"] > 0
    saved = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert saved["summary"]["val"]["loss"]["n"] == 1


@pytest.mark.parametrize("layer, match", [
    ({"backbone": "mlp"}, "sequence task: backbone must be a sequence model"),
    ({"variant": "hma"}, "'variant' must be 'none'"),
    ({"hma": {"queue_size": 8}}, "'hma' must be empty"),
    ({"per_class": 3}, "'per_class' applies to classification tasks"),
    ({"devices": 2}, "'devices' must be 1"),
])
def test_bad_sequence_configs_are_one_error(layer, match):
    with pytest.raises(ConfigError, match=match):
        resolve_config(REGBENCH, layer)


def test_a_classification_task_refuses_a_sequence_model():
    with pytest.raises(ConfigError, match="'mosaic' is a sequence model, but task 'digits' is a classification task"):
        resolve_config({"task": "digits", "backbone": "mosaic"})


def test_a_model_for_another_sequence_task_is_refused_before_anything_is_written(tmp_path):
    cfg = resolve_config(REGBENCH, {"backbone": "_tiny_moon"})
    with pytest.raises(ConfigError, match="does not fit this task"):
        train(cfg, tmp_path / "r")
    assert not (tmp_path / "r").exists()
