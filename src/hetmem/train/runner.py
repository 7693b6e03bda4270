"""``train`` and ``evaluate``: library functions behind ``hetmem train`` / ``hetmem evaluate``.

A run directory holds one configuration trained with one or more seeds::

    OUT/config.yaml                 the resolved configuration
    OUT/seed-<s>/metrics.json       final metrics of that seed (best validation checkpoint, or the
                                    final model with ``select: last``)
    OUT/seed-<s>/checkpoints/       best.ckpt (model selection) and last.ckpt (resume)
    OUT/seed-<s>/logs/metrics.csv   per-epoch curves (Lightning CSVLogger)
    OUT/summary.json                mean and std over seeds
"""

from __future__ import annotations

import json
import logging
import signal
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hetmem.errors import CheckpointError, ConfigError, DivergedError
from hetmem.train.config import TrainConfig, config_from_checkpoint
from hetmem.train.rundir import run_directory

__all__ = [
    "SeedResult",
    "RunResult",
    "build_classifier",
    "build_model",
    "default_out_dir",
    "evaluate",
    "find_checkpoint",
    "check_run_devices",
    "load_trained",
    "read_trained",
    "restore_model",
    "summarize",
    "train",
]

log = logging.getLogger(__name__)


@dataclass
class SeedResult:
    seed: int
    metrics: dict[str, dict[str, float]]  # split ("val", test names, "test_mean") -> metric -> value
    best_epoch: int | None
    wall_s: float
    seed_dir: str
    diagnostics: dict[str, float] = field(default_factory=dict)  # retrieval diagnostics on val, best checkpoint
    diagnostics_history: list[dict[str, float]] = field(default_factory=list)  # the same after every validation epoch


@dataclass
class RunResult:
    config: TrainConfig
    out_dir: Path
    seeds: list[SeedResult] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def default_out_dir(cfg: TrainConfig) -> Path:
    return Path("runs") / cfg.task / f"{cfg.backbone}-{cfg.variant}"


def _is_sequence(cfg: TrainConfig) -> bool:
    from hetmem.data.task import task_entry

    return task_entry(cfg.task).kind == "sequence"


def _module_class(cfg: TrainConfig):
    """The LightningModule of ``cfg``'s kind of task."""
    if _is_sequence(cfg):
        from hetmem.train.sequence import SequenceModule

        return SequenceModule
    from hetmem.train.module import ClassifierModule

    return ClassifierModule


def build_model(cfg: TrainConfig, task: Any):
    """The HMAClassifier of ``cfg`` for ``task`` (backbone from the registry + HMA head), or the
    sequence model of a sequence task (:mod:`hetmem.train.sequence_models`)."""
    if _is_sequence(cfg):
        from hetmem.train.sequence_models import create_task_model

        return create_task_model(cfg.backbone, cfg.backbone_options, objective=task.objective, vocab_size=task.vocab_size, max_len=task.max_len)
    return build_classifier(cfg, task.input_spec, task.num_classes)


def build_classifier(cfg: TrainConfig, spec: Any, num_classes: int):
    """The HMAClassifier of ``cfg`` for inputs ``spec`` (an InputSpec) and ``num_classes``."""
    from hetmem.backbones import create_backbone
    from hetmem.models.hma import HMAClassifier

    try:
        backbone = create_backbone(cfg.backbone, spec, **cfg.backbone_options)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"backbone {cfg.backbone!r}: {err}") from None
    if cfg.init_from:
        from hetmem.train.checkpoint import load_backbone_weights

        load_backbone_weights(backbone, cfg.init_from, backbone=cfg.backbone, options=cfg.backbone_options, input_shape=spec.shape)
    if cfg.freeze_backbone:
        backbone.requires_grad_(False)
    hma = cfg.hma_config(num_classes)
    from hetmem.train.memory_budget import check_hma_memory

    check_hma_memory(backbone.feature_dim, hma, max(cfg.batch_size, cfg.eval_batch_size or 0), cfg.accelerator)
    return HMAClassifier(backbone, hma)


def _load_task(cfg: TrainConfig, seed: int, data_root: str | None = None):
    from hetmem.data import load_task

    return load_task(cfg.task, root=data_root or cfg.data_root, seed=seed, per_class=cfg.per_class, **cfg.task_options)


def _with_test_mean(results: dict[str, dict[str, float]], test_names: list[str], worst_of: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Adds "test_mean": the mean of every metric over the test splits, when there are several,
    and "test_worst": the minimum over the splits ``worst_of`` (a task's ``info["worst_of"]``,
    e.g. RFC's metric on Colored MNIST)."""
    if len(test_names) > 1:
        keys = results[test_names[0]].keys()
        results["test_mean"] = {k: statistics.fmean(results[n][k] for n in test_names) for k in keys}
    if worst_of and all(n in results for n in worst_of):
        results["test_worst"] = {k: min(results[n][k] for n in worst_of) for k in results[worst_of[0]]}
    return results


def _worst_of(task: Any) -> list[str] | None:
    return getattr(task, "info", {}).get("worst_of")


def check_run_devices(cfg: Any) -> None:
    """ConfigError when ``cfg.devices`` exceeds the CPU cores or GPUs of this machine."""
    from hetmem.processes import check_devices

    try:
        check_devices(cfg.devices, cfg.accelerator)
    except ValueError as err:
        raise ConfigError(f"config field 'devices': {err}") from None


def _last_step(ckpt: Path) -> int | None:
    """The global step of the checkpoint a fit resumes from (None: a fresh fit)."""
    if not ckpt.is_file():
        return None
    from hetmem.train.checkpoint import read_checkpoint

    return int(read_checkpoint(ckpt).get("global_step", 0))


def _fit(trainer: Any, module: Any, resume_from: Path) -> None:
    """``trainer.fit`` from ``resume_from`` if it exists. Ctrl-C raises KeyboardInterrupt (Lightning
    itself exits with code 1 and no message); a diverged run names its last good checkpoint."""
    try:
        trainer.fit(module, ckpt_path=str(resume_from) if resume_from.is_file() else None)
    except SystemExit:
        if trainer.interrupted:
            signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning left Ctrl-C ignored
            raise KeyboardInterrupt from None
        raise
    except DivergedError as err:
        kept = f"the last good checkpoint is kept in {resume_from}" if resume_from.is_file() else "no checkpoint was saved before it"
        raise DivergedError(f"{err}; {kept}") from None


def _trainer(cfg: Any, seed_dir: Path | None, callbacks: list, *, fit: bool, resumed_step: int | None = None):
    """A Lightning Trainer for a TrainConfig or PretrainConfig (same run-level fields)."""
    import lightning.pytorch as pl

    from hetmem.train.checkpoint import AtomicCheckpointIO
    from hetmem.train.guards import ResumableCSVLogger

    progress = cfg.progress and fit and sys.stderr.isatty()
    if progress:
        from lightning.pytorch.callbacks import RichProgressBar

        callbacks = [*callbacks, RichProgressBar(leave=False)]
    # Several processes: spawned by Lightning (gloo on CPU, NCCL on GPUs). Its other launcher
    # re-executes the command line once per rank, which would re-run the CLI's run-directory
    # logic in every process; spawning keeps one parent that owns the directory.
    devices = cfg.devices if fit else 1
    strategy = "ddp_spawn" if devices > 1 else "auto"
    if devices > 1:
        from hetmem.train.guards import DieWithParent

        callbacks = [*callbacks, DieWithParent()]
    return pl.Trainer(
        max_epochs=cfg.epochs,
        accelerator="gpu" if cfg.accelerator == "cuda" else cfg.accelerator,
        devices=devices,
        strategy=strategy,
        callbacks=callbacks,
        logger=ResumableCSVLogger(str(seed_dir), name="logs", version="", keep_before_step=resumed_step) if (fit and seed_dir) else False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        enable_checkpointing=fit,
        plugins=[AtomicCheckpointIO()],
        gradient_clip_val=cfg.optim.grad_clip if hasattr(cfg, "optim") else None,
        num_sanity_val_steps=0,
        check_val_every_n_epoch=getattr(cfg, "val_every_n_epochs", 1),
        limit_val_batches=getattr(cfg, "limit_eval_batches", None) or 1.0,
        limit_test_batches=getattr(cfg, "limit_eval_batches", None) or 1.0,
        log_every_n_steps=1,
        default_root_dir=str(seed_dir) if seed_dir else None,
    )


def _quiet_lightning() -> None:
    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*dataloader is not resumable.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")  # the momentum encoder, on purpose


def _train_seed(cfg: TrainConfig, seed: int, seed_dir: Path) -> SeedResult:
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from hetmem.train.checkpoint import load_weights, read_checkpoint

    start = time.perf_counter()
    pl.seed_everything(seed, workers=True, verbose=False)
    task = _load_task(cfg, seed)
    module = _module_class(cfg)(build_model(cfg, task), cfg, task, seed)
    metric, mode = f"val/{task.metric}", getattr(task, "metric_mode", "max")
    ckpt_dir = seed_dir / "checkpoints"
    best = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=metric, mode=mode, save_top_k=1, enable_version_counter=False)
    last = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="last",
        save_top_k=0,
        save_last=True,
        every_n_train_steps=cfg.checkpoint_every_n_steps or 0,
        enable_version_counter=False,
    )
    callbacks: list = [best, last]
    if cfg.early_stopping_patience:
        callbacks.append(EarlyStopping(monitor=metric, mode=mode, patience=cfg.early_stopping_patience))
    resume_from = ckpt_dir / "last.ckpt"
    trainer = _trainer(cfg, seed_dir, callbacks, fit=True, resumed_step=_last_step(resume_from))
    _fit(trainer, module, resume_from)

    best_path = Path(best.best_model_path) if best.best_model_path and cfg.select == "best" else resume_from
    state = read_checkpoint(best_path)
    load_weights(module.model, _model_weights(state), where=f"checkpoint {str(best_path)!r}")
    module.results.clear()
    evaluator = _trainer(cfg, None, [], fit=False)
    evaluator.validate(module, verbose=False)
    evaluator.test(module, verbose=False)
    metrics = _with_test_mean(dict(module.results), module.test_names if not _is_sequence(cfg) else [], _worst_of(task))
    result = SeedResult(
        seed, metrics, state.get("epoch"), time.perf_counter() - start, str(seed_dir),
        getattr(module, "diagnostics", {}), getattr(module, "diagnostics_history", []),
    )
    (seed_dir / "metrics.json").write_text(json.dumps(result.__dict__, indent=2))
    return result


def summarize(results: list[SeedResult]) -> dict[str, dict[str, dict[str, float]]]:
    """split -> metric -> {"mean", "std", "n"} over seeds (std is 0.0 for a single seed)."""
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for split in results[0].metrics:
        summary[split] = {}
        for metric in results[0].metrics[split]:
            values = [r.metrics[split][metric] for r in results]
            summary[split][metric] = {
                "mean": statistics.fmean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "n": len(values),
            }
    return summary


def _model_weights(state: dict[str, Any]) -> dict[str, Any]:
    return {k.removeprefix("model."): v for k, v in state["state_dict"].items()}


def train(cfg: TrainConfig, out: str | Path | None = None, *, overwrite: bool = False, resume: bool = False) -> RunResult:
    """Trains ``cfg`` once per seed and returns per-seed metrics and their summary.

    The task and model are built (and every input error raised) before anything is written.
    With ``resume``, seeds that finished are read back and an interrupted seed continues from
    its ``last.ckpt``; otherwise an existing run directory is refused unless ``overwrite``.

    ``overwrite`` replaces only a hetmem run directory, and deletes the old run only once the new
    one has finished (see :mod:`hetmem.train.rundir`).

    Raises:
        ConfigError, DataNotFoundError, DataError: bad input (nothing is written).
        RunExistsError, RunDirError: ``out`` holds an earlier run, or cannot be used.
        DivergedError: the loss or the weights became NaN or Inf (the last good checkpoint is kept).
        KeyboardInterrupt: Ctrl-C; continue with ``resume``.
    """
    _quiet_lightning()
    out = Path(out) if out is not None else default_out_dir(cfg)
    build_model(cfg, _load_task(cfg, cfg.seeds[0]))  # every input error surfaces here, before any write
    check_run_devices(cfg)
    with run_directory(out, cfg, overwrite=overwrite, resume=resume):
        result = RunResult(cfg, out)
        for seed in cfg.seeds:
            seed_dir = out / f"seed-{seed}"
            done = seed_dir / "metrics.json"
            if resume and done.is_file():
                result.seeds.append(SeedResult(**json.loads(done.read_text())))
                log.info("seed %d: finished earlier, read back from %s", seed, done)
                continue
            log.info("seed %d: training %s / %s / %s", seed, cfg.task, cfg.backbone, cfg.variant)
            result.seeds.append(_train_seed(cfg, seed, seed_dir))
        result.summary = summarize(result.seeds)
        (out / "summary.json").write_text(json.dumps({"config": cfg.to_dict(), "summary": result.summary}, indent=2))
    return result


def find_checkpoint(path: str | Path) -> Path:
    """``path`` itself, or the ``checkpoints/best.ckpt`` of the lowest seed under a run directory
    (:func:`hetmem.train.checkpoint.find_checkpoints` lists every seed's)."""
    from hetmem.train.checkpoint import find_checkpoints

    return find_checkpoints(path)[0]


def read_trained(
    checkpoint: str | Path, *, overrides: dict[str, Any] | None = None
) -> tuple[Path, dict[str, Any], TrainConfig, int]:
    """Reads a checkpoint written by :func:`train` and its config, with ``overrides`` applied.

    Returns:
        ``(path, state, config, seed)``: the file read (a run directory's first best.ckpt),
        the checkpoint dict, the resolved config (one device), the seed it was trained with.

    Raises:
        CheckpointError: missing, corrupt, or not from hetmem; ConfigError: bad overrides.
    """
    from hetmem.train.checkpoint import check_compatible, load_weights, read_checkpoint

    path = find_checkpoint(checkpoint)
    state = read_checkpoint(path)
    meta = state.get("hetmem")
    if not isinstance(meta, dict) or "config" not in meta:
        raise CheckpointError(f"checkpoint {str(path)!r} has no hetmem metadata; it was not written by hetmem train")
    data = dict(meta["config"])
    for key, value in (overrides or {}).items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    data["devices"] = 1
    cfg = config_from_checkpoint(data)
    cfg.hma_config(2)  # validates the overrides
    return path, state, cfg, meta.get("seed", 0)


def restore_model(state: dict[str, Any], cfg: TrainConfig, spec: Any, num_classes: int, path: Path):
    """The checkpoint's HMAClassifier (queue and momentum encoder included), in eval mode.

    The backbone is built without ``init_from``: its weights come from the checkpoint, so the
    pretraining checkpoint it started from need not exist any more.
    """
    from hetmem.train.checkpoint import check_compatible, load_weights

    model = build_classifier(cfg.model_copy(update={"init_from": None}), spec, num_classes)
    check_compatible(state, num_classes=num_classes, feature_dim=model.head.feature_dim, variant=cfg.variant, path=str(path))
    load_weights(model, _model_weights(state), where=f"checkpoint {str(path)!r}")
    return model.eval()


def load_trained(
    checkpoint: str | Path,
    *,
    overrides: dict[str, Any] | None = None,
    data_root: str | None = None,
) -> tuple[Any, TrainConfig, Any, int]:
    """Rebuilds a model trained by :func:`train` and loads its weights (queue and EMA included).

    For predictions without the task's data, use :func:`hetmem.load_trained`.

    Args:
        checkpoint: a ``.ckpt`` written by :func:`train`, or a run/seed directory.
        overrides: config fields to change first (e.g. ``{"hma": {"eval_context": "single"}}``).
        data_root: where download-only data sets live.

    Returns:
        ``(model, config, task, seed)``; the model is in eval mode.

    Raises:
        CheckpointError: missing, corrupt, not from hetmem, or from a different model.
    """
    path, state, cfg, seed = read_trained(checkpoint, overrides=overrides)
    task = _load_task(cfg, seed, data_root)
    if _is_sequence(cfg):  # a sequence model's weights are checked by loading them
        from hetmem.train.checkpoint import load_weights

        model = build_model(cfg, task)
        load_weights(model, _model_weights(state), where=f"checkpoint {str(path)!r}")
        return model.eval(), cfg, task, seed
    return restore_model(state, cfg, task.input_spec, task.num_classes, path), cfg, task, seed


def evaluate(
    checkpoint: str | Path,
    *,
    eval_context: str | None = None,
    eval_batch_size: int | None = None,
    data_root: str | None = None,
) -> dict[str, dict[str, float]]:
    """Re-scores a saved model on its task's validation and test splits.

    Args:
        checkpoint: a ``.ckpt`` written by :func:`train`, or a run/seed directory (its
            ``best.ckpt`` is used).
        eval_context: override HMA's ``eval_context`` ("batch" or "single").
        eval_batch_size: override the evaluation batch size (SMA's batch context sees it).
        data_root: where download-only data sets live.

    Returns:
        split -> metric -> value.
    """
    _quiet_lightning()
    if eval_batch_size is not None and (isinstance(eval_batch_size, bool) or not isinstance(eval_batch_size, int) or eval_batch_size <= 0):
        raise ConfigError(f"eval_batch_size must be a positive int, got {eval_batch_size!r}")
    overrides: dict[str, Any] = {}
    if eval_context is not None:
        overrides["hma"] = {"eval_context": eval_context}
    if eval_batch_size is not None:
        overrides["eval_batch_size"] = eval_batch_size
    model, cfg, task, seed = load_trained(checkpoint, overrides=overrides, data_root=data_root)
    module = _module_class(cfg)(model, cfg, task, seed)
    trainer = _trainer(cfg, None, [], fit=False)
    trainer.validate(module, verbose=False)
    trainer.test(module, verbose=False)
    return _with_test_mean(dict(module.results), module.test_names if not _is_sequence(cfg) else [], _worst_of(task))
