import pytest
import torch

from hetmem import HMAConfig, HMAHead
from hetmem.benchmarks.latency import LatencyBenchConfig, bench_latency
from hetmem.inference import CompiledHead


def test_bench_latency_times_every_path_and_reports_the_goal():
    cfg = LatencyBenchConfig(feature_dim=16, image_shape=(1, 4, 4), label_dim=8, queue_size=32, num_heads=2,
                             batch_sizes=(1, 4), rounds=1, calls=2, compile=False, threads=1)
    threads = torch.get_num_threads()
    result = bench_latency(cfg)
    rows = {(r["scope"], r["batch"], r["path"]): r for r in result["rows"]}
    assert set(rows) == {(s, b, p) for s in ("head", "model") for b in (1, 4) for p in ("uncached", "cached")}
    assert rows["head", 1, "cached"]["flops"] < rows["head", 1, "uncached"]["flops"]  # no projection of the queue
    assert rows["model", 1, "cached"]["flops"] > rows["head", 1, "cached"]["flops"]  # + the backbone
    assert all(r["median_ms"] > 0 and r["gflops_per_s"] > 0 for r in rows.values())
    assert set(result["speedups"]) == {f"{s}_b{b}_cached" for s in ("head", "model") for b in (1, 4)}
    goal = result["goal"]
    assert goal["achieved"] == result["speedups"]["head_b1_cached"] and goal["met"] == (goal["achieved"] >= 8)
    assert result["machine"]["matmul_gflops"] > 0 and result["batch1_floor_ms"] > 0
    assert result["torch_threads"] == 1 and torch.get_num_threads() == threads  # restored after the run


def test_compiled_head_falls_back_to_eager_when_compiling_fails(caplog):
    def broken_backend(gm, example_inputs):
        raise RuntimeError("no C++ compiler here")

    head = HMAHead(8, HMAConfig(num_classes=2, label_dim=4, queue_size=4, num_heads=2)).eval()
    head.write_memory_(torch.randn(4, 8), torch.tensor([0, 1, 0, 1]))
    fast = CompiledHead(head, backend=broken_backend)
    x = torch.randn(3, 8)
    with torch.inference_mode():
        assert torch.equal(fast(x), head(x)) and torch.equal(fast(x), head(x))
    assert not fast.compiled and "no C++ compiler here" in fast.error
    assert "torch.compile unavailable" in caplog.text


def test_compiled_head_sees_queue_writes():
    head = HMAHead(8, HMAConfig(num_classes=2, label_dim=4, queue_size=4, num_heads=2)).eval()
    fast = CompiledHead(head, backend="eager")
    x = torch.randn(3, 8)
    with torch.inference_mode():
        before = fast(x)
    head.write_memory_(torch.randn(4, 8), torch.tensor([0, 1, 0, 1]))
    with torch.inference_mode():
        after = fast(x)
        assert not torch.allclose(before, after) and torch.allclose(after, head(x), atol=1e-6)


@pytest.mark.parametrize("argv, match", [
    (["--threads", "0"], "--threads must be a positive int, got 0"),
    (["--queue-size", "-1"], "--queue-size must be a positive int, got -1"),
    (["--batch-sizes", "1,0"], r"--batch-sizes must be positive ints like 1,256, got [1, 0]"),
])
def test_bad_latency_arguments_are_one_line(capsys, argv, match):
    from hetmem.cli import main

    assert main(["bench", "latency", *argv]) == 2
    assert capsys.readouterr().err.strip() == f"hetmem: error: {match}"


def test_cli_bench_latency_json(capsys):
    import json

    from hetmem.cli import main

    argv = ["bench", "latency", "--json", "--queue-size", "8", "--feature-dim", "8", "--label-dim", "4",
            "--num-heads", "2", "--repeats", "1", "--no-compile", "--batch-sizes", "1,3", "--threads", "1"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["queue_size"] == 8 and out["config"]["batch_sizes"] == [1, 3]
    assert "goal 8x" in out["goal"]["line"] and len(out["rows"]) == 8
