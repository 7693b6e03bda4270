"""Errors the command line reports in one line on stderr, without a traceback.

Exit codes of ``hetmem`` (each error class carries its own ``exit_code``):

- 2: the input is wrong (:class:`HetmemError` and its input subclasses): a config field, a
  file, a checkpoint, a run directory;
- 3: the run started but could not finish (:class:`RunFailedError`): the training diverged,
  a worker process died;
- 130: interrupted with Ctrl-C (the command to continue is printed).
"""

from __future__ import annotations

__all__ = [
    "HetmemError",
    "ConfigError",
    "DataNotFoundError",
    "CheckpointError",
    "RunExistsError",
    "RunDirError",
    "RunFailedError",
    "DivergedError",
    "WorkerError",
    "MissingExtraError",
]


class HetmemError(Exception):
    """Base class of hetmem's user-facing errors."""

    exit_code = 2


class ConfigError(HetmemError, ValueError):
    """A configuration field is unknown, ill-typed or out of range."""


class DataNotFoundError(HetmemError, FileNotFoundError):
    """A data set is not on disk and cannot be downloaded here; the message names the file and where to put it."""


class CheckpointError(HetmemError, ValueError):
    """A checkpoint is missing, corrupt, truncated, or belongs to a different model."""


class RunExistsError(HetmemError, FileExistsError):
    """The output directory already holds a run (pass overwrite to replace it)."""


class MissingExtraError(HetmemError, ImportError):
    """An optional dependency is not installed; the message names the ``hetmem[EXTRA]`` that brings it."""


class RunDirError(HetmemError, ValueError):
    """The output directory cannot be used: not a hetmem run, not a directory, not writable, nothing to resume."""


class RunFailedError(HetmemError, RuntimeError):
    """A run was started with valid input but could not finish."""

    exit_code = 3


class DivergedError(RunFailedError):
    """The training loss or the weights became NaN or Inf; the last good checkpoint is kept."""


class WorkerError(RunFailedError):
    """A worker process raised or died (killed, out of memory) before returning its result."""
