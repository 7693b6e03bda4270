"""Safe checkpoint files: atomic writes, ``weights_only`` loads, one clear error for a bad file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins import CheckpointIO

from hetmem.errors import CheckpointError

__all__ = ["AtomicCheckpointIO", "read_checkpoint", "check_compatible", "load_backbone_weights"]


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
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
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


def load_backbone_weights(module: Any, path: str | Path, *, backbone: str, options: dict[str, Any], input_shape: tuple) -> None:
    """Loads the backbone of a ``hetmem pretrain`` or ``hetmem train`` checkpoint into ``module``.

    Raises:
        CheckpointError: unreadable file, or a backbone of another name, options or input shape.
    """
    state = read_checkpoint(path)
    kind = next((k for k in _BACKBONE_PREFIXES if isinstance(state.get(k), dict)), None)
    if kind is None:
        raise CheckpointError(f"checkpoint {str(path)!r} was written by neither hetmem pretrain nor hetmem train")
    meta = state[kind]
    cfg = meta.get("config", {})
    theirs = {"backbone": cfg.get("backbone"), "backbone_options": cfg.get("backbone_options", {}), "input shape": tuple(meta.get("input_shape", ()))}
    ours = {"backbone": backbone, "backbone_options": options, "input shape": tuple(input_shape)}
    for key in ours:
        if theirs[key] != ours[key]:
            raise CheckpointError(f"checkpoint {str(path)!r} has {key} {theirs[key]!r} but this run uses {ours[key]!r}")
    prefix = _BACKBONE_PREFIXES[kind]
    weights = {k[len(prefix) :]: v for k, v in state["state_dict"].items() if k.startswith(prefix)}
    try:
        module.load_state_dict(weights)
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint {str(path)!r}: its backbone weights do not fit ({str(err).splitlines()[0]})") from None


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
