"""Safe checkpoint files: atomic writes, ``weights_only`` loads, one clear error for a bad file."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import torch
import yaml
from lightning.fabric.plugins import CheckpointIO
from torch import nn

from hetmem.errors import CheckpointError

__all__ = [
    "AtomicCheckpointIO",
    "read_checkpoint",
    "check_compatible",
    "load_backbone_weights",
    "backbone_of",
    "load_weights",
    "find_checkpoints",
]

log = logging.getLogger(__name__)


def _seed_order(path: Path) -> tuple:
    match = re.search(r"seed-(\d+)", str(path))
    return (int(match.group(1)) if match else -1, str(path))


def _scores_last(folder: Path) -> bool:
    """Whether the run of ``RUN/seed-<s>/checkpoints`` was configured ``select: last`` (its final
    model, not its best-validation checkpoint, is the one it scored)."""
    config = folder.parents[1] / "config.yaml"
    saved = yaml.safe_load(config.read_text()) if config.is_file() else None
    return isinstance(saved, dict) and saved.get("select") == "last"


def find_checkpoints(path: str | Path, names: tuple[str, ...] = ("best.ckpt",)) -> list[Path]:
    """``[path]`` for a file; for a run (or seed) directory, one checkpoint per seed, in seed
    order: the first of ``names`` that exists in each ``checkpoints/`` folder (``last.ckpt``
    first for a run configured ``select: last``).

    Raises:
        CheckpointError: ``path`` does not exist, or a directory holds none of ``names``.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    if not path.is_dir():
        return [path]
    found = []
    for folder in sorted({p.parent for name in names for p in path.glob(f"**/checkpoints/{name}")}, key=_seed_order):
        wanted = ("last.ckpt", *names) if _scores_last(folder) else names
        found.append(next(folder / n for n in wanted if (folder / n).is_file()))
    if not found:
        raise CheckpointError(f"no checkpoints/{' or '.join(names)} under {str(path)!r}")
    return found


def _keys_summary(keys: list[str], limit: int = 3) -> str:
    shown = ", ".join(keys[:limit])
    return f"{len(keys)} ({shown}{', ...' if len(keys) > limit else ''})"


def load_weights(module: nn.Module, weights: dict[str, Any], *, where: str) -> None:
    """``module.load_state_dict(weights)``, or one CheckpointError that counts the missing,
    unexpected and mis-shaped keys and names the first few of each (``where`` names the file)."""
    ours = module.state_dict()
    missing = [k for k in ours if k not in weights]
    unexpected = [k for k in weights if k not in ours]
    shapes = [
        f"{k} {tuple(weights[k].shape)} vs {tuple(v.shape)}"
        for k, v in ours.items()
        if k in weights and hasattr(weights[k], "shape") and tuple(weights[k].shape) != tuple(v.shape)
    ]
    problems = [f"{label} {_keys_summary(keys)}" for label, keys in
                (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)) if keys]
    if problems:
        raise CheckpointError(f"{where} does not fit this model: " + "; ".join(problems))
    try:
        module.load_state_dict(weights)
    except RuntimeError as err:  # e.g. a dtype that cannot be copied
        raise CheckpointError(f"{where} does not fit this model: {str(err).strip().splitlines()[-1][:200]}") from None


def read_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Loads a checkpoint with ``weights_only=True`` (no code from the pickle is run).

    Raises:
        CheckpointError: the file is missing, truncated, corrupt, or not a checkpoint.
    """
    data = _load(Path(path), map_location)
    if not isinstance(data, dict) or "state_dict" not in data:
        raise CheckpointError(f"checkpoint {str(path)!r} is not a hetmem/Lightning checkpoint (no 'state_dict')")
    return data


def _load(path: Path, map_location: Any) -> Any:
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001  any failure to decode means the file is unusable
        text = str(err).strip()
        what = re.search(r"GLOBAL ([\w.]+)", text)
        if what:  # a pickle that names Python code; torch's advice to load it unsafely is never repeated
            raise CheckpointError(
                f"checkpoint {str(path)!r} holds Python objects besides tensors ({what.group(1)}), which could "
                "run code when loaded; hetmem loads tensors and plain data only, so this file cannot be used"
            ) from None
        advice = ("weights_only", "torch.load", "file an issue", "WeightsUnpickler error")
        lines = [line.strip() for line in text.splitlines() if line.strip() and not any(a in line for a in advice)]
        first = lines[0] if lines else type(err).__name__
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt or truncated ({first[:200]})") from None
    return data


def check_compatible(checkpoint: dict[str, Any], *, num_classes: int, feature_dim: int, variant: str, path: str = "") -> None:
    """Raises CheckpointError naming the first of class count, feature width, variant that differs."""
    meta = checkpoint.get("hetmem")
    where = f"checkpoint {path!r}" if path else "the checkpoint"
    if not isinstance(meta, dict):
        raise CheckpointError(f"{where} has no hetmem metadata; it was not written by hetmem train")
    theirs = {"num_classes": meta.get("num_classes"), "feature_dim": meta.get("feature_dim"), "variant": meta.get("config", {}).get("variant")}
    ours = {"num_classes": num_classes, "feature_dim": feature_dim, "variant": variant}
    for key in ours:
        if theirs[key] != ours[key]:
            raise CheckpointError(f"{where} has {key}={theirs[key]!r} but this model has {key}={ours[key]!r}")


_BACKBONE_PREFIXES = {"hetmem_pretrain": "model.student.backbone.", "hetmem": "model.backbone."}


def _backbone_source(path: str | Path, *, quiet: bool = False) -> tuple[Path, dict[str, Any], str]:
    """(file, its contents, "hetmem_pretrain" or "hetmem") of a checkpoint or run directory."""
    found = find_checkpoints(path, ("best.ckpt", "last.ckpt"))
    if Path(path).is_dir() and not quiet:
        log.info("init-from: %s%s", found[0], f" (the first of {len(found)} seeds)" if len(found) > 1 else "")
    state = read_checkpoint(found[0])
    kind = next((k for k in _BACKBONE_PREFIXES if isinstance(state.get(k), dict)), None)
    if kind is None:
        raise CheckpointError(f"checkpoint {str(found[0])!r} was written by neither hetmem pretrain nor hetmem train")
    return found[0], state, kind


def backbone_of(path: str | Path) -> dict[str, Any]:
    """``{"backbone": ..., "backbone_options": ...}`` of the model a checkpoint (or run directory)
    was trained with: what ``--init-from`` defaults to when no backbone is given."""
    _, state, kind = _backbone_source(path, quiet=True)
    cfg = state[kind].get("config", {})
    return {"backbone": cfg.get("backbone"), "backbone_options": dict(cfg.get("backbone_options", {}))}


def load_backbone_weights(module: Any, path: str | Path, *, backbone: str, options: dict[str, Any], input_shape: tuple) -> None:
    """Loads the backbone of a ``hetmem pretrain`` or ``hetmem train`` checkpoint into ``module``.

    ``path`` is a ``.ckpt`` file or a run directory: its ``best.ckpt`` (train) or ``last.ckpt``
    (pretrain), of the lowest seed when it holds several.

    Raises:
        CheckpointError: unreadable file, or a backbone of another name, options or input shape.
    """
    path, state, kind = _backbone_source(path)
    meta = state[kind]
    cfg = meta.get("config", {})
    theirs = {"backbone": cfg.get("backbone"), "backbone_options": cfg.get("backbone_options", {}), "input shape": tuple(meta.get("input_shape", ()))}
    ours = {"backbone": backbone, "backbone_options": options, "input shape": tuple(input_shape)}
    for key in ours:
        if theirs[key] != ours[key]:
            raise CheckpointError(f"checkpoint {str(path)!r} has {key} {theirs[key]!r} but this run uses {ours[key]!r}")
    prefix = _BACKBONE_PREFIXES[kind]
    weights = {k[len(prefix) :]: v for k, v in state["state_dict"].items() if k.startswith(prefix)}
    load_weights(module, weights, where=f"the backbone of checkpoint {str(path)!r}")


class AtomicCheckpointIO(CheckpointIO):
    """Lightning checkpoint I/O that never leaves a half-written file under a checkpoint's name.

    A save goes to a temporary file in the same directory, is flushed to disk, then renamed
    over the target (``os.replace`` is atomic on POSIX): a kill during the save leaves the
    previous checkpoint intact. Loads use ``weights_only=True``.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def load_checkpoint(self, path: str | Path, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        return _load(Path(path), map_location or "cpu")  # also Lightning's own files (e.g. ddp_spawn results)

    def remove_checkpoint(self, path: str | Path) -> None:
        Path(path).unlink(missing_ok=True)
