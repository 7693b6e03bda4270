import pytest
import torch

from hetmem.attention import MemoryAttentionBlock


@pytest.mark.parametrize("dim, heads, head_dim", [(8, 2, 4), (454, 4, 114), (10, 3, 4)])
def test_shapes_and_head_dim_for_any_width(dim, heads, head_dim):
    block = MemoryAttentionBlock(dim, heads)
    assert block.head_dim == head_dim
    out = block(torch.randn(5, dim), torch.randn(7, dim), context="batch")
    assert out.shape == (5, dim)


@pytest.mark.parametrize("context, K", [("single", 1 + 7), ("batch", 5 + 7)])
def test_fused_equals_manual_path_and_weight_shapes(context, K):
    fused = MemoryAttentionBlock(12, 3, fused=True).eval()
    manual = MemoryAttentionBlock(12, 3, fused=False).eval()
    manual.load_state_dict(fused.state_dict())
    x, mem = torch.randn(5, 12), torch.randn(7, 12)
    o1 = fused(x, mem, context=context)
    o2, w = manual(x, mem, context=context, need_weights=True)
    assert torch.allclose(o1, o2, atol=1e-5)
    assert w.shape == (3, 5, K)


def test_no_memory_single_context_is_per_row():
    block = MemoryAttentionBlock(8, 2).eval()
    x = torch.randn(4, 8)
    together = block(x, None, context="single")
    alone = torch.cat([block(x[i : i + 1], None, context="single") for i in range(4)])
    assert torch.allclose(together, alone, atol=1e-6)


def test_residual_on_query():
    block = MemoryAttentionBlock(8, 2).eval()
    for p in block.parameters():
        torch.nn.init.zeros_(p)  # attention output and MLP are then zero
    x = torch.randn(3, 8)
    assert torch.allclose(block(x, torch.randn(4, 8)), x)


def test_gradients_reach_inputs_and_memory():
    block = MemoryAttentionBlock(8, 2)
    x, mem = torch.randn(3, 8, requires_grad=True), torch.randn(4, 8, requires_grad=True)
    block(x, mem, context="batch").sum().backward()
    assert x.grad.abs().sum() > 0 and mem.grad.abs().sum() > 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="dim and num_heads must be positive"):
        MemoryAttentionBlock(0, 2)


def test_repr_line():
    assert "dim=8, num_heads=2, head_dim=4, fused=True" in repr(MemoryAttentionBlock(8, 2))
