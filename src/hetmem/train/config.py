"""The run configuration: YAML file + command-line overrides + per-task defaults, validated once.

Precedence (later wins): built-in defaults < the task's defaults (``TASK_DEFAULTS``, the
paper's sources scaled to 2 CPU cores) < the YAML file < command-line flags and ``--set``.
Every field is checked by pydantic; an unknown or ill-typed field is one :class:`ConfigError`
naming it.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import re
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from hetmem.errors import ConfigError
from hetmem.train.defaults import TASK_DEFAULTS

__all__ = ["ObjectiveConfig", "OptimConfig", "TrainConfig", "resolve_config", "load_yaml", "parse_overrides", "config_from_checkpoint"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)  # lr=.inf is refused


Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]  # numpy's seed range


class OptimConfig(_Strict):
    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)  # SGD only
    scheduler: Literal["none", "cosine", "linear", "step"] = "none"
    min_lr: float = Field(0.0, ge=0)  # where cosine and linear decay end
    step_size: int = Field(30, gt=0)  # epochs between decays, scheduler "step"
    gamma: float = Field(0.1, gt=0, le=1)  # decay factor, scheduler "step"
    warmup_epochs: int = Field(0, ge=0)  # linear warm-up before the schedule
    grad_clip: float | None = Field(None, gt=0)  # clip the global gradient norm


class ObjectiveConfig(_Strict):
    """The training objective over the task's environments (:mod:`hetmem.train.env_objectives`).

    ``erm`` with ``l2: 0`` is plain cross-entropy; any other objective needs a task with
    training environments (``colored-mnist``)."""

    name: str = "erm"  # erm | irmv1 | vrex | fishr | sd | iga | clove | groupdro | rerm
    penalty_weight: float = Field(0.0, ge=0)  # lambda after the anneal
    anneal_steps: int = Field(0, ge=0)  # optimiser steps trained with anneal_weight first
    anneal_weight: float = Field(1.0, ge=0)  # lambda before the anneal (1, as IRM's and RFC's code)
    risk: Literal["sum", "mean"] = "sum"  # sum of the environment losses (RFC) or their mean (IRM)
    l2: float = Field(0.0, ge=0)  # l2 * sum ||theta||^2 in the loss, biases included, divided by lambda with it (RFC)
    options: dict[str, Any] = Field(default_factory=dict)  # the objective's own: eta (groupdro), kernel_scale, max_rows (clove)

    @property
    def active(self) -> bool:
        return self.name != "erm" or self.l2 > 0


class TrainConfig(_Strict):
    """One training job: a task, a backbone, an HMA variant, and how to train them."""

    task: str  # a registered task (hetmem.data.list_tasks())
    backbone: str  # a registered backbone (hetmem.backbones.list_backbones())
    variant: str = "hma"  # none | param | rma | abd | abd+rma | abd+syn | hma
    seeds: list[Seed] = Field(default_factory=lambda: [0], min_length=1)
    epochs: int = Field(10, gt=0)
    batch_size: int = Field(64, gt=0)
    eval_batch_size: int | None = Field(None, gt=0)  # default: batch_size (SMA attends over eval batches)
    per_class: int | None = Field(None, gt=0)  # keep this many training samples per class
    task_options: dict[str, Any] = Field(default_factory=dict)  # the task loader's keyword options
    backbone_options: dict[str, Any] = Field(default_factory=dict)  # the backbone factory's keyword options
    hma: dict[str, Any] = Field(default_factory=dict)  # HMAConfig fields other than num_classes and variant, and "preset"
    optim: OptimConfig = Field(default_factory=OptimConfig)
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig)  # the loss over environments (default: cross-entropy)
    init_from: str | None = None  # start the backbone from a checkpoint (hetmem pretrain or hetmem train)
    freeze_backbone: bool = False  # keep the backbone fixed (eval mode, no gradient): a probe of its features
    val_every_n_epochs: int = Field(1, gt=0)  # validate (and select the model) every N epochs and at the end
    select: Literal["best", "last"] = "best"  # the model scored: best validation checkpoint, or the final model (a fixed step budget)
    limit_eval_batches: int | None = Field(None, gt=0)  # score only this many val/test batches (quick checks)
    checkpoint_every_n_steps: int | None = Field(None, gt=0)  # also save last.ckpt mid-epoch
    early_stopping_patience: int | None = Field(None, gt=0)  # epochs without a better val metric
    devices: int = Field(1, gt=0)  # processes (CPU) or GPUs; >1 runs torch.distributed (DDP)
    accelerator: Literal["auto", "cpu", "gpu", "cuda"] = "auto"
    data_root: str | None = None  # where download-only data sets live (default $HETMEM_DATA or ./data)
    progress: bool = True  # progress bar when attached to a terminal

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct, got {seeds}")
        return seeds

    def hma_config(self, num_classes: int):
        """The HMAConfig of this run."""
        from hetmem.models.hma import HMAConfig

        fields = dict(self.hma)
        preset = fields.pop("preset", "default")
        return HMAConfig.from_preset(preset, num_classes=num_classes, variant=self.variant, **fields)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# ----- validation helpers -----------------------------------------------------------------
def _format_error(err: ValidationError, prefix: str = "") -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in (prefix, *first["loc"]) if p != "") or "config"
    if first["type"] == "extra_forbidden":
        return f"unknown config field {where!r}"
    if first["type"] == "missing":
        return f"config field {where!r} is required"
    value = first.get("input")
    return f"config field {where!r}: {first['msg']} (got {value!r})"


def _typed(group: str, fields: dict[str, tuple[Any, Any]], values: dict[str, Any]) -> dict[str, Any]:
    """``values`` checked against ``fields`` (name -> (annotation, default)) and converted to
    their types (``"0.1"`` -> 0.1; ``"maybe"`` for a bool, ``"abc"`` for a float, NaN or Inf are
    refused); ConfigError names the first bad field as ``group.name``."""
    given = {k: fields[k] for k in values}
    model = create_model(f"{group}_options", __config__=ConfigDict(extra="forbid", allow_inf_nan=False), **given)
    try:
        return model(**values).model_dump()
    except ValidationError as err:
        raise ConfigError(_format_error(err, prefix=group)) from None


def _signature_fields(fn: Callable, skip: tuple[str, ...]) -> dict[str, tuple[Any, Any]]:
    """The keyword parameters of ``fn`` as pydantic fields (unannotated ones accept anything)."""
    try:
        params = inspect.signature(fn, eval_str=True).parameters.values()
    except NameError:  # an annotation that does not resolve: check names only
        params = inspect.signature(fn).parameters.values()
        return {p.name: (Any, p.default) for p in params if p.name not in skip}
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return {
        p.name: (Any if p.annotation is p.empty or isinstance(p.annotation, str) else p.annotation,
                 ... if p.default is p.empty else p.default)
        for p in params if p.kind in kinds and p.name not in skip
    }


def _check_hma(cfg: TrainConfig) -> None:
    from hetmem.models.hma import HMAConfig

    hints = typing.get_type_hints(HMAConfig)
    fields = {f.name: (hints[f.name], f.default) for f in dataclasses.fields(HMAConfig) if f.name not in ("num_classes", "variant")}
    fields["preset"] = (str, "default")  # a named set of fields (HMAConfig.from_preset), not a field itself
    unknown = sorted(set(cfg.hma) - set(fields))
    if unknown:
        raise ConfigError(f"unknown config field 'hma.{unknown[0]}'; HMA fields are {sorted(fields)}")
    cfg.hma = {**cfg.hma, **_typed("hma", fields, cfg.hma)}
    if cfg.hma.get("slot_init_std", 0.0) < 0:
        raise ConfigError(f"config field 'hma.slot_init_std' must be >= 0, got {cfg.hma['slot_init_std']}")
    try:
        hma = cfg.hma_config(num_classes=2)
    except (ValueError, TypeError) as err:
        raise ConfigError(str(err).replace("HMAConfig: ", "config field 'hma' or 'variant': ")) from None
    if hma.uses_queue and hma.queue_size < cfg.batch_size:
        raise ConfigError(
            f"config field 'hma.queue_size' ({hma.queue_size}) is smaller than batch_size ({cfg.batch_size}): "
            "each write would overwrite part of itself; use a queue of at least one batch (the paper uses 1-4 batches)"
        )


def _check_backbone(cfg: TrainConfig) -> None:
    from hetmem.backbones import list_backbones
    from hetmem.backbones.registry import _REGISTRY

    if cfg.backbone not in _REGISTRY:
        raise ConfigError(f"unknown backbone {cfg.backbone!r}; expected one of {list_backbones()}")
    factory = _REGISTRY[cfg.backbone].factory
    params = inspect.signature(factory).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return
    fields = _signature_fields(factory, ("spec",))
    unknown = sorted(set(cfg.backbone_options) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown config field 'backbone_options.{unknown[0]}' for backbone {cfg.backbone!r}; its options are {sorted(fields)}"
        )
    cfg.backbone_options = {**cfg.backbone_options, **_typed("backbone_options", fields, cfg.backbone_options)}


def _check_task(cfg: TrainConfig) -> None:
    from hetmem.data import task_options
    from hetmem.data.task import task_entry

    allowed = task_options(cfg.task)
    unknown = sorted(set(cfg.task_options) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown config field 'task_options.{unknown[0]}' for task {cfg.task!r}; its options are {sorted(allowed)}")
    fields = _signature_fields(task_entry(cfg.task).loader, ("root", "seed", "per_class"))
    cfg.task_options = {**cfg.task_options, **_typed("task_options", fields, cfg.task_options)}


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class _Loader(yaml.SafeLoader):
    """YAML 1.1 (PyYAML) reads ``1e-1`` and ``1.0e5`` as strings; YAML 1.2 and every user read
    them as floats. This loader adds that one rule."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506  a SafeLoader subclass


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Reads a YAML config file into a dict; ConfigError for a missing, unreadable or non-YAML file."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {str(path)!r} is a directory; expected a YAML file")
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = _yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"config file {str(path)!r} is not text (not UTF-8); expected a YAML file") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"config file {str(path)!r} is not valid YAML{where}: {getattr(err, 'problem', err)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of fields, got {type(data).__name__}")
    return data


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["optim.lr=0.01", "hma.queue_size=256"]`` -> nested dict; values parsed as YAML scalars
    (``1e-3`` is a float)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE (e.g. optim.lr=0.01), got {item!r}")
        try:
            value = _yaml(raw) if raw else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {part!r} is not a group of fields")
        node[parts[-1]] = value
    return out


def resolve_config(*layers: dict[str, Any]) -> TrainConfig:
    """Merges ``layers`` (later wins) over the task's defaults and validates the result.

    With ``init_from`` and no ``backbone``, the backbone and its options are the checkpoint's.

    Raises:
        ConfigError: an unknown, missing or ill-typed field, an unknown task, backbone,
            variant, task option, backbone option or HMA field.
        CheckpointError: ``init_from`` names no readable hetmem checkpoint.
    """
    user: dict[str, Any] = {}
    for layer in layers:
        user = _merge(user, layer)
    task = user.get("task")
    if not task:
        raise ConfigError("config field 'task' is required (e.g. --task digits)")
    if not isinstance(task, str):
        raise ConfigError(f"config field 'task' must be a string, got {task!r}")
    from hetmem.data.task import task_entry

    task_entry(task)  # an unknown task is named before anything else
    if isinstance(user.get("init_from"), str) and "backbone" not in user:  # the checkpoint's backbone, not the task's default
        from hetmem.train.checkpoint import backbone_of

        user = _merge(backbone_of(user["init_from"]), user)
    defaults = TASK_DEFAULTS.get(task, {})
    backbone = user.get("backbone", defaults.get("backbone"))
    per_backbone = defaults.get("per_backbone", {}).get(backbone, {}) if isinstance(backbone, str) else {}
    base = {k: v for k, v in defaults.items() if k != "per_backbone"}
    merged = _merge(_merge(base, per_backbone), user)
    try:
        cfg = TrainConfig(**merged)
    except ValidationError as err:
        raise ConfigError(_format_error(err)) from None
    _check_task(cfg)
    from hetmem.train.sequence_models import check_model_for_task

    if check_model_for_task(cfg, task_entry(task).kind):  # a sequence task: its own models, no HMA
        return cfg
    _check_backbone(cfg)
    _check_hma(cfg)
    _check_objective(cfg)
    return cfg


def _check_objective(cfg: TrainConfig) -> None:
    from hetmem.train.env_objectives import create_objective

    o = cfg.objective
    try:
        create_objective(o.name, penalty_weight=o.penalty_weight, anneal_steps=o.anneal_steps, anneal_weight=o.anneal_weight,
                         risk=o.risk, **o.options)
    except ValueError as err:
        raise ConfigError(f"config field 'objective': {err}") from None


def config_from_checkpoint(data: dict[str, Any]) -> TrainConfig:
    try:
        return TrainConfig(**data)
    except ValidationError as err:
        raise ConfigError(f"the checkpoint's config is invalid: {_format_error(err)}") from None
