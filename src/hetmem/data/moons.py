"""The three-moons data of the Memory Mosaics paper (thesis Figs. 3.4-3.6, official ``ThreeMoons/planets.py``).

Three moons circle a planet with periods p_1, p_2, p_3 (time units); an observer on the sun
sees x_t = [sin th_1, cos th_1, sin th_2, cos th_2, sin th_3, cos th_3] with
``th_k = 2 pi tau / p_k + 0.3`` and ``tau = (start + t) / s``, s = block_size / (6 * 3)
samples per time unit (6 = the largest lcm of the kept period triples, 3 = full system periods
per block), ``start ~ U{0, ..., 10000 - 2 block_size - 2}`` per sequence. Targets are x_{t+1}.

The period triples are the 3-subsets of {0.5, 1, ..., 3.5} ranked by their lcm; the 9
smallest are kept and the last one is held out for validation. They are hard-coded here
because the official split depends on numpy's argsort tie order (spec trap 9):
validation = (1, 2, 3), i.e. 44.4 / 88.9 / 133.3 steps and lcm 266.7 steps at block 800
(half of that at the half scale, block 400).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "MOON_TRAIN_PERIODS",
    "MOON_VAL_PERIODS",
    "moon_batch",
    "moon_periods_in_steps",
    "moon_sequences",
    "moon_spacing",
]

MOON_TRAIN_PERIODS: tuple[tuple[float, float, float], ...] = (
    (0.5, 1.0, 2.0), (0.5, 1.0, 1.5), (0.5, 1.0, 3.0), (0.5, 1.5, 3.0),
    (1.0, 1.5, 3.0), (0.5, 1.0, 2.5), (1.0, 1.5, 2.0), (0.5, 1.5, 2.0),
)
MOON_VAL_PERIODS: tuple[tuple[float, float, float], ...] = ((1.0, 2.0, 3.0),)
_TOTAL_TOKENS = 10_000  # length of the official time axis the windows are cut from
_MAX_LCM = 6.0  # the largest lcm among the 9 kept triples (time units)
_OFFSET = 0.3  # phase offset of every moon


def moon_spacing(block_size: int, min_periods_in_block: int = 3) -> float:
    """Samples per time unit: ``block_size / (6 * min_periods_in_block)`` (44.4 at block 800)."""
    return block_size / _MAX_LCM / min_periods_in_block


def moon_periods_in_steps(periods: tuple[float, ...], block_size: int = 800, min_periods_in_block: int = 3) -> tuple[list[float], float]:
    """The moons' periods and their lcm, in time steps.

    Example:
        >>> steps, lcm = moon_periods_in_steps((1.0, 2.0, 3.0), block_size=400)
        >>> [round(p, 1) for p in steps], round(lcm, 1)
        ([22.2, 44.4, 66.7], 133.3)
    """
    s = moon_spacing(block_size, min_periods_in_block)
    halves = [int(round(2 * p)) for p in periods]  # every period is a multiple of 0.5
    lcm = math.lcm(*halves) / 2
    return [p * s for p in periods], lcm * s


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def moon_sequences(
    num: int,
    *,
    block_size: int = 800,
    length: int | None = None,
    split: Literal["train", "val"] = "train",
    seed: int | np.random.Generator | None = None,
    min_periods_in_block: int = 3,
    observer: Literal["sun", "planet"] = "sun",
    periods: tuple[float, float, float] | None = None,
) -> Tensor:
    """``num`` random windows of the three-moons system, each with its own start and period triple.

    Args:
        num: sequences to draw.
        block_size: the training block T; sets the spacing and the start range (official 800;
            400 is the half scale).
        length: samples per sequence (default ``block_size + 1``: inputs and shifted targets).
        split: ``"train"`` draws one of the 8 training triples per sequence; ``"val"`` uses (1, 2, 3).
        seed: an int, a numpy Generator, or None.
        min_periods_in_block: full system periods per block (official 3).
        observer: ``"sun"`` (the paper's) or ``"planet"`` (moons 1 and 2 relative to moon 3).
        periods: use this triple for every sequence instead of the split's.

    Returns:
        (num, length, 6) float32.
    """
    if num < 1 or block_size < 1:
        raise ValueError(f"moon_sequences: num and block_size must be >= 1, got {num}, {block_size}")
    length = block_size + 1 if length is None else length
    max_start = _TOTAL_TOKENS - 2 * block_size - 2
    if length < 1 or max_start < 0:
        raise ValueError(f"moon_sequences: need length >= 1 and block_size <= {(_TOTAL_TOKENS - 2) // 2}, got {length}, {block_size}")
    if split not in ("train", "val"):
        raise ValueError(f"moon_sequences: split must be 'train' or 'val', got {split!r}")
    if observer not in ("sun", "planet"):
        raise ValueError(f"moon_sequences: observer must be 'sun' or 'planet', got {observer!r}")
    rng = _rng(seed)
    starts = rng.integers(0, max_start + 1, size=num)  # (num,)
    if periods is not None:
        triples = np.tile(np.asarray(periods, dtype=np.float64), (num, 1))
    else:
        table = np.asarray(MOON_TRAIN_PERIODS if split == "train" else MOON_VAL_PERIODS)
        triples = table[rng.integers(0, len(table), size=num)]  # (num, 3)
    tau = (starts[:, None] + np.arange(length)[None, :]) / moon_spacing(block_size, min_periods_in_block)  # (num, L)
    theta = 2 * np.pi * tau[:, :, None] / triples[:, None, :] + _OFFSET  # (num, L, 3)
    sines, cosines = np.sin(theta), np.cos(theta)
    if observer == "planet":
        sines[..., :2] -= sines[..., 2:]
        cosines[..., :2] -= cosines[..., 2:]
    data = np.stack([sines, cosines], axis=-1).reshape(num, length, 6)  # [sin1, cos1, sin2, cos2, sin3, cos3]
    return torch.from_numpy(data.astype(np.float32))


def moon_batch(batch_size: int, *, block_size: int = 800, **options) -> tuple[Tensor, Tensor]:
    """Inputs x_0..x_{T-1} and targets x_1..x_T, each (B, T, 6); options as :func:`moon_sequences`.

    Example:
        >>> x, y = moon_batch(2, block_size=400, seed=0)
        >>> x.shape, bool((x[:, 1:] == y[:, :-1]).all())
        (torch.Size([2, 400, 6]), True)
    """
    data = moon_sequences(batch_size, block_size=block_size, length=block_size + 1, **options)
    return data[:, :-1], data[:, 1:]
