"""Worker processes end with their parent, however the parent ends (here: SIGKILL)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from hetmem.processes import available_devices, check_devices

# The parent: starts a worker the way hetmem does, prints the worker's pid, then sleeps.
BENCH_PARENT = """
import multiprocessing as mp, threading, time
from hetmem.benchmarks.isolate import run_isolated

if __name__ == "__main__":
    threading.Thread(target=run_isolated, args=(time.sleep, 600), daemon=True).start()
    while not mp.active_children():
        time.sleep(0.05)
    print(mp.active_children()[0].pid, flush=True)
    time.sleep(600)
"""

RANK_PARENT = """
import multiprocessing as mp, os, time
from hetmem.train.guards import DieWithParent

def rank(callback, ready):
    callback.setup(None, None, "fit")  # what a spawned Lightning rank runs first
    ready.set()
    time.sleep(600)

if __name__ == "__main__":
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=rank, args=(DieWithParent(), ready))
    proc.start()
    ready.wait(120)
    print(proc.pid, flush=True)
    time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("script", [BENCH_PARENT, RANK_PARENT], ids=["bench-worker", "training-rank"])
def test_a_worker_dies_when_its_parent_is_killed(tmp_path, script):
    path = tmp_path / "parent.py"
    path.write_text(script)
    parent = subprocess.Popen([sys.executable, str(path)], stdout=subprocess.PIPE, text=True)
    child = None
    try:
        child = int(parent.stdout.readline())
        assert _alive(child)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 60  # a worker killed while still importing ends when it gets to run
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the worker outlived its parent"
    finally:  # a failing run leaves nothing behind either
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if child is not None and _alive(child):
            os.kill(child, signal.SIGKILL)


def test_devices_beyond_the_machine_are_refused():
    have, what = available_devices("cpu")
    assert what == "CPU cores" and have >= 1
    check_devices(have, "cpu")
    with pytest.raises(ValueError, match=f"{have + 1} processes asked for, but this machine has {have} CPU cores"):
        check_devices(have + 1, "cpu")
