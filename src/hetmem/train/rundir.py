"""Run directories of ``hetmem train`` / ``hetmem pretrain``: created, resumed, or replaced
without ever deleting what is not a hetmem run, and without losing the old run before the new
one has finished.

A run directory holds ``config.yaml``, ``summary.json`` and one ``seed-<s>/`` per seed, nothing
else; only such a directory may be replaced (``overwrite``). The old run is first renamed to a
sibling ``<name>.previous`` and deleted once the new run has finished; if the new run fails or
is interrupted, the old one stays there (a warning names it).
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from hetmem.errors import RunDirError, RunExistsError

__all__ = ["config_differences", "is_run_dir", "not_a_run_reason", "check_replaceable", "run_directory"]

log = logging.getLogger(__name__)

_SEED_DIR = re.compile(r"seed-\d+")
_RUN_FILES = {"config.yaml", "summary.json"}


def config_differences(out: Path, cfg: Any) -> list[str]:
    """The fields (seeds aside) in which the run saved in ``out`` differs from ``cfg``, sorted."""
    saved = yaml.safe_load((Path(out) / "config.yaml").read_text()) or {}
    mine = cfg.to_dict()
    return sorted(k for k in set(saved) | set(mine) if k != "seeds" and saved.get(k) != mine.get(k))


def not_a_run_reason(path: Path) -> str | None:
    """Why ``path`` (an existing, non-empty directory) is not a hetmem run directory, or None."""
    config = path / "config.yaml"
    try:
        saved = yaml.safe_load(config.read_text()) if config.is_file() else None
    except (yaml.YAMLError, UnicodeDecodeError, OSError):
        saved = None
    if not isinstance(saved, dict) or "task" not in saved:
        return "it has no config.yaml written by hetmem"
    for entry in sorted(path.iterdir()):
        ok = entry.name in _RUN_FILES if entry.is_file() else (entry.is_dir() and _SEED_DIR.fullmatch(entry.name))
        if not ok:
            return f"it holds {entry.name!r}, which hetmem does not write"
    return None


def is_run_dir(path: str | Path) -> bool:
    """True for a directory that holds exactly what a hetmem run writes (see the module doc)."""
    path = Path(path)
    return path.is_dir() and not_a_run_reason(path) is None


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def check_replaceable(out: str | Path) -> None:
    """Raises unless ``out`` is absent, an empty directory, or a hetmem run directory."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out {str(out)!r} is a file, not a directory; choose another --out")
    if out.is_dir() and not _is_empty_dir(out):
        reason = not_a_run_reason(out)
        if reason:
            raise RunDirError(
                f"{str(out)!r} is not a hetmem run directory ({reason}): hetmem neither replaces nor "
                "resumes it; choose another --out"
            )


def _aside(out: Path) -> Path:
    """A free sibling name for the run being replaced."""
    for n in range(1, 1000):
        candidate = out.with_name(f"{out.name}.previous" + ("" if n == 1 else f"-{n}"))
        if not candidate.exists():
            return candidate
    raise RunDirError(f"cannot move the run in {str(out)!r} aside: {out.name}.previous to -999 all exist")


def _prepare(out: Path, cfg: Any, *, overwrite: bool, resume: bool) -> Path | None:
    """Makes ``out`` ready for ``cfg``; returns where a replaced run was moved, if any."""
    check_replaceable(out)  # also refuses to resume or replace a directory hetmem did not write
    has_run = out.is_dir() and not _is_empty_dir(out)
    if resume:
        if not has_run:
            raise RunDirError(f"nothing to resume: {str(out)!r} holds no run; drop --resume to start a new one")
        differs = config_differences(out, cfg)
        if differs:
            raise RunExistsError(f"cannot resume {out}: its config differs in {differs[0]!r}; use another --out")
        return None
    previous = None
    if has_run:
        if not overwrite:
            raise RunExistsError(f"{out} already holds a run; pass --overwrite to replace it or --resume to continue it")
        previous = _aside(out)
        out.rename(previous)
        log.info("moved the run in %s aside to %s; it is deleted when the new run finishes", out, previous)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    except OSError as err:
        if previous is not None:
            shutil.rmtree(out, ignore_errors=True)
            previous.rename(out)
        raise RunDirError(f"cannot write the run directory {str(out)!r}: {err.strerror or err}") from None
    return previous


@contextmanager
def run_directory(out: str | Path, cfg: Any, *, overwrite: bool = False, resume: bool = False) -> Iterator[Path]:
    """Prepares ``out`` for ``cfg`` and yields it; a run it replaces is deleted only on success.

    Raises:
        RunExistsError: ``out`` holds a run and neither ``overwrite`` nor ``resume`` is set, or
            ``resume`` with a run of another config.
        RunDirError: ``out`` is a file or a directory hetmem did not write, cannot be created,
            or there is nothing to resume.
    """
    out = Path(out)
    previous = _prepare(out, cfg, overwrite=overwrite, resume=resume)
    try:
        yield out
    except BaseException:
        if previous is not None:
            log.warning("the run that %s replaced is kept in %s", out, previous)
        raise
    if previous is not None:
        shutil.rmtree(previous)
