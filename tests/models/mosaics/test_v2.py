import math

import pytest
import torch

from hetmem.models.mosaics import (
    AdaptiveBandwidth,
    GatedLeakyKey,
    GrowingBuffer,
    LagMemory,
    MosaicV2Block,
    ShortLongMemory,
    SwiGLU,
    gated_leaky_average,
    lag_counts,
    lag_mask,
    lag_read,
    lagged_attention,
    leaky_average,
)


def test_gated_leaky_average_modes_equal_the_recurrence():
    x = torch.randn(2, 3, 37, 4, dtype=torch.float64)
    log_decay = -torch.rand(2, 3, 37, dtype=torch.float64) * 3
    gate = torch.rand(2, 3, 37, dtype=torch.float64) + 0.5
    ref = gated_leaky_average(x, log_decay, gate, mode="recurrent")
    for mode, chunk in (("matrix", 16), ("chunked", 4), ("chunked", 5), ("chunked", 64)):
        assert torch.allclose(gated_leaky_average(x, log_decay, gate, mode=mode, chunk=chunk), ref, atol=1e-10), (mode, chunk)
    state = x[:, :, 0]
    assert torch.allclose(ref[:, :, 0], gate[:, :, 0, None] * state)
    assert torch.allclose(ref[:, :, 1], gate[:, :, 1, None] * x[:, :, 1] + log_decay[:, :, 1, None].exp() * ref[:, :, 0])


def test_constant_decay_and_unit_gate_is_the_v1_leaky_average():
    x = torch.randn(1, 2, 20, 3, dtype=torch.float64)
    decay = torch.tensor([0.3, 2.0], dtype=torch.float64)
    log_decay = (-decay)[None, :, None].expand(1, 2, 20)
    assert torch.allclose(gated_leaky_average(x, log_decay), leaky_average(x, decay), atol=1e-10)


def test_gated_initial_state_continues_the_sum_and_gradients_are_finite():
    x = torch.randn(2, 2, 30, 3, dtype=torch.float64)
    log_decay = (-torch.rand(2, 2, 30, dtype=torch.float64) * 40).requires_grad_()  # products underflow to 0
    whole = gated_leaky_average(x, log_decay, chunk=4)
    tail = gated_leaky_average(x[:, :, 12:], log_decay[:, :, 12:], initial=whole[:, :, 11], chunk=4)
    assert torch.allclose(tail, whole[:, :, 12:], atol=1e-10)
    whole.square().sum().backward()
    assert torch.isfinite(log_decay.grad).all()


def test_gated_keys_are_unit_causal_and_continue_from_their_state():
    keys_fn = GatedLeakyKey(8, 2)
    x = torch.randn(2, 10, 8)
    keys, _ = keys_fn(x)
    assert torch.allclose(keys.norm(dim=-1), torch.ones(2, 2, 10), atol=1e-5)
    moved = x.clone()
    moved[:, 6] += 1
    assert torch.equal(keys_fn(moved)[0][:, :, :6], keys[:, :, :6])
    _, state = keys_fn(x[:, :4])
    assert torch.allclose(keys_fn(x[:, 4:], state)[0], keys[:, :, 4:], atol=1e-5)
    assert torch.allclose(torch.exp(-keys_fn.W_lambda.bias), torch.exp(-torch.linspace(0.5, 5, 2)))


def test_adaptive_bandwidth_formula_and_constraints():
    beta = AdaptiveBandwidth(3)
    with torch.no_grad():
        beta.p0.copy_(torch.tensor([-50.0, 0.0, 1.0]))
        beta.p_alpha.copy_(torch.tensor([-50.0, 0.0, 50.0]))
    n = torch.tensor([1.0, 16.0, 100.0])
    out = beta(n)  # (H, T)
    b0 = torch.nn.functional.softplus(beta.p0)[:, None]
    b1 = torch.nn.functional.softplus(beta.p1)[:, None]
    alpha = torch.sigmoid(beta.p_alpha)[:, None]
    assert torch.allclose(out, b1 * n**alpha + b0)
    assert (out > 0).all() and (out[:, 1:] >= out[:, :-1]).all()  # grows with the number of stored pairs
    assert beta(torch.zeros(4, 7)).shape == (4, 3, 7)
    beta(torch.arange(5.0)).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in beta.parameters())  # n = 0 does not poison alpha


def test_lag_mask_and_lagged_attention_match_a_loop():
    q, k, v = torch.randn(2, 2, 9, 3), torch.randn(2, 2, 9, 3), torch.randn(2, 2, 9, 3)
    allowed = lag_mask(9, torch.tensor([1, 3]), max_lag=4)
    out = lagged_attention(q, k, v, allowed)
    for b, low in enumerate((1, 3)):
        for t in range(9):
            s = [j for j in range(9) if low <= t - j <= 4]
            if not s:
                assert torch.equal(out[b, :, t], torch.zeros(2, 3))
                continue
            w = torch.softmax(q[b, :, t : t + 1] @ k[b, :, s].transpose(-1, -2), -1)
            assert torch.allclose(out[b, :, t], (w @ v[b, :, s]).squeeze(1), atol=1e-5)
    with pytest.raises(ValueError, match="min_lag must be >= 1"):
        lag_mask(5, 0)


@pytest.mark.parametrize("gated, adaptive", [(True, True), (False, False)])
def test_short_long_memory_is_causal_and_samples_the_long_lag_in_training(gated, adaptive):
    mem = ShortLongMemory(8, 2, window=6, long_lag=(2, 6), gated_keys=gated, adaptive_bandwidth=adaptive).eval()
    x = torch.randn(3, 12, 8)
    base = mem(x)
    assert torch.equal(base[:, 0], torch.zeros(3, 8))
    for j in range(12):
        moved = x.clone()
        moved[:, j] += 1.0
        assert torch.equal(mem(moved)[:, :j], base[:, :j]), j
    assert torch.equal(mem(x), base)  # eval: m = m_lo, deterministic
    mem.train()
    torch.manual_seed(0)
    outs = [mem(x) for _ in range(4)]
    assert any(not torch.equal(o, outs[0]) for o in outs[1:])  # m drawn per sequence and call


def test_short_memory_never_reads_beyond_its_window():
    mem = LagMemory(8, 2, gated_keys=False, adaptive_bandwidth=False)
    x = torch.randn(1, 10, 8)
    keys, _ = mem.key(x)
    values = mem.value(x)
    y = lagged_attention(keys, keys, values, lag_mask(10, 1, 3))
    values2 = values.clone()
    values2[:, :, 2] += 5.0  # the pair stored at 2 is read by t = 3, 4, 5 only
    moved = lagged_attention(keys, keys, values2, lag_mask(10, 1, 3))
    changed = (moved - y).abs().amax(dim=(0, 1, 3)) > 1e-6
    assert changed.tolist() == [False, False, False, True, True, True, False, False, False, False]


def test_v2_block_and_swiglu_train():
    block = MosaicV2Block(8, 2, hidden=16, window=4, long_lag=(2, 3))
    x = torch.randn(2, 7, 8, requires_grad=True)
    block(x).square().mean().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    swiglu = SwiGLU(4, 6)
    z = torch.randn(3, 4)
    expected = swiglu.w2(torch.nn.functional.silu(swiglu.w1(z)) * swiglu.w3(z))
    assert torch.allclose(swiglu(z), expected)
    with pytest.raises(ValueError, match="window"):
        ShortLongMemory(8, 2, window=1)
    with pytest.raises(ValueError, match="dim and hidden"):
        SwiGLU(0, 4)
    assert math.isclose(AdaptiveBandwidth(1)(torch.tensor([1.0])).item(), 2.0, rel_tol=1e-6)


@pytest.mark.parametrize("min_lag, max_lag", [(1, None), (3, None), (1, 4), (2, 30), (40, None)])
def test_lag_read_fast_paths_equal_the_masked_read(min_lag, max_lag):
    T = 20
    q, k, v = (torch.randn(2, 3, T, 4, dtype=torch.float64) for _ in range(3))
    reference = lagged_attention(q, k, v, lag_mask(T, torch.tensor([min_lag, min_lag]), max_lag))
    whole = lag_read(q, k[:, :, :-1], v[:, :, :-1], min_lag, max_lag)  # the newest pair is never read
    assert torch.allclose(whole, reference, atol=1e-12)
    for t in (0, 5, 19):  # one query after a cache of t pairs: a slice, no mask
        one = lag_read(q[:, :, t : t + 1], k[:, :, :t], v[:, :, :t], min_lag, max_lag, offset=t)
        assert torch.allclose(one, reference[:, :, t : t + 1], atol=1e-12), t
    start = 6  # a chunk of queries 10..19 over the pairs 6..18 kept by a sliding window
    if max_lag is not None and max_lag <= 4:
        chunk = lag_read(q[:, :, 10:], k[:, :, start:-1], v[:, :, start:-1], min_lag, max_lag, offset=10, key_start=start)
        assert torch.allclose(chunk, reference[:, :, 10:], atol=1e-12)
    counts = lag_counts(T, min_lag, max_lag)
    assert torch.equal(counts, lag_mask(T, min_lag, max_lag).sum(-1)[:, 0])


def test_growing_buffer_slides_without_losing_entries():
    buf = GrowingBuffer(min_capacity=4)
    stream = torch.arange(50.0).view(1, 1, 50, 1)
    for t in range(0, 50, 3):
        buf.drop_before(t - 5)
        buf.append(stream[:, :, t : t + 3])
        assert torch.equal(buf.view(), stream[:, :, buf.start : min(t + 3, 50)])
    assert buf.data.shape[2] <= 32 and buf.end == 50  # bounded by the window, not by the stream
