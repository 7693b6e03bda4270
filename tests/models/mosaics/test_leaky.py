import pytest
import torch

from hetmem.models.mosaics import leaky_average, leaky_matrix


def naive(x, decay):
    """kbar_t = sum_{s<=t} exp(-b (t - s)) x_s, written as two loops."""
    B, H, T, h = x.shape
    out = torch.zeros_like(x)
    for t in range(T):
        for s in range(t + 1):
            out[:, :, t] += torch.exp(-decay * (t - s))[None, :, None] * x[:, :, s]
    return out


@pytest.mark.parametrize("T", [1, 5, 13, 64])
def test_every_mode_equals_the_definition(T):
    x = torch.randn(2, 3, T, 4, dtype=torch.float64)
    decay = torch.tensor([0.05, 0.5, 5.0], dtype=torch.float64)
    expected = naive(x, decay)
    for mode, chunk in (("matrix", 64), ("recurrent", 64), ("chunked", 2), ("chunked", 4), ("chunked", 5), ("chunked", 100)):
        got = leaky_average(x, decay, mode=mode, chunk=chunk)
        assert torch.allclose(got, expected, atol=1e-10), (mode, chunk)


def test_matrix_equals_scan_on_long_sequences():
    x = torch.randn(1, 2, 1100, 3, dtype=torch.float64)
    decay = torch.tensor([0.001, 1.0], dtype=torch.float64)
    chunked = leaky_average(x, decay, chunk=4)  # 275 chunks, their carry chunked again (recursion depth 4)
    assert torch.allclose(chunked, leaky_average(x, decay, mode="matrix"), atol=1e-8)
    assert torch.allclose(chunked, leaky_average(x, decay, mode="recurrent"), atol=1e-8)


def test_initial_state_continues_the_sum():
    x = torch.randn(2, 2, 12, 3, dtype=torch.float64)
    decay = torch.tensor([0.3, 2.0], dtype=torch.float64)
    whole = leaky_average(x, decay)
    head = leaky_average(x[:, :, :5], decay)
    for mode in ("matrix", "chunked", "recurrent"):
        tail = leaky_average(x[:, :, 5:], decay, initial=head[:, :, -1], mode=mode, chunk=3)
        assert torch.allclose(tail, whole[:, :, 5:], atol=1e-10), mode


def test_matrix_is_lower_triangular_and_finite_for_huge_decay():
    m = leaky_matrix(torch.tensor([0.0, 80.0]), 50)
    assert torch.isfinite(m).all()
    assert torch.equal(m.triu(1), torch.zeros_like(m))
    assert torch.equal(m[0].tril(), torch.ones(50, 50).tril())


@pytest.mark.parametrize("mode", ["matrix", "chunked"])
def test_decay_gradient_is_finite_where_exp_would_overflow(mode):
    # exp(+b (s - t)) above the diagonal is inf for b * T > 88 in float32 (spec trap 13)
    decay = torch.tensor([0.5, 50.0], requires_grad=True)
    x = torch.randn(2, 2, 256, 4)
    leaky_average(x, decay, mode=mode, chunk=32).square().sum().backward()
    assert torch.isfinite(decay.grad).all() and decay.grad.abs().sum() > 0


def test_gradients_of_modes_agree():
    x = torch.randn(2, 2, 40, 3, dtype=torch.float64, requires_grad=True)
    decay = torch.tensor([0.2, 1.5], dtype=torch.float64, requires_grad=True)
    grads = []
    for mode in ("matrix", "chunked", "recurrent"):
        out = leaky_average(x, decay, mode=mode, chunk=7)
        grads.append(torch.autograd.grad(out.sin().sum(), [x, decay]))
    for g in grads[1:]:
        assert all(torch.allclose(a, b, atol=1e-9) for a, b in zip(grads[0], g))


def test_bad_arguments():
    x = torch.randn(1, 2, 5, 3)
    with pytest.raises(ValueError, match="one per head"):
        leaky_average(x, torch.zeros(3))
    with pytest.raises(ValueError, match="mode"):
        leaky_average(x, torch.zeros(2), mode="fft")
    with pytest.raises(ValueError, match=r"\(B, H, T, h\)"):
        leaky_average(x[0], torch.zeros(2))
    with pytest.raises(ValueError, match="chunk"):
        leaky_average(x, torch.zeros(2), chunk=0)
