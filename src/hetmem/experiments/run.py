"""``run_experiment``: trains (or measures) every cell x seed of a named experiment that the
results store does not hold yet, and appends one row per finished run."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hetmem.experiments.grids import INFERENCE_BATCH_SIZES, Cell, Experiment, get_experiment
from hetmem.experiments.store import ResultsStore, cell_key, environment

__all__ = ["ExperimentRun", "PendingRun", "pending_runs", "run_experiment", "DEFAULT_STORE", "DEFAULT_WORK_DIR"]

log = logging.getLogger(__name__)

DEFAULT_STORE = Path("results") / "store.jsonl"
DEFAULT_WORK_DIR = Path("results") / "runs"


@dataclass
class ExperimentRun:
    experiment: str
    added: list[dict[str, Any]] = field(default_factory=list)  # rows written by this call
    skipped: int = 0  # runs the store already held


def _config(cell: Cell, seed: int):
    from hetmem.train.config import resolve_config

    return resolve_config(*cell.layers, {"seeds": [seed], "progress": False})


def _resumable(out: Path, cfg: Any) -> bool:
    """Whether ``out`` holds an interrupted run of ``cfg``. A run left by an earlier definition of
    the cell (its config differs) is deleted: the store, not this work directory, holds results."""
    from hetmem.train.rundir import config_differences

    if not (out / "config.yaml").is_file():
        return False
    differs = config_differences(out, cfg)
    if differs:
        log.warning("%s was run with another config (%s differs); starting it again", out, differs[0])
        shutil.rmtree(out)
        return False
    return True


def _train(cfg: Any, out: Path, tiny: bool = False) -> dict[str, Any]:
    """Trains one seed into ``out``; continues it from its last checkpoint if it was interrupted."""
    from hetmem.train.runner import train

    run = train(cfg, out, resume=_resumable(out, cfg))
    seed = run.seeds[0]
    ckpt = Path(seed.seed_dir) / "checkpoints" / "best.ckpt"
    return {"metrics": seed.metrics, "best_epoch": seed.best_epoch, "train_wall_s": seed.wall_s, "checkpoint": str(ckpt),
            "diagnostics": seed.diagnostics, "diagnostics_history": seed.diagnostics_history}


def _inference(cfg: Any, out: Path, tiny: bool) -> dict[str, Any]:
    from hetmem.experiments.inference import inference_study
    from hetmem.train.runner import load_trained

    row = _train(cfg, out, tiny)
    model, _, task, _ = load_trained(row["checkpoint"])
    sizes = (1, 8) if tiny else INFERENCE_BATCH_SIZES
    row["inference"] = inference_study(model, task, sizes, max_samples=32 if tiny else None)
    return row


def _efficiency(cfg: Any, out: Path, tiny: bool) -> dict[str, Any]:
    import torch

    from hetmem.experiments.efficiency import measure_efficiency

    device = "cuda" if torch.cuda.is_available() else "cpu"
    steps = {"steps": 2, "latency_repeats": 2} if tiny else {}
    return {"efficiency": measure_efficiency(cfg, device=device, **steps)}


def _massl(cell: Cell, seed: int, out: Path, tiny: bool, name: str, work_dir: Path, store_path: Path) -> tuple[Any, dict[str, Any]]:
    """A pretraining cell, or a low-shot cell on top of this seed's random-block pretraining."""
    from hetmem.train.pretrain import pretrain, resolve_pretrain_config

    if cell.params["stage"] == "pretrain":
        cfg = resolve_pretrain_config(*cell.layers, {"seeds": [seed], "progress": False})
        run = pretrain(cfg, out, resume=_resumable(out, cfg))
        s = run["seeds"][0]
        return cfg, {"pretrain": {"initial": s["initial"], "pretrained": s["pretrained"], "last_epoch": s["last_epoch"]}, "checkpoint": s["checkpoint"]}
    pre = {"stage": "pretrain", "task": cell.params["task"], "blocks": "random", **({"tiny": True} if tiny else {})}
    pre_dir = work_dir / name / cell_key(name, pre, seed)
    ckpt = pre_dir / f"seed-{seed}" / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        if not ResultsStore(store_path).has(cell_key(name, pre, seed)):
            raise RuntimeError(f"massl: the low-shot cell {cell.params} needs the pretraining run {pre} seed {seed} first ({ckpt})")
        # the store holds the pretraining but its files are gone (another machine, a clean clone):
        # pretraining is deterministic, so run it again for its checkpoint, adding no row
        log.info("massl: re-creating the pretraining checkpoint %s", ckpt)
        pre_cell = next(c for c in get_experiment(name).cells(tiny) if c.params == {k: v for k, v in pre.items() if k != "tiny"})
        pre_cfg = resolve_pretrain_config(*pre_cell.layers, {"seeds": [seed], "progress": False})
        pretrain(pre_cfg, pre_dir, resume=_resumable(pre_dir, pre_cfg))
    cfg = _config(Cell(cell.params, (*cell.layers, {"init_from": str(ckpt)})), seed)
    return cfg, _train(cfg, out, tiny)


def _select(exp: Experiment, cells: list[Cell], where: dict[str, str]) -> list[Cell]:
    if not where:
        return cells
    params = sorted({k for c in cells for k in c.params})
    unknown = sorted(set(where) - set(params))
    if unknown:
        raise ValueError(f"experiment {exp.name!r} has no cell parameter {unknown[0]!r}; expected one of {params}")
    chosen = [c for c in cells if all(str(c.params.get(k)) == str(v) for k, v in where.items())]
    if not chosen:
        values = {k: sorted({str(c.params.get(k)) for c in cells}) for k in where}
        raise ValueError(f"experiment {exp.name!r} has no cell with {where}; the values are {values}")
    return chosen


@dataclass(frozen=True)
class PendingRun:
    cell: Cell
    params: dict[str, Any]  # the cell's params as the store keys them
    seed: int
    key: str


def pending_runs(
    name: str,
    *,
    seeds: list[int] | None = None,
    store: str | Path | None = None,
    tiny: bool = False,
    where: dict[str, str] | None = None,
) -> tuple[list[PendingRun], int]:
    """The runs of experiment ``name`` that the store does not hold yet, in the order
    :func:`run_experiment` would run them, and how many it already holds. Runs nothing."""
    exp: Experiment = get_experiment(name)
    seeds = list(seeds) if seeds is not None else list(exp.seeds)
    done = ResultsStore(store or DEFAULT_STORE).keys()
    todo, skipped = [], 0
    for cell in _select(exp, exp.cells(tiny), where or {}):
        params = {**cell.params, **({"tiny": True} if tiny else {})}
        for seed in seeds:
            key = cell_key(name, params, seed)
            if key in done:
                skipped += 1
            else:
                todo.append(PendingRun(cell, params, seed, key))
    return todo, skipped


def _sequence(cfg: Any, out: Path, tiny: bool) -> dict[str, Any]:
    """Trains a sequence model, then makes its experiment's measurements (hetmem.experiments.mosaics)."""
    from hetmem.experiments.mosaics import sequence_study

    row = _train(cfg, out, tiny)
    row["study"] = sequence_study(row["checkpoint"], tiny)
    return row


_KINDS = {"train": _train, "inference": _inference, "efficiency": _efficiency, "sequence": _sequence}


def run_experiment(
    name: str,
    *,
    seeds: list[int] | None = None,
    store: str | Path | None = None,
    work_dir: str | Path | None = None,
    tiny: bool = False,
    where: dict[str, str] | None = None,
    device: str | None = None,
) -> ExperimentRun:
    """Runs what is missing of experiment ``name``.

    Args:
        name: an experiment of :data:`hetmem.experiments.grids.EXPERIMENTS`.
        seeds: override the experiment's seeds.
        store: the results file (default ``results/store.jsonl``).
        work_dir: where run directories (checkpoints, logs) go (default ``results/runs``).
        tiny: the two-cell, one-epoch version (tests); its rows are keyed apart from the real ones.
        where: run only the cells whose params match, e.g. ``{"task": "digits"}`` (values
            compared as text).
        device: where the ``rich`` grids train ("cpu", "cuda", default: CUDA when there is one).

    Returns:
        The rows added and how many runs were already in the store. A grid interrupted
        part-way continues where it stopped: finished runs are skipped, an interrupted run
        resumes from its last checkpoint.
    """
    exp: Experiment = get_experiment(name)
    todo, skipped = pending_runs(name, seeds=seeds, store=store, tiny=tiny, where=where)
    store = ResultsStore(store or DEFAULT_STORE)
    work_dir = Path(work_dir or DEFAULT_WORK_DIR)
    env = environment()
    result = ExperimentRun(name, skipped=skipped)
    if exp.kind == "rich":  # every seed of a cell trains at once (hetmem.experiments.rich)
        from hetmem.experiments.rich import run_rich

        result.added += run_rich(name, [r for r in todo if not store.has(r.key)], store, tiny=tiny, device=device, env=env)
        return result
    for run in todo:
        cell, params, seed, key = run.cell, run.params, run.seed, run.key
        if store.has(key):  # another process finished it since the plan was made
            result.skipped += 1
            continue
        log.info("%s: %s seed %d", name, params, seed)
        start = time.perf_counter()
        if exp.kind == "massl":
            cfg, row = _massl(cell, seed, work_dir / name / key, tiny, name, work_dir, store.path)
        else:
            cfg = _config(cell, seed)
            row = _KINDS[exp.kind](cfg, work_dir / name / key, tiny)
        row.update(
            key=key,
            experiment=name,
            cell=params,
            seed=seed,
            config=cfg.to_dict(),
            wall_s=time.perf_counter() - start,
            tiny=tiny,
            **env,
        )
        store.add(row)
        result.added.append(row)
    return result
