import json

import pytest
import torch
import yaml

from hetmem.errors import CheckpointError, RunExistsError
from hetmem.data.task import DataError
from hetmem.train.config import resolve_config
from hetmem.train.runner import evaluate, train
from hetmem.train.table import summary_table


def toy(**kw):
    base = {"task": "_toy", "backbone": "_toy_mlp", "epochs": 2, "batch_size": 16, "progress": False,
            "hma": {"queue_size": 32, "slots_per_class": 2, "label_dim": 8}}
    return resolve_config(base, kw)


def test_run_directory_layout_metrics_and_summary(tmp_path):
    run = train(toy(seeds=[0, 1], task_options={"two_tests": True}), tmp_path / "run")
    out = tmp_path / "run"
    assert yaml.safe_load((out / "config.yaml").read_text())["seeds"] == [0, 1]
    for seed in (0, 1):
        d = out / f"seed-{seed}"
        assert (d / "checkpoints" / "best.ckpt").is_file() and (d / "checkpoints" / "last.ckpt").is_file()
        assert (d / "logs" / "metrics.csv").is_file()
        metrics = json.loads((d / "metrics.json").read_text())["metrics"]
        assert set(metrics) == {"val", "test", "shifted", "test_mean"}
        assert metrics["test_mean"]["accuracy"] == pytest.approx((metrics["test"]["accuracy"] + metrics["shifted"]["accuracy"]) / 2)
    summary = json.loads((out / "summary.json").read_text())["summary"]
    accs = [r.metrics["test"]["accuracy"] for r in run.seeds]
    assert summary["test"]["accuracy"]["mean"] == pytest.approx(sum(accs) / 2)
    assert summary["test"]["accuracy"]["n"] == 2
    table = summary_table([run])
    assert "test accuracy" in table and f"{sum(accs) / 2:.4f}" in table


def test_training_learns_the_toy_task(tmp_path):
    run = train(toy(epochs=8), tmp_path / "run")
    assert run.seeds[0].metrics["test"]["accuracy"] > 0.7  # chance is 1/3


def test_same_seed_same_numbers(tmp_path):
    a = train(toy(), tmp_path / "a").seeds[0].metrics
    b = train(toy(), tmp_path / "b").seeds[0].metrics
    assert a == b


def test_existing_run_is_refused_unless_overwrite_or_resume(tmp_path):
    out = tmp_path / "run"
    train(toy(), out)
    before = (out / "seed-0" / "metrics.json").read_text()
    with pytest.raises(RunExistsError, match="already holds a run; pass --overwrite"):
        train(toy(), out)
    assert (out / "seed-0" / "metrics.json").read_text() == before  # nothing touched
    resumed = train(toy(seeds=[0, 1]), out, resume=True)  # seed 0 read back, seed 1 trained
    assert json.loads(before)["metrics"] == resumed.seeds[0].metrics and len(resumed.seeds) == 2
    with pytest.raises(RunExistsError, match="differs in 'epochs'"):
        train(toy(epochs=3), out, resume=True)
    train(toy(), out, overwrite=True)
    assert not (out / "seed-1").exists()


@pytest.mark.parametrize("corrupt, error, match", [
    ("label", DataError, r"train labels must be in \[0, 3\), got values in \[0, 3\]"),
    ("nan", DataError, "NaN or Inf"),
    ("empty", DataError, "train split is empty"),
])
def test_bad_data_is_refused_before_anything_is_written(tmp_path, corrupt, error, match):
    out = tmp_path / "run"
    with pytest.raises(error, match=match):
        train(toy(task_options={"corrupt": corrupt}), out)
    assert not out.exists()


def test_evaluate_reproduces_the_recorded_metrics_and_switches_context(tmp_path):
    run = train(toy(epochs=3), tmp_path / "run")
    ckpt = tmp_path / "run" / "seed-0" / "checkpoints" / "best.ckpt"
    again = evaluate(ckpt)
    assert again["test"] == pytest.approx(run.seeds[0].metrics["test"])
    assert evaluate(tmp_path / "run")["val"] == pytest.approx(again["val"])  # a run directory works too
    single = evaluate(ckpt, eval_context="single")
    assert set(single) == set(again)
    one_by_one = evaluate(ckpt, eval_context="single", eval_batch_size=1)
    assert one_by_one["test"]["accuracy"] == pytest.approx(single["test"]["accuracy"])  # batch-independent


def test_evaluate_bad_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        evaluate(tmp_path / "nope.ckpt")
    with pytest.raises(CheckpointError, match="no checkpoints/best.ckpt"):
        evaluate(tmp_path)
    bad = tmp_path / "bad.ckpt"
    torch.save({"state_dict": {}}, bad)
    with pytest.raises(CheckpointError, match="no hetmem metadata"):
        evaluate(bad)


def test_evaluate_refuses_a_checkpoint_of_another_model(tmp_path):
    train(toy(), tmp_path / "run")
    ckpt = tmp_path / "run" / "seed-0" / "checkpoints" / "best.ckpt"
    state = torch.load(ckpt, weights_only=True)
    state["hetmem"]["config"]["backbone_options"] = {"hidden_dim": 8}  # the saved weights are 16 wide
    state["hetmem"]["feature_dim"] = 8
    torch.save(state, ckpt)
    with pytest.raises(CheckpointError, match="does not fit this model"):
        evaluate(ckpt)
    state["hetmem"]["num_classes"] = 5
    torch.save(state, ckpt)
    with pytest.raises(CheckpointError, match="num_classes=5 but this model has num_classes=3"):
        evaluate(ckpt)


def test_bad_eval_context_is_a_config_error(tmp_path):
    train(toy(), tmp_path / "run")
    with pytest.raises(ValueError, match="eval_context"):
        evaluate(tmp_path / "run", eval_context="global")


@pytest.mark.slow
def test_two_processes_through_lightning(tmp_path):
    """devices=2 on CPU: Lightning spawns 2 gloo ranks; queue writes are gathered, metrics cover every row."""
    run = train(toy(devices=2, epochs=2, hma={"queue_size": 32, "label_dim": 8, "global_batch": True}), tmp_path / "ddp")
    state = torch.load(tmp_path / "ddp" / "seed-0" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert int(state["model.head.queue.count"]) == 32  # 96 rows a epoch gathered from both ranks fill it
    assert int(state["model.head.queue.ptr"]) == (2 * 96) % 32
    assert 0.0 <= run.seeds[0].metrics["test"]["accuracy"] <= 1.0
