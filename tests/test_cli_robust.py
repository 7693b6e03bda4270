"""The hostile-input audit (issue 13), each finding reproduced through the command line: nothing
is lost, nothing hangs, every user-caused error is one line with the right exit code."""

import errno
import json
import logging
import re
from pathlib import Path

import pytest
import torch

from hetmem.cli import main

TOY = ["train", "--task", "_toy", "--backbone", "_toy_mlp", "--epochs", "1", "--batch-size", "16",
       "--set", "progress=false", "--set", "hma.queue_size=32", "--set", "hma.label_dim=8"]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error: " in err, err
    return err


def train(out, *extra) -> int:
    return main([*TOY, "--out", str(out), *extra])


# ----- 1. --overwrite replaces only a hetmem run, and only once the new run has finished ------
def test_overwrite_refuses_a_directory_that_is_not_a_run(tmp_path, capsys):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("x")
    assert train(precious, "--overwrite") == 2
    assert "is not a hetmem run directory" in one_error_line(capsys)
    assert (precious / "thesis.txt").read_text() == "x" and sorted(p.name for p in precious.iterdir()) == ["thesis.txt"]


def test_overwrite_refuses_a_run_directory_with_a_foreign_file_in_it(tmp_path, capsys):
    assert train(tmp_path / "r") == 0
    (tmp_path / "r" / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert train(tmp_path / "r", "--overwrite") == 2
    assert "'notes.txt', which hetmem does not write" in one_error_line(capsys)
    assert (tmp_path / "r" / "notes.txt").is_file()


def test_overwrite_replaces_a_run_and_keeps_the_old_one_when_the_new_one_fails(tmp_path, capsys):
    out = tmp_path / "r"
    assert train(out) == 0
    old = (out / "seed-0" / "metrics.json").read_bytes()
    assert train(out, "--overwrite", "--set", "optim.lr=1e30") == 3  # diverges
    assert "training diverged" in capsys.readouterr().err
    assert (tmp_path / "r.previous" / "seed-0" / "metrics.json").read_bytes() == old  # the old run is kept
    assert not (out / "seed-0" / "metrics.json").exists()
    assert train(out, "--overwrite", "--seeds", "1") == 0  # a run that finishes replaces it for good
    assert (out / "seed-1" / "metrics.json").is_file() and not (out / "seed-0").exists()
    assert not (tmp_path / "r.previous-2").exists() and (tmp_path / "r.previous").is_dir()  # only its own aside is deleted


def test_demo_refuses_an_out_holding_other_files_before_training_anything(tmp_path, capsys):
    (tmp_path / "hma").mkdir()
    (tmp_path / "hma" / "thesis.txt").write_text("x")
    assert main(["demo", "--out", str(tmp_path), "--epochs", "1"]) == 2
    assert "is not a hetmem run directory" in one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hma"]  # nothing trained, nothing deleted


def test_report_refuses_to_overwrite_a_file_it_did_not_write(tmp_path, capsys):
    store = tmp_path / "store.jsonl"
    store.write_text("")
    mine = tmp_path / "RESULTS.md"
    mine.write_text("# My results\n")
    args = ["report", "--store", str(store), "--out", str(mine), "--figures", str(tmp_path / "fig")]
    assert main(args) == 2
    assert "was not written by hetmem report; pass --overwrite" in one_error_line(capsys)
    assert mine.read_text() == "# My results\n"
    assert main([*args, "--overwrite"]) == 0 and mine.read_text().startswith("# Results\n")
    assert main(args) == 0  # its own earlier report is replaced without asking


# ----- 3. --devices is checked before anything is spawned -----------------------------------
def test_more_devices_than_the_machine_has_is_refused_before_any_write(tmp_path, capsys):
    assert train(tmp_path / "r", "--devices", "999") == 2
    assert re.search(r"config field 'devices': 999 processes asked for, but this machine has \d+ (CPU cores|GPUs)",
                     one_error_line(capsys))
    assert not (tmp_path / "r").exists()


# ----- 4. divergence stops the run, names the step, keeps the last good checkpoint ------------
def test_a_diverging_run_stops_with_exit_3_and_keeps_a_finite_checkpoint(tmp_path, capsys):
    out = tmp_path / "r"
    assert train(out, "--epochs", "3", "--set", "optim.lr=1e30", "--set", "checkpoint_every_n_steps=1") == 3
    err = one_error_line(capsys)
    assert re.search(r"^hetmem: error: training diverged at epoch 0, step \d+: ", err)
    last = out / "seed-0" / "checkpoints" / "last.ckpt"
    assert f"the last good checkpoint is kept in {last}" in err
    state = torch.load(last, weights_only=True)["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    assert not (out / "summary.json").exists()


def test_an_infinite_learning_rate_is_refused_by_the_config(tmp_path, capsys):
    assert train(tmp_path / "r", "--set", "optim.lr=.inf") == 2
    assert "config field 'optim.lr': Input should be a finite number" in one_error_line(capsys)
    assert not (tmp_path / "r").exists()


# ----- 5 and 6. one line for every user-caused error ----------------------------------------
@pytest.mark.parametrize("extra, match", [
    (["--set", "hma.slot_init_std=-1"], "config field 'hma.slot_init_std' must be >= 0"),
    (["--set", "hma.slot_init_std=abc"], "config field 'hma.slot_init_std': Input should be a valid number"),
    (["--set", "task_options.n_train=abc"], "config field 'task_options.n_train': Input should be a valid integer"),
    (["--set", "backbone_options.dropout=lots"], "config field 'backbone_options.dropout': Input should be a valid number"),
    (["--set", "hma.global_batch=maybe"], "config field 'hma.global_batch': Input should be a valid boolean"),
    (["--set", "hma.slots_per_class=100000000"], r"HMA's head and memories would need about [\d.]+ GB .* is free; lower hma.slots_per_class$"),
    (["--set", "hma.queue_size=100000000000"], r"HMA's head and memories would need about [\d.]+ GB .*queue [\d.]+ GB.* lower hma.queue_size$"),
    (["--set", "hma.label_dim=10000000"], r"HMA's head and memories would need about [\d.]+ GB \(attention blocks .* lower hma.label_dim or hma.head_dim$"),
])
def test_bad_values_are_one_line_naming_the_field(tmp_path, capsys, extra, match):
    assert train(tmp_path / "r", *extra) == 2
    assert re.search(match, one_error_line(capsys))
    assert not (tmp_path / "r").exists()


def test_a_huge_queue_size_in_a_config_file_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("hma: {queue_size: 1e20, label_dim: 8}\n")
    assert main([*TOY[:-4], "--config", str(cfg), "--out", str(tmp_path / "r")]) == 2
    assert "config field 'hma.queue_size'" in one_error_line(capsys)


def test_an_exponent_without_a_dot_is_a_float(tmp_path, capsys):
    assert train(tmp_path / "r", "--set", "hma.dropout=1e-1", "--set", "optim.lr=1e-2") == 0
    saved = (tmp_path / "r" / "config.yaml").read_text()
    assert "dropout: 0.1" in saved and "lr: 0.01" in saved


def test_out_that_is_a_file_or_under_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "f.txt").write_text("x")
    assert train(tmp_path / "f.txt") == 2
    assert "is a file, not a directory" in one_error_line(capsys)
    assert train(tmp_path / "f.txt" / "run") == 2
    assert "cannot write the run directory" in one_error_line(capsys) and (tmp_path / "f.txt").read_text() == "x"


def test_out_on_a_read_only_file_system_is_one_line(tmp_path, capsys, monkeypatch):
    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    assert train(tmp_path / "r") == 2
    assert "Read-only file system" in one_error_line(capsys)


def test_config_file_that_is_binary_or_a_directory_names_the_file(tmp_path, capsys):
    binary = tmp_path / "b.yaml"
    binary.write_bytes(bytes(range(256)))
    assert train(tmp_path / "r", "--config", str(binary)) == 2
    assert f"config file '{binary}' is not text" in one_error_line(capsys)
    assert train(tmp_path / "r", "--config", str(tmp_path)) == 2
    assert "is a directory; expected a YAML file" in one_error_line(capsys)


@pytest.mark.parametrize("seeds, match", [("-1", "seeds must be >= 0"), ("0,,1", "expected comma-separated integers")])
def test_bad_seeds_are_refused_before_anything_is_written(tmp_path, capsys, seeds, match):
    with pytest.raises(SystemExit) as exc:
        train(tmp_path / "r", "--seeds", seeds)
    assert exc.value.code == 2 and match in one_error_line(capsys)
    assert not (tmp_path / "r").exists()


def test_seeds_in_a_config_file_are_checked_too(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("seeds: [-1]\n")
    assert train(tmp_path / "r", "--config", str(cfg)) == 2
    assert "config field 'seeds.0'" in one_error_line(capsys)


@pytest.fixture(scope="module")
def two_seed_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r"
    assert main([*TOY, "--seeds", "0,1", "--out", str(out)]) == 0
    return out


def test_evaluate_bad_batch_size_blames_the_flag(two_seed_run, capsys):
    assert main(["evaluate", "--checkpoint", str(two_seed_run), "--eval-batch-size", "0"]) == 2
    assert "eval_batch_size must be a positive int, got 0" in one_error_line(capsys)


def test_evaluate_a_checkpoint_that_does_not_fit_summarises_the_keys(two_seed_run, tmp_path, capsys):
    ckpt = torch.load(two_seed_run / "seed-0" / "checkpoints" / "best.ckpt", weights_only=True)
    ckpt["state_dict"] = {k: v for k, v in ckpt["state_dict"].items() if ".rma." not in k}  # as if from another variant
    ckpt["state_dict"]["model.extra.weight"] = torch.zeros(1)
    torch.save(ckpt, tmp_path / "odd.ckpt")
    assert main(["evaluate", "--checkpoint", str(tmp_path / "odd.ckpt")]) == 2
    err = one_error_line(capsys)
    assert re.search(r"does not fit this model: missing keys \d+ \(head\.rma\.[\w.]+, [\w.]+, [\w.]+, \.\.\.\); "
                     r"unexpected keys 1 \(extra\.weight\)$", err), err
    assert len(err) < 400


def test_evaluate_a_malicious_pickle_never_suggests_loading_it_unsafely(tmp_path, capsys):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"state_dict": {}, "x": Evil()}, tmp_path / "evil.ckpt")
    assert main(["evaluate", "--checkpoint", str(tmp_path / "evil.ckpt")]) == 2
    err = one_error_line(capsys)
    assert "holds Python objects besides tensors" in err and "weights_only" not in err and "False" not in err


# ----- 7. --init-from takes a run directory, like evaluate ----------------------------------
def test_init_from_accepts_a_run_directory_and_takes_its_backbone(two_seed_run, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    no_backbone = [a for a in TOY if a not in ("--backbone", "_toy_mlp")]  # the checkpoint's backbone is used
    assert main([*no_backbone, "--out", str(tmp_path / "ft"), "--init-from", str(two_seed_run), "--freeze-backbone"]) == 0
    src = two_seed_run / "seed-0" / "checkpoints" / "best.ckpt"
    assert f"init-from: {src} (the first of 2 seeds)" in caplog.text
    a = torch.load(src, weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "ft" / "seed-0" / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
    backbone = [k for k in a if k.startswith("model.backbone.")]
    assert backbone and all(torch.equal(a[k], b[k]) for k in backbone)  # frozen: still the source's weights


# ----- 10. silent surprises ---------------------------------------------------------------
def test_resume_of_a_run_that_never_existed_is_refused(tmp_path, capsys):
    assert train(tmp_path / "nowhere", "--resume") == 2
    assert "nothing to resume" in one_error_line(capsys)
    assert not (tmp_path / "nowhere").exists()


def test_resume_needs_only_the_run_directory(two_seed_run, capsys):
    assert main(["train", "--out", str(two_seed_run), "--resume"]) == 0  # config.yaml is the base: no --task needed
    assert f"run directory: {two_seed_run}" in capsys.readouterr().out


def test_per_class_above_every_class_size_says_all_data_are_used(tmp_path, caplog):
    assert train(tmp_path / "r", "--per-class", "100000") == 0
    assert "per_class=100000 is at least the largest class (32 samples): all 96 training samples are used" in caplog.text


def test_evaluate_a_multi_seed_run_scores_every_seed_and_their_mean(two_seed_run, capsys):
    assert main(["evaluate", "--checkpoint", str(two_seed_run), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert set(results) == {"seed-0", "seed-1", "mean"}
    accs = [results[s]["test"]["accuracy"] for s in ("seed-0", "seed-1")]
    assert results["mean"]["test"]["accuracy"] == pytest.approx(sum(accs) / 2)
    assert main(["evaluate", "--checkpoint", str(two_seed_run / "seed-1")]) == 0
    assert f"checkpoint {two_seed_run / 'seed-1' / 'checkpoints' / 'best.ckpt'}:" in capsys.readouterr().out


def test_report_says_which_figures_it_skipped_and_why(tmp_path, caplog):
    row = {"key": "k", "experiment": "ablation", "tiny": False, "seed": 0, "finished_at": "2025-01-01T00:00:00",
           "cell": {"task": "digits", "backbone": "mlp", "variant": "hma", "v": 2}, "config": {"task": "digits", "epochs": 1},
           "machine": {"cores": 2, "cpu": "x", "torch_threads": 2}, "versions": {"torch": "2", "hetmem": "0"},
           "metrics": {"test": {"accuracy": 0.9}, "val": {"accuracy": 0.9}}, "checkpoint": str(tmp_path / "gone.ckpt")}
    (tmp_path / "s.jsonl").write_text(json.dumps(row) + "\n")
    assert main(["report", "--store", str(tmp_path / "s.jsonl"), "--out", str(tmp_path / "R.md"),
                 "--figures", str(tmp_path / "fig")]) == 0
    assert ("skipped the t-SNE and attention figures (tsne.png, attention.png): none of the 1 checkpoints the store "
            f"names exists here (first: {tmp_path / 'gone.ckpt'})") in caplog.text
