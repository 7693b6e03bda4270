"""A benchmark worker that raises or dies ends the parent within seconds, with a clear message."""

import os
import time

import pytest

from hetmem.benchmarks.isolate import check_device, run_isolated
from hetmem.cli import main
from hetmem.errors import WorkerError


def test_a_result_comes_back():
    assert run_isolated(divmod, 7, 2) == (3, 1)


def test_an_exception_in_the_worker_is_raised_in_the_parent_with_its_message():
    start = time.monotonic()
    with pytest.raises(WorkerError, match=r"int failed in its worker process: ValueError: invalid literal"):
        run_isolated(int, "abc")
    assert time.monotonic() - start < 60


@pytest.mark.parametrize("fn, args, match", [
    (os.abort, (), "killed by SIGABRT"),
    (os._exit, (3,), "exited with code 3"),
])
def test_a_worker_that_dies_without_a_result_ends_the_wait(fn, args, match):
    start = time.monotonic()
    with pytest.raises(WorkerError, match=match):
        run_isolated(fn, *args)
    assert time.monotonic() - start < 60  # before: the parent waited on its queue forever


@pytest.mark.parametrize("device, match", [("cuda:99", "cuda:99"), ("tpu", "expected cpu or cuda"), ("nonsense", "not a torch device")])
def test_an_unusable_device_is_refused_before_a_worker_starts(device, match):
    with pytest.raises(ValueError, match=match):
        check_device(device)


def test_bench_on_a_missing_gpu_is_one_line_and_exit_2(capsys):
    assert main(["bench", "rma", "--device", "cuda:99", "--repeats", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("hetmem: error: device 'cuda:99'")
