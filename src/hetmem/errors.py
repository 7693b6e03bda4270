"""Errors that mean "the input is wrong", which the command line reports in one line (exit 2)."""

from __future__ import annotations

__all__ = ["HetmemError", "ConfigError", "DataNotFoundError", "CheckpointError", "RunExistsError", "MissingExtraError"]


class HetmemError(Exception):
    """Base class of hetmem's user-facing errors."""


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
