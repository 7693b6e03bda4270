"""hetmem.distributed and HMA under torch.distributed: 2 gloo processes on CPU."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hetmem.distributed import all_gather_with_grad, concat_all_gather, is_distributed

WORKER = Path(__file__).with_name("distributed_worker.py")


def free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def launch(case: str, out: Path) -> None:
    result = subprocess.run([sys.executable, str(WORKER), case, str(out), free_port()], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def test_single_process_helpers_are_identity():
    x = torch.randn(3, 2, requires_grad=True)
    assert not is_distributed()
    assert concat_all_gather(x) is x and all_gather_with_grad(x) is x


@pytest.mark.slow
def test_gather_handles_ranks_with_different_row_counts(tmp_path):
    launch("gather", tmp_path)
    for rank in (0, 1):
        got = torch.load(tmp_path / f"gather-{rank}.pt")
        assert got[:, 0].tolist() == [0.0, 1.0, 1.0]  # rank 0's row, then rank 1's two rows


@pytest.mark.slow
@pytest.mark.parametrize("case", ["local", "global"])
def test_queue_and_momentum_encoder_stay_identical_across_ranks(tmp_path, case):
    launch(case, tmp_path)
    a, b = (torch.load(tmp_path / f"{case}-{r}.pt")["state"] for r in (0, 1))
    assert int(a["head.queue.count"]) == 20  # 4 steps x 8 gathered rows wrapped a 20-row queue
    for key in a:  # weights, queue rows / labels / pointer, momentum encoder
        assert torch.equal(a[key], b[key]), key


@pytest.mark.slow
def test_two_ranks_with_global_batch_train_like_one_process_with_the_whole_batch(tmp_path):
    launch("global", tmp_path)
    two = torch.load(tmp_path / "global-0.pt")
    one = torch.load(tmp_path / "single.pt")
    assert two["losses"] == pytest.approx(one["losses"], abs=1e-5)  # the loss of every step
    for key, value in one["state"].items():  # and the weights after 4 SGD steps
        assert torch.allclose(two["state"][key].float(), value.float(), atol=1e-5), key
