import numpy as np
import pytest
import torch

from hetmem.data.moons import MOON_TRAIN_PERIODS, MOON_VAL_PERIODS, moon_batch, moon_periods_in_steps, moon_sequences, moon_spacing


def recover_periods_and_start(seq, block_size):
    """Invert the generator: the phase of each moon over time gives its period and the start."""
    theta = np.unwrap(np.arctan2(seq[:, 0::2].numpy().astype(np.float64), seq[:, 1::2].numpy().astype(np.float64)), axis=0)
    rates = (theta[-1] - theta[0]) / (len(seq) - 1)  # radians per step = 2 pi / (p s)
    return 2 * np.pi / rates / moon_spacing(block_size)


def test_split_tables_match_the_spec():
    assert len(MOON_TRAIN_PERIODS) == 8 and MOON_VAL_PERIODS == ((1.0, 2.0, 3.0),)
    assert (1.0, 2.0, 3.0) not in MOON_TRAIN_PERIODS
    steps, lcm = moon_periods_in_steps((1.0, 2.0, 3.0), block_size=800)
    assert np.allclose(steps, [44.444, 88.889, 133.333], atol=1e-3) and lcm == pytest.approx(266.667, abs=1e-3)
    assert moon_spacing(800) == pytest.approx(44.444, abs=1e-3)


def test_values_follow_the_official_formula():
    seq = moon_sequences(3, block_size=400, length=50, split="val", seed=5)
    rng = np.random.default_rng(5)
    starts = rng.integers(0, 10000 - 800 - 2 + 1, size=3)
    tau = (starts[:, None] + np.arange(50)) / (400 / 18)
    theta = 2 * np.pi * tau[:, :, None] / np.array([1.0, 2.0, 3.0]) + 0.3
    expected = np.stack([np.sin(theta), np.cos(theta)], -1).reshape(3, 50, 6)
    assert np.allclose(seq.numpy(), expected, atol=1e-6)


def test_training_triples_vary_per_sequence_and_val_is_fixed():
    train = moon_sequences(40, block_size=400, length=400, split="train", seed=0)
    found = {tuple(np.round(recover_periods_and_start(s, 400), 2)) for s in train}
    assert found <= {tuple(p) for p in MOON_TRAIN_PERIODS} and len(found) >= 5
    val = moon_sequences(5, block_size=400, length=400, split="val", seed=0)
    assert {tuple(np.round(recover_periods_and_start(s, 400), 2)) for s in val} == {(1.0, 2.0, 3.0)}


def test_batch_shift_seed_and_observer():
    x, y = moon_batch(4, block_size=200, seed=1)
    assert x.shape == y.shape == (4, 200, 6) and x.dtype == torch.float32
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert torch.equal(moon_batch(4, block_size=200, seed=1)[0], x)
    assert not torch.equal(moon_batch(4, block_size=200, seed=2)[0], x)
    sun = moon_sequences(2, block_size=200, seed=3)
    planet = moon_sequences(2, block_size=200, seed=3, observer="planet")
    assert torch.allclose(planet[..., :4], sun[..., :4] - sun[..., 4:].repeat(1, 1, 2), atol=1e-6)
    assert torch.equal(planet[..., 4:], sun[..., 4:])


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        moon_sequences(2, split="test")
    with pytest.raises(ValueError, match="observer"):
        moon_sequences(2, observer="moon")
    with pytest.raises(ValueError, match="block_size <="):
        moon_sequences(2, block_size=6000)
    with pytest.raises(ValueError, match=">= 1"):
        moon_sequences(0)
