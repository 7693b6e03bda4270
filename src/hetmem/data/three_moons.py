"""The ``three-moons`` task: predict the next observation of three moons from the sequence so far.

The data are :mod:`hetmem.data.moons` (the thesis's Fig. 3.4 system, official
``ThreeMoons/planets.py``): training sequences use the 8 training period triples and a fresh
random phase for every sequence of every step; validation and test use the held-out triple
(1, 2, 3) with phases fixed by ``eval_seed`` (test phases differ from validation's). The
model is the :class:`~hetmem.models.mosaics.MoonMemory` toy (``--backbone moon``,
``backbone_options.num_heads`` 1 or 3); its loss is the official clipped square error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hetmem.data.moons import moon_batch, moon_periods_in_steps
from hetmem.data.sequence import Batches, SequenceTaskData, check_positive_options
from hetmem.data.task import register_task
from hetmem.errors import ConfigError

__all__ = ["load_three_moons"]


def _draw(seq_len: int, split: str):
    def draw(rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        x, y = moon_batch(batch_size, block_size=seq_len, seed=rng, split=split)
        return {"x": x, "y": y}

    return draw


@register_task("three-moons", offline=True, kind="sequence")
def load_three_moons(
    *,
    root: Path,
    seed: int,
    per_class: int | None,
    seq_len: int = 400,
    steps_per_epoch: int = 50,
    eval_batches: int = 4,
    eval_seed: int = 100,
) -> SequenceTaskData:
    """Three moons (thesis Fig. 3.4): 6-d sequences of three periodic moons, held-out periods (generated, offline).

    Args:
        seq_len: T, the block (official 800; 400 is the half scale that fits a CPU). It also
            sets the sampling rate: a block holds three periods of the slowest system.
        steps_per_epoch: fresh training batches per epoch.
        eval_batches: batches of held-out-period sequences in validation and in the test.
        eval_seed: fixes the held-out sequences' phases.
    """
    check_positive_options("three-moons", seq_len=seq_len, steps_per_epoch=steps_per_epoch, eval_batches=eval_batches)
    if seq_len < 2 or seq_len > 4999:
        raise ConfigError(f"task option 'seq_len' of three-moons must be in [2, 4999], got {seq_len}")
    steps, lcm = moon_periods_in_steps((1.0, 2.0, 3.0), block_size=seq_len)
    return SequenceTaskData(
        name="three-moons",
        objective="moons",
        train=Batches(_draw(seq_len, "train"), num=steps_per_epoch),
        val=Batches(_draw(seq_len, "val"), num=eval_batches, eval_seed=eval_seed),
        tests={"test": Batches(_draw(seq_len, "val"), num=eval_batches, eval_seed=eval_seed + 1)},
        models=("moon",),
        input_dim=6,
        max_len=seq_len,
        info={"source": "three-moons generator (thesis Fig. 3.4)", "val_periods_steps": [round(p, 2) for p in steps],
              "val_lcm_steps": round(lcm, 2)},
    )
