"""Run a measurement in a fresh process, so one configuration's peak memory is not hidden by
another's (a process's peak RSS only ever grows)."""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import resource
import signal
import traceback
from collections.abc import Callable
from queue import Empty
from typing import Any

import torch

from hetmem.errors import WorkerError
from hetmem.processes import die_with_parent

__all__ = ["run_isolated", "check_device", "rss_mb", "peak_rss_mb", "sync", "PeakMemory"]

log = logging.getLogger(__name__)


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


def check_device(device: str) -> None:
    """Raises ValueError unless ``device`` names a device torch can use here (checked in the
    parent, before a worker is started for it)."""
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device {device!r} is not a torch device; expected cpu or cuda[:N]") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: this torch build or machine has no CUDA; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: this machine has {torch.cuda.device_count()} GPU(s)")
    elif dev.type != "cpu":
        raise ValueError(f"device {device!r}: expected cpu or cuda[:N]")


def _target(fn: Callable[..., Any], args: tuple, queue: Any, parent_pid: int) -> None:
    die_with_parent(parent_pid)
    try:
        result = ("ok", fn(*args))
    except BaseException as err:  # noqa: BLE001  reported to the parent, which raises it
        result = ("error", f"{type(err).__name__}: {err}", traceback.format_exc())
    queue.put(result)


def _died(name: str, code: int | None) -> str:
    if code is not None and code < 0:
        sig = signal.Signals(-code).name
        why = " (the kernel's out-of-memory killer sends it)" if sig == "SIGKILL" else ""
        return f"the worker process of {name} was killed by {sig}{why} before returning a result"
    return f"the worker process of {name} exited with code {code} before returning a result"


def run_isolated(fn: Callable[..., Any], *args: Any, poll_s: float = 0.2) -> Any:
    """``fn(*args)`` in a spawned process; its result must pickle without torch shared memory
    (return floats, lists, dicts or numpy arrays, not tensors).

    The worker ends with its parent (:func:`hetmem.processes.die_with_parent`), and the parent
    never waits for a worker that is gone: it polls the worker every ``poll_s`` seconds.

    Raises:
        WorkerError: ``fn`` raised in the worker (its message is kept; the worker's traceback is
            logged at DEBUG level), or the worker died (killed, out of memory) without a result.
    """
    name = getattr(fn, "__name__", repr(fn))
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_target, args=(fn, args, queue, os.getpid()), daemon=True)
    proc.start()
    try:
        while True:
            try:
                result = queue.get(timeout=poll_s)
                break
            except Empty:
                if not proc.is_alive():
                    try:  # it may have put its result just before exiting
                        result = queue.get(timeout=poll_s)
                        break
                    except Empty:
                        raise WorkerError(_died(name, proc.exitcode)) from None
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
            proc.join()
    if result[0] == "error":
        log.debug("worker traceback:\n%s", result[2])
        raise WorkerError(f"{name} failed in its worker process: {result[1]}")
    return result[1]
