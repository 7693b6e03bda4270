import json

import pytest

from hetmem.cli import main


def test_bench_rma_json_prints_one_object(capsys):
    code = main(["bench", "rma", "--json", "--batch-size", "4", "--queue-size", "8", "--feature-dim", "8",
                 "--label-dim", "4", "--num-heads", "2", "--repeats", "1"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["max_abs_diff"] < 1e-5 and out["speedup"] > 0


def test_bad_bench_argument_is_one_line_and_exit_2(capsys):
    assert main(["bench", "rma", "--queue-size", "0"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "hetmem: error: --queue-size must be a positive int, got 0"


def test_unknown_command_exits_2():
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2


TOY = ["train", "--task", "_toy", "--backbone", "_toy_mlp", "--epochs", "1", "--batch-size", "16",
       "--set", "progress=false", "--set", "hma.queue_size=32", "--set", "hma.label_dim=8"]


def one_error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("hetmem: error: "), err
    return err


def test_train_prints_the_summary_table(tmp_path, capsys):
    assert main([*TOY, "--seeds", "0,1", "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "val accuracy" in out and "+-" in out and str(tmp_path / "r") in out


@pytest.mark.parametrize("extra, match", [
    (["--set", "epoch=3"], "unknown config field 'epoch'"),
    (["--set", "optim.lr=fast"], "config field 'optim.lr'"),
    (["--task", "nope"], "unknown task 'nope'"),
    (["--backbone", "nope"], "unknown backbone 'nope'"),
    (["--variant", "nope"], "variant must be one of"),
    (["--set", "task_options.corrupt=label"], r"labels must be in \[0, 3\)"),
    (["--set", "task_options.corrupt=nan"], "NaN or Inf"),
    (["--set", "hma.queue_size=-1"], "queue_size"),
    (["--set", "hma.queue_size=8"], "smaller than batch_size"),
    (["--set", "task_options.corrupt=empty"], "train split is empty"),
    (["--set", "task_options.corrupt=one-class"], "has 1 class; classification needs at least 2"),
    (["--set", "batch_size=0"], "config field 'batch_size'"),
    (["--epochs", "-3"], "config field 'epochs'"),
])
def test_train_bad_input_is_one_line_and_exit_2(tmp_path, capsys, extra, match):
    assert main([*TOY, *extra, "--out", str(tmp_path / "r")]) == 2
    assert __import__("re").search(match, one_error_line(capsys))
    assert not (tmp_path / "r").exists()


def test_train_refuses_to_overwrite_an_earlier_run(tmp_path, capsys):
    out = tmp_path / "r"
    assert main([*TOY, "--out", str(out)]) == 0
    before = (out / "seed-0" / "metrics.json").read_bytes()
    assert main([*TOY, "--out", str(out)]) == 2
    assert "already holds a run" in one_error_line(capsys)
    assert (out / "seed-0" / "metrics.json").read_bytes() == before


def test_train_missing_config_file_and_bad_yaml(tmp_path, capsys):
    assert main([*TOY, "--config", str(tmp_path / "none.yaml")]) == 2
    assert "does not exist" in one_error_line(capsys)
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1\n")
    assert main([*TOY, "--config", str(bad)]) == 2
    assert "not valid YAML" in one_error_line(capsys)


def test_bad_seeds_flag_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main([*TOY, "--seeds", "a,b"])
    assert exc.value.code == 2


def test_evaluate_json_and_bad_checkpoint(tmp_path, capsys):
    assert main([*TOY, "--out", str(tmp_path / "r")]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(tmp_path / "r"), "--eval-context", "single", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"val", "test"}
    (tmp_path / "junk.ckpt").write_bytes(b"junk")
    assert main(["evaluate", "--checkpoint", str(tmp_path / "junk.ckpt")]) == 2
    assert "corrupt or truncated" in one_error_line(capsys)


def test_missing_data_directory_names_the_file_to_fetch(tmp_path, capsys):
    code = main(["train", "--task", "cifar10", "--data-root", str(tmp_path / "nowhere"), "--epochs", "1",
                 "--set", "task_options.download=false", "--out", str(tmp_path / "r")])
    assert code == 2
    err = one_error_line(capsys)
    assert "cifar-10-python.tar.gz" in err and "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("where, match", [("task", "expected KEY=VALUE"), ("task=cifar", "no cell with")])
def test_experiment_bad_where_exits_2(tmp_path, capsys, where, match):
    args = ["experiment", "ablation", "--where", where, "--store", str(tmp_path / "s.jsonl")]
    try:
        code = main(args)
    except SystemExit as exc:  # argparse rejects a malformed KEY=VALUE itself
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert match in err[-1]


def test_experiment_plan_prints_the_missing_runs_and_writes_nothing(tmp_path, capsys):
    store = tmp_path / "s.jsonl"
    code = main(["experiment", "ablation", "--plan", "--seeds", "0", "--where", "task=digits",
                 "--store", str(store), "--work-dir", str(tmp_path / "runs")])
    assert code == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == "ablation: 5 runs to do, 0 already in the store"
    assert len(out) == 6 and all("'task': 'digits'" in line and line.endswith("seed 0") for line in out[:-1])
    assert not store.exists() and not (tmp_path / "runs").exists()
