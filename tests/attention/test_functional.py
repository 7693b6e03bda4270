import pytest
import torch

from hetmem.attention import memory_attention


def inputs(B=6, H=2, hd=4, M=5):
    q, k, v = (torch.randn(B, H, hd) for _ in range(3))
    k_mem, v_mem = (torch.randn(H, M, hd) for _ in range(2))
    return q, k, v, k_mem, v_mem


def reference(q, k, v, k_mem, v_mem, context):
    """Plain per-row softmax attention over an explicit key list (no sharing tricks)."""
    B = q.shape[0]
    outs = []
    for i in range(B):
        if context == "single":
            keys = torch.cat([k[i : i + 1].transpose(0, 1), k_mem], dim=1)  # (H, 1 + M, hd)
            vals = torch.cat([v[i : i + 1].transpose(0, 1), v_mem], dim=1)
        else:
            keys = torch.cat([k.transpose(0, 1), k_mem], dim=1)  # (H, B + M, hd)
            vals = torch.cat([v.transpose(0, 1), v_mem], dim=1)
        w = torch.softmax(q[i].unsqueeze(1) @ keys.transpose(1, 2) / q.shape[-1] ** 0.5, dim=-1)  # (H, 1, K)
        outs.append((w @ vals).squeeze(1))  # (H, hd)
    return torch.stack(outs)  # (B, H, hd)


@pytest.mark.parametrize("context", ["single", "batch"])
@pytest.mark.parametrize("M", [0, 1, 5])
def test_matches_reference(context, M):
    args = inputs(M=M)
    out, _ = memory_attention(*args, context=context)
    assert torch.allclose(out, reference(*args, context), atol=1e-5)


@pytest.mark.parametrize("context", ["single", "batch"])
def test_fused_equals_manual_and_weights_sum_to_one(context):
    args = inputs()
    fused, none = memory_attention(*args, context=context, fused=True)
    manual, w = memory_attention(*args, context=context, fused=False, need_weights=True)
    assert none is None
    assert torch.allclose(fused, manual, atol=1e-5)
    K = 1 + 5 if context == "single" else 6 + 5
    assert w.shape == (2, 6, K)
    assert torch.allclose(w.sum(-1), torch.ones(2, 6), atol=1e-6)


def test_single_context_ignores_other_rows():
    q, k, v, k_mem, v_mem = inputs()
    out, _ = memory_attention(q, k, v, k_mem, v_mem, context="single")
    k2, v2 = k.clone(), v.clone()
    k2[1:], v2[1:] = torch.randn_like(k2[1:]), torch.randn_like(v2[1:])
    out2, _ = memory_attention(q, k2, v2, k_mem, v_mem, context="single")
    assert torch.allclose(out[0], out2[0]) and not torch.allclose(out[1:], out2[1:])


def test_sdpa_agrees_with_manual_under_autograd():
    args = [t.requires_grad_() for t in inputs()]
    out, _ = memory_attention(*args, context="batch", fused=True)
    g1 = torch.autograd.grad(out.sum(), args)
    out, _ = memory_attention(*args, context="batch", fused=False)
    g2 = torch.autograd.grad(out.sum(), args)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(g1, g2))


def test_bad_context():
    with pytest.raises(ValueError, match="context must be 'single' or 'batch'"):
        memory_attention(*inputs(), context="global")
