"""``CompiledHead``: HMA's evaluation forward through ``torch.compile``, eager where no compiler works."""

from __future__ import annotations

import logging

import torch
from torch import Tensor

__all__ = ["CompiledHead"]

log = logging.getLogger(__name__)


class CompiledHead:
    """``features -> logits`` of an :class:`~hetmem.HMAHead` for evaluation calls.

    The memories' keys and values come from the head's cache (:meth:`HMAHead.memory_kv`, plain
    Python, so every change of the head is still seen); the per-row part (RMA, SMA, classifier)
    goes through ``torch.compile``. The first call compiles (seconds; time it apart from the
    latency). Where compiling fails (no C++ compiler, an unsupported platform) the failure is
    logged once, kept in :attr:`error`, and every call runs the eager head: same outputs.

    Call it under ``torch.inference_mode()`` or ``torch.no_grad()`` with the head in eval mode
    (the cache needs both; in training use the head itself).

    Args:
        head: the HMAHead (not copied: later weight or queue changes are used).
        backend, mode: passed to ``torch.compile``.

    Shapes:
        features: (B, feature_dim); returns logits (B, num_classes).

    Example:
        >>> from hetmem import HMAConfig, HMAHead
        >>> head = HMAHead(8, HMAConfig(num_classes=2, label_dim=4, queue_size=4, num_heads=2)).eval()
        >>> fast = CompiledHead(head, backend="eager")  # "eager": dynamo only, no C++ compiler needed
        >>> with torch.inference_mode():
        ...     torch.allclose(fast(torch.ones(3, 8)), head(torch.ones(3, 8)))
        True
    """

    def __init__(self, head: torch.nn.Module, *, backend: str = "inductor", mode: str | None = None) -> None:
        self.head = head
        self.error: str | None = None
        try:
            self._compiled = torch.compile(head.forward, backend=backend, mode=mode, dynamic=False)
        except RuntimeError as err:  # e.g. "Dynamo is not supported on Python 3.x"
            self._fail(err)

    def _fail(self, err: Exception) -> None:
        inner = getattr(err, "inner_exception", None) or err  # what the compiler backend raised
        text = str(inner).strip()
        self.error = f"{type(inner).__name__}: {text.splitlines()[0][:300] if text else ''}"
        log.warning("torch.compile unavailable, evaluating the eager head: %s", self.error)

    @property
    def compiled(self) -> bool:
        """False once compiling has failed (calls then run the eager head)."""
        return self.error is None

    def __call__(self, features: Tensor) -> Tensor:
        if self.error is None:
            try:
                return self._compiled(features, self.head.memory_kv())
            except torch._dynamo.exc.BackendCompilerFailed as err:  # no working C++ compiler, ...
                self._fail(err)
        return self.head(features)
