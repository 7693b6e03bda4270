"""Benchmark of the Memory Mosaic LM against the same-size GPT: training step, cached generation, memory.

Everything is measured in one run so that ratios are comparable on a shared machine: the
two models' training steps are timed alternately in one process (the minimum over repeats is
the least disturbed by other processes; the median is reported too), peak memory is measured
in a fresh process per model and length (:func:`~hetmem.benchmarks.isolate.run_isolated`),
and generation speed is timed at several prompt lengths, with the cache and by recomputing
the prefix, to show that a cached token costs the same at every position.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from hetmem.benchmarks.isolate import PeakMemory, run_isolated, sync
from hetmem.models.mosaics import create_sequence_model

__all__ = ["MosaicsBenchConfig", "bench_mosaics"]

MODELS = ("mosaic", "gpt")


@dataclass
class MosaicsBenchConfig:
    dim: int = 128  # d of both models (the spec's CPU measurements use d = 128, H = 4, L = 4)
    num_heads: int = 4
    num_layers: int = 4
    vocab_size: int = 256
    seq_lens: tuple[int, ...] = (256, 1024)  # training-step lengths T
    tokens: int = 4096  # tokens per training batch: B = tokens // T
    decode_positions: tuple[int, ...] = (64, 256, 1024)  # prompt lengths before the timed generation
    decode_tokens: int = 16  # generated tokens timed at each position (batch 1)
    repeats: int = 5  # timed training steps per model and length
    profile: bool = False  # also list the operators that dominate one Memory Mosaic step
    seed: int = 0
    device: str = "cpu"
    extra: dict[str, Any] = field(default_factory=dict)  # more model options (e.g. leaky_mode)

    def __post_init__(self) -> None:
        self.seq_lens = tuple(self.seq_lens)
        self.decode_positions = tuple(self.decode_positions)
        for name in ("dim", "num_heads", "num_layers", "vocab_size", "tokens", "decode_tokens", "repeats"):
            if getattr(self, name) < 1:
                raise ValueError(f"MosaicsBenchConfig: {name} must be >= 1, got {getattr(self, name)}")
        if not self.seq_lens or min(self.seq_lens) < 2 or not self.decode_positions or min(self.decode_positions) < 1:
            raise ValueError(f"MosaicsBenchConfig: need lengths >= 2 and positions >= 1, got {self.seq_lens}, {self.decode_positions}")
        if self.dim % self.num_heads:
            raise ValueError(f"MosaicsBenchConfig: dim ({self.dim}) must be divisible by num_heads ({self.num_heads})")

    @property
    def block_size(self) -> int:
        return max(*self.seq_lens, max(self.decode_positions) + self.decode_tokens)


def _models(cfg: MosaicsBenchConfig) -> dict[str, torch.nn.Module]:
    options = dict(dim=cfg.dim, num_heads=cfg.num_heads, num_layers=cfg.num_layers, dropout=0.0, block_size=cfg.block_size)
    models = {}
    for name in MODELS:
        torch.manual_seed(cfg.seed)
        extra = cfg.extra if name == "mosaic" else {}
        models[name] = create_sequence_model(name, cfg.vocab_size, **options, **extra).to(cfg.device)
    return models


def _batch(cfg: MosaicsBenchConfig, T: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(cfg.seed)
    data = torch.randint(0, cfg.vocab_size, (max(1, cfg.tokens // T), T + 1), generator=g).to(cfg.device)
    return data[:, :-1], data[:, 1:]


def _train_step(model: torch.nn.Module, idx: torch.Tensor, targets: torch.Tensor) -> None:
    model.zero_grad(set_to_none=True)
    _, loss = model(idx, targets)
    loss.backward()


def _peak_train_mb(name: str, T: int, cfg_dict: dict[str, Any]) -> float:
    """Runs in a fresh process: peak memory of one training step."""
    cfg = MosaicsBenchConfig(**cfg_dict)
    model = _models(cfg)[name]
    idx, targets = _batch(cfg, T)
    peak = PeakMemory(cfg.device)
    peak.start()
    _train_step(model, idx, targets)
    sync(cfg.device)
    return peak.peak_mb()


def _time_train(cfg: MosaicsBenchConfig, models: dict[str, torch.nn.Module], T: int) -> dict[str, list[float]]:
    idx, targets = _batch(cfg, T)
    times: dict[str, list[float]] = {name: [] for name in models}
    for model in models.values():
        _train_step(model, idx, targets)  # warm-up
    for _ in range(cfg.repeats):
        for name, model in models.items():  # alternate: both models see the same machine load
            sync(cfg.device)
            start = time.perf_counter()
            _train_step(model, idx, targets)
            sync(cfg.device)
            times[name].append(time.perf_counter() - start)
    return times


@torch.no_grad()
def _decode_seconds_per_token(cfg: MosaicsBenchConfig, model: torch.nn.Module, position: int, use_cache: bool) -> float:
    """Seconds per generated token after a prompt of ``position`` tokens (prefill not timed)."""
    g = torch.Generator().manual_seed(cfg.seed)
    prompt = torch.randint(0, cfg.vocab_size, (1, position), generator=g).to(cfg.device)
    model.eval()
    cache = model.new_cache() if use_cache else None
    features = model.forward_features(prompt, cache)
    tokens = prompt
    sync(cfg.device)
    start = time.perf_counter()
    for _ in range(cfg.decode_tokens):
        next_token = model.forward_head(features[:, -1]).argmax(-1, keepdim=True)  # (1, 1)
        tokens = torch.cat([tokens, next_token], dim=1)
        features = model.forward_features(next_token, cache) if use_cache else model.forward_features(tokens)
    sync(cfg.device)
    return (time.perf_counter() - start) / cfg.decode_tokens


def _profile(model: torch.nn.Module, idx: torch.Tensor, targets: torch.Tensor, top: int = 8) -> list[dict[str, Any]]:
    from torch.profiler import profile

    _train_step(model, idx, targets)
    with profile() as prof:
        _train_step(model, idx, targets)
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    total = sum(e.self_cpu_time_total for e in prof.key_averages())
    return [{"op": e.key, "self_ms": e.self_cpu_time_total / 1e3, "share": e.self_cpu_time_total / total, "calls": e.count} for e in rows]


def bench_mosaics(cfg: MosaicsBenchConfig | None = None) -> dict[str, Any]:
    """Training step and cached generation of MemoryMosaicLM vs GPTLM of the same size.

    Returns:
        ``params`` per model; ``train``: per length T, each model's ``min_s``, ``median_s`` and
        ``peak_mb`` and ``ratio`` (Memory Mosaic / GPT, from the minima); ``decode``: per
        prompt length, tokens per second per model with and without the cache;
        ``decode_flatness``: per model, cached tokens/s at the longest position divided by
        that at the shortest (1.0 = flat); ``profile`` (with ``cfg.profile``): the operators
        that dominate one Memory Mosaic training step at the longest T; the configuration
        and torch's thread count.
    """
    cfg = cfg or MosaicsBenchConfig()
    models = _models(cfg)
    report: dict[str, Any] = {"params": {name: m.num_parameters() for name, m in models.items()}, "train": {}, "decode": {}}
    for T in cfg.seq_lens:
        times = _time_train(cfg, models, T)
        row: dict[str, Any] = {"batch_size": max(1, cfg.tokens // T)}
        for name in MODELS:
            row[name] = {
                "min_s": min(times[name]),
                "median_s": statistics.median(times[name]),
                "peak_mb": run_isolated(_peak_train_mb, name, T, asdict(cfg)),
            }
        row["ratio"] = row["mosaic"]["min_s"] / row["gpt"]["min_s"]
        report["train"][str(T)] = row
    for position in cfg.decode_positions:
        report["decode"][str(position)] = {
            name: {
                "cached_tokens_per_s": 1 / _decode_seconds_per_token(cfg, model, position, use_cache=True),
                "recompute_tokens_per_s": 1 / _decode_seconds_per_token(cfg, model, position, use_cache=False),
            }
            for name, model in models.items()
        }
    first, last = str(min(cfg.decode_positions)), str(max(cfg.decode_positions))
    report["decode_flatness"] = {
        name: report["decode"][last][name]["cached_tokens_per_s"] / report["decode"][first][name]["cached_tokens_per_s"]
        for name in MODELS
    }
    if cfg.profile:
        models["mosaic"].train()
        report["profile"] = _profile(models["mosaic"], *_batch(cfg, max(cfg.seq_lens)))
    report["torch_threads"] = torch.get_num_threads()
    report["config"] = asdict(cfg)
    return report
