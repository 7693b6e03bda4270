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


@pytest.mark.parametrize("context", ["single", "batch"])
@pytest.mark.parametrize("key_dim", [None, 5])
def test_cosine_and_shared_keys_fused_equal_manual(context, key_dim):
    fused = MemoryAttentionBlock(12, 3, scores="cosine", key_dim=key_dim, fused=True).eval()
    manual = MemoryAttentionBlock(12, 3, scores="cosine", key_dim=key_dim, fused=False).eval()
    manual.load_state_dict(fused.state_dict())
    x, mem = torch.randn(5, 12), torch.randn(7, 12)
    o1 = fused(x, mem, context=context)
    o2, w = manual(x, mem, context=context, need_weights=True)
    assert torch.allclose(o1, o2, atol=1e-5)
    assert torch.allclose(w.sum(-1), torch.ones(3, 5))


def test_cosine_scores_are_temperature_times_cosine():
    block = MemoryAttentionBlock(8, 2, scores="cosine", temperature=5.0).eval()
    x, mem = torch.randn(3, 8), torch.randn(4, 8)
    _, w = block(x, mem, need_weights=True)
    q = torch.nn.functional.normalize(block.q_proj(block.norm_q(x)).view(3, 2, 4), dim=-1)  # (B, H, hd)
    k = torch.nn.functional.normalize(block.kv_proj(block.norm_kv(torch.cat([x, mem]))).view(7, 2, 2, 4)[:, 0], dim=-1)
    cos_mem = torch.einsum("bhd,mhd->hbm", q, k[3:])  # (H, B, M)
    cos_self = torch.einsum("bhd,bhd->hb", q, k[:3]).unsqueeze(-1)  # (H, B, 1)
    expected = torch.softmax(5.0 * torch.cat([cos_self, cos_mem], -1), dim=-1)
    assert torch.allclose(w, expected, atol=1e-5)
    with torch.no_grad():
        block.log_temperature.fill_(10.0)  # e^10 is clamped to the cap
    assert torch.allclose(block.temperature(), torch.full((2,), 100.0))


def test_shared_keys_ignore_the_label_part_and_queries_are_keys():
    block = MemoryAttentionBlock(8, 2, scores="cosine", key_dim=5).eval()
    rows = torch.randn(4, 8)
    _, w1 = block(rows[:1], rows[1:], need_weights=True)
    relabelled = rows.clone()
    relabelled[:, 5:] = torch.randn(4, 3)  # only the non-key part changes
    _, w2 = block(relabelled[:1], relabelled[1:], need_weights=True)
    assert torch.allclose(w1, w2, atol=1e-6)
    # a memory row equal to the query's key part scores the full temperature (cosine 1)
    _, w = block(rows[:1], rows[:1].clone(), need_weights=True)
    assert torch.allclose(w[..., 0], w[..., 1])  # the row itself and its copy: same score


def test_layer_scale_starts_the_block_near_the_identity():
    block = MemoryAttentionBlock(8, 2, layer_scale=1e-6).eval()
    x = torch.randn(3, 8)
    assert torch.allclose(block(x, torch.randn(4, 8)), x, atol=1e-4)
    assert block.gamma_attn.requires_grad and block.gamma_ff.shape == (8,)


def test_memory_mask_removes_rows_from_the_read():
    block = MemoryAttentionBlock(8, 2).eval()
    x, mem = torch.randn(2, 8), torch.randn(3, 8)
    mask = torch.tensor([[True, False, False], [False, False, False]])
    out, w = block(x, mem, need_weights=True, memory_mask=mask)
    assert torch.all(w[:, 0, 1] == 0) and torch.all(w[:, 1, 1:] > 0)
    assert torch.allclose(out[0], block(x[:1], mem[1:])[0], atol=1e-6)  # masked = not there
    with pytest.raises(ValueError, match="only supported in the 'single' context"):
        block(x, mem, context="batch", memory_mask=mask)


def test_bad_options():
    with pytest.raises(ValueError, match="scores must be one of"):
        MemoryAttentionBlock(8, 2, scores="euclid")
    with pytest.raises(ValueError, match=r"key_dim must be in \[1, dim=8\]"):
        MemoryAttentionBlock(8, 2, key_dim=9)
    with pytest.raises(ValueError, match="temperature must be in"):
        MemoryAttentionBlock(8, 2, scores="cosine", temperature=0)
