"""``hetmem bench bonsai``: the time of one Bonsai pipeline (discovery rounds + synthesis) for one seed
on colored-mnist ``scale: irm`` (2 x 25,000 digits, the 390-wide MLP), on the threads given.

The pipeline runs with every phase's steps multiplied by ``fraction`` (1 = RFC's 51 + 501 + 501
steps); the full pipeline's time is then the measured training time divided by ``fraction``
(every step of a phase costs the same: full batches of fixed size), reported as an
extrapolation beside what was measured. Loading the data is timed apart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

__all__ = ["BonsaiBenchConfig", "bench_bonsai"]


@dataclass(frozen=True)
class BonsaiBenchConfig:
    fraction: float = 0.1  # of RFC's steps per phase
    threads: int | None = 1
    hidden_dim: int = 390
    train_digits: int | None = None  # None: all 50,000
    device: str = "cpu"
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise ValueError(f"--fraction must be in (0, 1], got {self.fraction}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"--threads must be a positive int, got {self.threads}")


def bench_bonsai(cfg: BonsaiBenchConfig) -> dict:
    """Returns the measured times (s), the steps run, and the extrapolated full-pipeline time."""
    from hetmem.experiments.rich import DATASETS, SCALES, _Context
    from hetmem.models.rich.bonsai import BonsaiConfig, discover_and_synthesize

    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    scale = SCALES["irm"]
    scale = type(scale)(**{**scale.__dict__, "hidden_dim": cfg.hidden_dim, "train_digits": cfg.train_digits})
    start = time.perf_counter()
    train, _ = _Context([cfg.seed], scale, torch.device(cfg.device)).data("cmnist")
    load_s = time.perf_counter() - start
    recipe = DATASETS["cmnist"]["bonsai"]
    steps = [max(1, round(s * cfg.fraction)) for s in (*recipe["round_steps"], recipe["synthesis_steps"])]
    bonsai_cfg = BonsaiConfig(round_steps=tuple(steps[:-1]), synthesis_steps=steps[-1], hidden_dim=cfg.hidden_dim)
    start = time.perf_counter()
    discover_and_synthesize(torch.cat(train.x, 1), torch.cat(train.y, 1), [cfg.seed], bonsai_cfg)
    if cfg.device.startswith("cuda"):
        torch.cuda.synchronize()
    train_s = time.perf_counter() - start
    full_steps = [*recipe["round_steps"], recipe["synthesis_steps"]]
    return {
        "rows": int(sum(x.shape[1] for x in train.x)), "hidden_dim": cfg.hidden_dim, "threads": torch.get_num_threads(),
        "device": cfg.device, "steps_run": steps, "full_steps": full_steps, "load_s": load_s, "train_s": train_s,
        "full_pipeline_s_extrapolated": train_s * sum(full_steps) / sum(steps),
    }
