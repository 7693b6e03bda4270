"""A value derived from a module's tensors, kept until one of them changes.

HMA reads the same queue and slots at every evaluation call; their keys and values only change
when a tensor they are computed from changes. Rather than list those tensors (and miss one when
the model changes), :class:`StateCache` fingerprints *every* parameter and buffer of the module:
a change anywhere in it recomputes the value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["StateCache", "state_fingerprint"]


def _modules(module: nn.Module, out: list[nn.Module]) -> list[nn.Module]:
    out.append(module)  # a plain walk: ``named_modules()`` costs ~4x more per call
    for child in module._modules.values():
        if child is not None:
            _modules(child, out)
    return out


def _tensors(module: nn.Module) -> list[Tensor]:
    return [t for m in _modules(module, []) for d in (m._parameters, m._buffers) for t in d.values() if t is not None]


def state_fingerprint(module: nn.Module) -> tuple | None:
    """What identifies the current contents of every parameter and buffer of ``module``, or None
    when that cannot be known (a tensor made in inference mode has no version counter).

    Per tensor: its storage address and version counter. In-place writes (optimiser steps,
    ``load_state_dict``, queue writes, ``copy_`` under no_grad) bump the version; ``.to()``
    (device or dtype), ``load_state_dict(assign=True)`` and ``param.data = ...`` give the
    tensor new storage, at a new address while :class:`StateCache` holds the old storage.
    Plus the module's training flag and whether inference mode is on (tensors made in
    inference mode cannot enter autograd later). Not seen: writes through ``tensor.data``,
    which bypass the version counter (optimisers do not do that), and plain Python attributes.
    """
    try:
        state = tuple((t.data_ptr(), t._version) for t in _tensors(module))
    except RuntimeError:  # "Inference tensors do not track version counter"
        return None
    return module.training, torch.is_inference_mode_enabled(), state


class StateCache:
    """Holds ``compute()``'s result while :func:`state_fingerprint` of a module stays the same.

    Not a module and not in the state dict: a copy of the module (``deepcopy``, a checkpoint
    reload) has other tensors, so its first call recomputes. A module holding tensors made in
    inference mode (e.g. moved with ``.to()`` inside ``torch.inference_mode()``) is never cached.

    Example:
        >>> lin = nn.Linear(2, 2)
        >>> cache = StateCache()
        >>> a = cache.get(lin, lambda: lin.weight.sum())
        >>> cache.get(lin, lambda: 1 / 0) is a  # nothing changed: not recomputed
        True
        >>> with torch.no_grad():
        ...     _ = lin.weight.add_(1.0)
        >>> torch.allclose(cache.get(lin, lambda: lin.weight.sum()), a + 4)  # recomputed
        True
    """

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._value: Any = None
        self._storages: list = []
        self.hits = 0  # calls answered from the cache (diagnostics, tests)
        self.misses = 0  # calls that recomputed

    def get(self, module: nn.Module, compute: Callable[[], Any]) -> Any:
        key = state_fingerprint(module)
        if key is None:  # no way to see a change: never cache
            self.clear()
            self.misses += 1
            return compute()
        if key != self._key:
            self._key = None  # a compute() that raises leaves the cache empty
            self._value = compute()
            # Holding the storages keyed on keeps their addresses from being reused by new
            # tensors (say after .half().float()), which could otherwise repeat the key.
            self._storages = [t.untyped_storage() for t in _tensors(module)]
            self._key = key
            self.misses += 1
        else:
            self.hits += 1
        return self._value

    def clear(self) -> None:
        """Forgets the value (after a change the fingerprint cannot see, e.g. through ``.data``)."""
        self._key, self._value, self._storages = None, None, []

    def __reduce__(self) -> tuple:
        return (StateCache, ())  # copies and pickles start empty: their module has other tensors

    def __repr__(self) -> str:
        return f"StateCache(filled={self._key is not None}, hits={self.hits}, misses={self.misses})"
