import pytest
import torch
import torch.nn.functional as F

from hetmem.models.mosaics import ContextCache, ContextMemory, PersistentCache, PersistentMemory, default_pmem_size


def affected_positions(module, x, j):
    base = module(x)
    moved = x.clone()
    moved[:, j] += 1.0
    return (module(moved) - base).abs().amax(dim=(0, 2)) > 1e-6  # (T,)


@pytest.mark.parametrize("cls", [ContextMemory, PersistentMemory])
def test_causal_under_perturbation(cls):
    module = cls(8, 2, attn_dropout=0.0, resid_dropout=0.0)
    x = torch.randn(2, 9, 8)
    for j in range(9):
        affected = affected_positions(module, x, j)
        assert not affected[:j].any(), (cls.__name__, j)


def test_context_output_at_position_zero_is_zero_and_position_one_reads_one_value():
    mem = ContextMemory(8, 2, attn_dropout=0.0, resid_dropout=0.0)
    x = torch.randn(3, 6, 8)
    out = mem(x)
    assert torch.equal(out[:, 0], torch.zeros(3, 8))
    values = mem.value(x)  # (B, H, T, h)
    expected = mem.c_proj(values[:, :, 0].reshape(3, 8))  # one stored pair: softmax weight 1
    assert torch.allclose(out[:, 1], expected, atol=1e-5)


def test_context_matches_a_plain_masked_implementation():
    mem = ContextMemory(8, 2, attn_dropout=0.0, resid_dropout=0.0, leaky_mode="recurrent")
    x = torch.randn(2, 7, 8)
    keys, _ = mem.key(x)
    values = mem.value(x)
    scores = keys @ keys.transpose(-1, -2)  # scale 1: keys carry s_k
    mask = torch.ones(7, 7, dtype=torch.bool).tril(-1)
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), -1).nan_to_num(0.0)
    expected = mem.c_proj((weights @ values).transpose(1, 2).reshape(2, 7, 8))
    assert torch.allclose(mem(x), expected, atol=1e-5)


def test_attention_dropout_only_in_training():
    mem = ContextMemory(8, 2, attn_dropout=0.5, resid_dropout=0.0)
    x = torch.randn(2, 7, 8)
    mem.eval()
    assert torch.equal(mem(x), mem(x))
    mem.train()
    assert not torch.equal(mem(x), mem(x))


def test_persistent_read_is_a_softmax_over_slots_averaged_over_arrays():
    mem = PersistentMemory(8, 2, pmem_size=5, pmem_count=3, attn_dropout=0.0, resid_dropout=0.0)
    x = torch.randn(2, 4, 8)
    keys, _ = mem.key(x)  # (B, H, T, h)
    reads = [torch.softmax(keys @ mem.M_k[r].transpose(-1, -2), -1) @ mem.M_v[r] for r in range(3)]
    y = torch.stack(reads).mean(0) * torch.exp(10 * mem.value_beta)[:, None, None]
    assert torch.allclose(mem(x), mem.c_proj(y.transpose(1, 2).reshape(2, 4, 8)), atol=1e-5)
    assert mem.M_k.shape == (3, 2, 5, 4)


def test_persistent_defaults():
    mem = PersistentMemory(16, 4)
    assert mem.pmem_size == default_pmem_size(16) == 56
    assert default_pmem_size(768) == 2688 and default_pmem_size(128) == 448 and default_pmem_size(384) == 1344
    assert abs(mem.M_k.std().item() - 0.5) < 0.05  # 1 / sqrt(h), h = 4


@pytest.mark.parametrize("value_kind", ["mix", "conv2"])
def test_context_cache_in_pieces_equals_one_pass(value_kind):
    mem = ContextMemory(8, 2, value_kind=value_kind).eval()
    x = torch.randn(2, 11, 8)
    cache = ContextCache()
    pieces = [mem(x[:, :4], cache)] + [mem(x[:, t : t + 1], cache) for t in range(4, 8)] + [mem(x[:, 8:], cache)]
    assert torch.allclose(torch.cat(pieces, 1), mem(x), atol=1e-5)
    assert cache.length == 11 and len(cache.values) == 10


def test_persistent_cache_in_pieces_equals_one_pass():
    mem = PersistentMemory(8, 2).eval()
    x = torch.randn(2, 9, 8)
    cache = PersistentCache()
    pieces = [mem(x[:, :1], cache), mem(x[:, 1:6], cache), mem(x[:, 6:], cache)]
    assert torch.allclose(torch.cat(pieces, 1), mem(x), atol=1e-5)


@pytest.mark.parametrize("cls", [ContextMemory, PersistentMemory])
def test_every_parameter_gets_a_finite_gradient(cls):
    module = cls(8, 2)
    x = torch.randn(2, 300, 8, requires_grad=True)
    F.mse_loss(module(x), torch.randn(2, 300, 8)).backward()
    for name, p in module.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert torch.isfinite(x.grad).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="divisible"):
        ContextMemory(10, 4)
    with pytest.raises(ValueError, match="pmem_size"):
        PersistentMemory(8, 2, pmem_size=0)
    with pytest.raises(ValueError, match="T = 0"):
        ContextMemory(8, 2)(torch.randn(1, 0, 8))
