"""Run a measurement in a fresh process, so one configuration's peak memory is not hidden by
another's (a process's peak RSS only ever grows)."""

from __future__ import annotations

import multiprocessing as mp
import resource
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["run_isolated", "rss_mb", "peak_rss_mb", "sync", "PeakMemory"]


def rss_mb() -> float:
    """Resident memory of this process now, in MiB (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    """The most resident memory this process has held, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


class PeakMemory:
    """Peak memory above the level at ``start()``: RSS growth on CPU, allocator peak on CUDA.

    RSS only measures a peak that is higher than anything before ``start()`` in this process,
    so measure in a fresh process (:func:`run_isolated`) and start after building the inputs.
    """

    def __init__(self, device: str) -> None:
        self.cuda = str(device).startswith("cuda")
        self.base = 0.0

    def start(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated() / 2**20
        else:
            self.base = rss_mb()

    def peak_mb(self) -> float:
        if self.cuda:
            return torch.cuda.max_memory_allocated() / 2**20 - self.base
        return peak_rss_mb() - self.base


def _target(fn: Callable[..., Any], args: tuple, queue: Any) -> None:
    queue.put(fn(*args))


def run_isolated(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a spawned process; its result must pickle without torch shared memory
    (return floats, lists, dicts or numpy arrays, not tensors)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_target, args=(fn, args, queue))
    proc.start()
    try:
        result = queue.get()
    finally:
        proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"run_isolated: {getattr(fn, '__name__', fn)} exited with code {proc.exitcode}")
    return result
