import pytest
import torch

from hetmem.data.moons import moon_sequences
from hetmem.models.mosaics import ComplexLinear, MoonMemory, moon_loss, permutation_mass, rollout_error, unit_moduli


def test_complex_linear_has_block_form_and_multiplies_complex_numbers():
    layer = ComplexLinear(3)
    w = layer.weight
    assert torch.equal(w[0::2, 0::2], w[1::2, 1::2]) and torch.equal(w[0::2, 1::2], -w[1::2, 0::2])
    assert sum(p.numel() for p in layer.parameters()) == 18
    # unit j = (x_2j, x_2j+1) as the complex number x_2j + i x_2j+1: the map is the complex matrix a - i b
    x = torch.randn(6)
    out = layer(x).detach()
    expected = torch.complex(layer.a, -layer.b).detach() @ torch.complex(x[0::2], x[1::2])
    assert torch.allclose(torch.complex(out[0::2], out[1::2]), expected, atol=1e-5)


def test_model_shapes_parameters_and_zero_first_row():
    for heads in (1, 3):
        model = MoonMemory(num_heads=heads)
        out = model(torch.randn(2, 9, 6))
        assert out.shape == (2, 9, 6) and torch.equal(out[:, 0], torch.zeros(2, 6))
        assert sum(p.numel() for p in model.parameters()) == 54
    assert sum(p.numel() for p in MoonMemory(complex=False).parameters()) == 108


def test_causal_under_perturbation():
    model = MoonMemory(num_heads=3)
    x = torch.randn(1, 12, 6)
    base = model(x)
    for j in range(12):
        moved = x.clone()
        moved[:, j] += 1.0
        # the prediction at t reads values up to x_t: it may change from t = j on (and not before)
        assert torch.equal(model(moved)[:, :j], base[:, :j])


def test_identity_weights_predict_almost_exactly_after_the_lcm():
    # half scale: val periods 22.2 / 44.4 / 66.7 steps, lcm 133.3
    x = moon_sequences(32, block_size=400, length=400, split="val", seed=0)
    one = rollout_error(MoonMemory(num_heads=1).identity_(), x, [20, 60, 120, 140, 180, 250])
    assert (one[:3] > 0.5).all()  # before the lcm the whole system has not repeated yet
    assert (one[3:] < 0.05).all()  # after it the memory finds the exact repeat
    three = rollout_error(MoonMemory(num_heads=3).identity_(), x, [20, 140, 250])
    assert three[1] < three[0] / 4 and three[2] < 0.1


def test_first_rollout_step_equals_the_full_forward_prediction():
    model = MoonMemory(num_heads=3)
    x = moon_sequences(4, block_size=200, length=60, seed=1)
    for c in (1, 2, 17, 30):
        steps = 1
        err = rollout_error(model, x, [c], steps=steps)
        expected = (model(x[:, :c])[:, -1] - x[:, c]).abs().mean()
        assert torch.allclose(err[0], expected, atol=1e-6)


def test_permutation_mass():
    assert permutation_mass(torch.eye(3)) == 1.0
    assert permutation_mass(torch.ones(3, 3)) == pytest.approx(1 / 3)
    assert permutation_mass(torch.tensor([[0.1, 0.9, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.1]])) == pytest.approx(2.9 / 3.1)
    model = MoonMemory(num_heads=3).identity_()
    moduli = model.weight_moduli()
    assert set(moduli) == {"key", "value", "out"}
    assert all(torch.allclose(m, torch.eye(3)) for m in moduli.values())
    assert torch.allclose(unit_moduli(2 * torch.eye(6)), 2 * torch.eye(3))


def test_loss_is_clipped_and_every_parameter_learns():
    assert moon_loss(torch.tensor([2.0, 0.1]), torch.zeros(2)).item() == pytest.approx((0.25 + 0.01) / 2)
    model = MoonMemory(num_heads=3)
    x = moon_sequences(4, block_size=100, length=101, seed=2)
    moon_loss(model(x[:, :-1]), x[:, 1:]).backward()
    for name, p in model.named_parameters():
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_bad_arguments():
    with pytest.raises(ValueError, match="1 or 3"):
        MoonMemory(num_heads=2)
    with pytest.raises(ValueError, match="beta"):
        MoonMemory(beta=0)
    with pytest.raises(ValueError, match=r"\(B, T >= 1, 6\)"):
        MoonMemory()(torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="too short"):
        rollout_error(MoonMemory(), torch.randn(1, 30, 6), [10], steps=25)
    with pytest.raises(ValueError, match="context lengths >= 1"):
        rollout_error(MoonMemory(), torch.randn(1, 30, 6), [0], steps=5)
