"""Child processes that never outlive their parent, and device counts checked before spawning.

hetmem starts processes in two places: ``hetmem bench`` measures each configuration in a fresh
process, and ``--devices N`` trains with N spawned ranks. A parent killed with SIGKILL (the
OOM killer) runs no clean-up, so each child asks the kernel to kill it when its parent dies.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time

__all__ = ["die_with_parent", "available_devices", "check_devices"]

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _watch_parent(parent_pid: int, poll_s: float) -> None:
    while os.getppid() == parent_pid:
        time.sleep(poll_s)
    os._exit(1)


def die_with_parent(parent_pid: int, *, poll_s: float = 1.0) -> None:
    """Makes this process end as soon as ``parent_pid`` (its parent) ends, however it ends.

    On Linux the kernel sends SIGKILL (``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon thread
    polls the parent's pid every ``poll_s`` seconds. A parent that died before the call ends
    this process at once.

    Args:
        parent_pid: the pid of the process that started this one (``os.getpid()`` there).
        poll_s: polling period of the fallback thread.

    Example:
        >>> import os
        >>> die_with_parent(os.getppid())  # in a child: end with the parent
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            log.debug("prctl(PR_SET_PDEATHSIG) failed (errno %d); polling the parent instead", ctypes.get_errno())
            threading.Thread(target=_watch_parent, args=(parent_pid, poll_s), daemon=True).start()
    else:
        threading.Thread(target=_watch_parent, args=(parent_pid, poll_s), daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before the request was in place
        os._exit(1)


def available_devices(accelerator: str) -> tuple[int, str]:
    """How many processes ``accelerator`` can run side by side here, and what they are.

    ``cpu``: the CPU cores this process may use; ``gpu``/``cuda``: the visible GPUs; ``auto``:
    the GPUs if CUDA is available, else the CPU cores (what Lightning picks).
    """
    import torch

    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.cuda.device_count(), "GPUs"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores, "CPU cores"


def check_devices(devices: int, accelerator: str = "auto") -> None:
    """Raises ValueError when ``devices`` processes would not fit this machine (checked before
    anything is spawned: 99 processes on 2 cores only exhaust the memory)."""
    have, what = available_devices(accelerator)
    if devices > have:
        raise ValueError(f"{devices} processes asked for, but this machine has {have} {what} (accelerator {accelerator!r})")
