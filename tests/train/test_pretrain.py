"""hetmem pretrain: run directory, resume, scores, config errors; then --init-from and --knn."""

import json

import pytest
import torch

from hetmem.cli import main
from hetmem.errors import CheckpointError, ConfigError, RunExistsError
from hetmem.train.frozen import evaluate_frozen, load_backbone
from hetmem.train.pretrain import pretrain, resolve_pretrain_config
from hetmem.train.config import resolve_config
from hetmem.train.runner import build_model, train

TINY = {"task": "digits", "epochs": 1, "progress": False, "backbone_options": {"channels": [8, 8]},
        "massl": {"hidden_dim": 32, "out_dim": 16, "memory_size": 256, "block_size": 64}}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain") / "run"
    result = pretrain(resolve_pretrain_config(TINY), out)
    return out, result


def test_run_directory_and_scores(pretrained):
    out, result = pretrained
    seed_dir = out / "seed-0"
    assert (out / "config.yaml").is_file() and (out / "summary.json").is_file()
    assert (seed_dir / "checkpoints" / "last.ckpt").is_file() and (seed_dir / "logs" / "metrics.csv").is_file()
    metrics = json.loads((seed_dir / "metrics.json").read_text())
    for which in ("initial", "pretrained"):
        assert set(metrics[which]) == {"val", "test"}
        assert 0.0 <= metrics[which]["test"]["knn_accuracy"] <= 1.0
        assert 0.0 <= metrics[which]["test"]["linear_probe_accuracy"] <= 1.0
    assert {"student_std", "teacher_entropy", "distinct_rows", "loss"} <= set(metrics["last_epoch"])  # collapse monitors
    assert result["mean_over_seeds"]["pretrained"]["test"] == metrics["pretrained"]["test"]


def test_existing_run_is_refused_and_resume_reads_it_back(pretrained):
    out, result = pretrained
    with pytest.raises(RunExistsError, match="already holds a run"):
        pretrain(resolve_pretrain_config(TINY), out)
    again = pretrain(resolve_pretrain_config(TINY), out, resume=True)
    assert again["seeds"][0]["pretrained"] == result["seeds"][0]["pretrained"]


def test_checkpoint_keeps_the_memory_and_the_backbone_reloads(pretrained):
    out, result = pretrained
    ckpt = out / "seed-0" / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, weights_only=True)
    assert int(state["state_dict"]["model.memory.count"]) == 256 and "hetmem_pretrain" in state
    backbone, task = load_backbone(out)
    assert backbone.feature_dim == 8 and task.name == "digits"
    assert evaluate_frozen(ckpt)["test"]["knn_accuracy"] == pytest.approx(result["seeds"][0]["pretrained"]["test"]["knn_accuracy"])


def test_init_from_loads_the_pretrained_backbone_and_freeze_keeps_it(pretrained, tmp_path):
    out, _ = pretrained
    ckpt = out / "seed-0" / "checkpoints" / "last.ckpt"
    cfg = resolve_config({"task": "digits", "backbone": "cnn", "backbone_options": {"channels": [8, 8]}, "epochs": 1,
                          "per_class": 5, "batch_size": 16, "init_from": str(ckpt), "freeze_backbone": True,
                          "progress": False, "hma": {"queue_size": 16}})
    backbone, _ = load_backbone(ckpt)
    model = build_model(cfg, __import__("hetmem.data", fromlist=["load_task"]).load_task("digits"))
    for (name, a), b in zip(model.backbone.state_dict().items(), backbone.state_dict().values()):
        assert torch.equal(a, b), name
    assert not any(p.requires_grad for p in model.backbone.parameters())
    run = train(cfg, tmp_path / "ft")
    tuned = torch.load(tmp_path / "ft" / "seed-0" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    for name, value in backbone.state_dict().items():  # frozen: unchanged by training
        assert torch.equal(tuned[f"model.backbone.{name}"], value), name
    assert run.seeds[0].metrics["test"]["accuracy"] >= 0.0


def test_init_from_a_different_backbone_is_one_clear_error(pretrained):
    out, _ = pretrained
    cfg = resolve_config({"task": "digits", "backbone": "cnn", "init_from": str(out / "seed-0" / "checkpoints" / "last.ckpt")})
    with pytest.raises(CheckpointError, match="has backbone_options"):
        build_model(cfg, __import__("hetmem.data", fromlist=["load_task"]).load_task("digits"))


@pytest.mark.parametrize("layer, match", [
    ({"massl": {"memory_sise": 3}}, "unknown config field 'massl.memory_sise'"),
    ({"massl": {"block_size": 7}}, "config field 'massl'"),
    ({"epochs": 0}, "config field 'epochs'"),
    ({"method": "dino"}, "config field 'method'"),
])
def test_bad_pretrain_configs(layer, match):
    with pytest.raises(ConfigError, match=match):
        resolve_pretrain_config(TINY, layer)


def test_pretrain_cli_bad_task_kind_and_knn_cli(pretrained, tmp_path, capsys):
    assert main(["pretrain", "--task", "wine", "--out", str(tmp_path / "w")]) == 2
    assert "needs an image task" in capsys.readouterr().err
    out, _ = pretrained
    assert main(["evaluate", "--checkpoint", str(out), "--knn", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"val", "test"}
