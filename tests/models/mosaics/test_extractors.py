import math

import pytest
import torch

from hetmem.models.mosaics import EXP_SCALE, KeyExtractor, ValueExtractor


def test_keys_have_the_learned_norm_and_follow_the_leaky_average():
    keys_fn = KeyExtractor(12, 3)
    x = torch.randn(2, 7, 12)
    keys, state = keys_fn(x)
    assert torch.allclose(keys.norm(dim=-1), torch.full((2, 3, 7), math.e), atol=1e-5)  # s_k = exp(10 * 0.1)
    raw = keys_fn.W_k(x).view(2, 7, 3, 4).transpose(1, 2)
    lam = torch.exp(-keys_fn.decay)[None, :, None]
    expected = raw[:, :, 0]
    for t in range(1, 7):
        expected = raw[:, :, t] + lam * expected
    assert torch.allclose(state, expected, atol=1e-5)
    assert torch.allclose(keys[:, :, -1], expected / expected.norm(dim=-1, keepdim=True) * math.e, atol=1e-5)


def test_initial_decays_and_scales_match_the_official_code():
    keys_fn = KeyExtractor(16, 4)
    assert torch.allclose(keys_fn.decay, torch.linspace(0.5, 5, 4))
    lam = torch.exp(-keys_fn.decay)
    assert abs(lam[0] - 0.607) < 1e-3 and abs(lam[-1] - 0.0067) < 1e-4
    assert torch.allclose(KeyExtractor(16, 4, scale_power=2).scale, torch.full((4,), math.e**2))
    with torch.no_grad():
        keys_fn.kernel_beta.fill_(100.0)
    assert torch.allclose(keys_fn.scale, torch.full((4,), math.exp(5.0)))  # clamped at e^5
    assert EXP_SCALE == 10


def test_mix_values_look_exactly_one_step_ahead():
    values_fn = ValueExtractor(8, 2)
    x = torch.randn(1, 6, 8)
    base = values_fn(x)
    for j in range(6):
        moved = x.clone()
        moved[:, j] += 1.0
        changed = (values_fn(moved) - base).abs().amax(dim=(0, 1, 3)) > 1e-6  # (T,)
        expected = torch.zeros(6, dtype=torch.bool)
        expected[j] = True
        if j > 0:
            expected[j - 1] = True
        assert torch.equal(changed, expected), j
    assert torch.allclose(base.norm(dim=-1), torch.full((1, 2, 6), math.exp(-0.5)), atol=1e-5)


def test_mix_is_the_convex_combination_and_conv2_has_two_maps():
    values_fn = ValueExtractor(4, 1)
    x = torch.randn(1, 3, 4)
    u = values_fn.W_v(x)[0]
    c = values_fn.coef[0]
    mixed = (1 - c) * u[1] + c * u[0]
    assert torch.allclose(values_fn(x)[0, 0, 0], mixed / mixed.norm() * math.exp(-0.5), atol=1e-5)
    conv2 = ValueExtractor(4, 1, kind="conv2")
    assert conv2.W_v.weight.shape == (8, 4) and conv2.coef is None
    assert conv2(x).shape == (1, 1, 3, 4)


def test_zero_input_gives_no_nan():
    keys, _ = KeyExtractor(4, 2)(torch.zeros(1, 3, 4))
    assert torch.isfinite(keys).all() and torch.isfinite(ValueExtractor(4, 2)(torch.zeros(1, 3, 4))).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="divisible"):
        KeyExtractor(10, 3)
    with pytest.raises(ValueError, match="positive"):
        ValueExtractor(0, 1)
    with pytest.raises(ValueError, match="kind"):
        ValueExtractor(4, 2, kind="conv3")
    with pytest.raises(ValueError, match="leaky_mode"):
        KeyExtractor(4, 2, leaky_mode="fast")
