import torch

from hetmem.attention import MemoryAttentionBlock
from hetmem.benchmarks.rma import RMABenchConfig, bench_rma, paper_literal_rma


def test_literal_formulation_equals_shared_projection_with_gradients():
    block = MemoryAttentionBlock(24, 4).eval()
    c1 = torch.randn(10, 24, requires_grad=True)
    memory = torch.randn(13, 24, requires_grad=True)
    fast = block(c1, memory, context="single")
    literal = paper_literal_rma(block, c1, memory)
    assert torch.allclose(fast, literal, atol=1e-5)
    g_fast = torch.autograd.grad(fast.square().sum(), [c1, memory, block.kv_proj.weight])
    g_lit = torch.autograd.grad(literal.square().sum(), [c1, memory, block.kv_proj.weight])
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(g_fast, g_lit))
    read = paper_literal_rma(block, c1, memory, read_only=True)
    assert torch.allclose(read, block.attend(c1, memory)[0], atol=1e-5)


def test_bench_reports_every_key_on_a_tiny_problem():
    cfg = RMABenchConfig(batch_size=8, queue_size=16, feature_dim=8, label_dim=4, num_heads=2, repeats=1, fast_repeats=1)
    result = bench_rma(cfg)
    for prefix in ("", "block_"):
        for key in ("literal_s", "fast_s", "speedup", "max_abs_diff", "literal_peak_mb", "fast_peak_mb"):
            assert prefix + key in result
        assert result[prefix + "max_abs_diff"] < 1e-5
        assert result[prefix + "literal_s"] > 0 and result[prefix + "fast_s"] > 0
    assert result["config"]["batch_size"] == 8
