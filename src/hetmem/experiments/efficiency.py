"""What HMA costs on top of its backbone: parameters, training step time, peak memory, latency."""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F

from hetmem.benchmarks.isolate import peak_rss_mb, run_isolated, sync

__all__ = ["measure_efficiency"]


def _count(module: torch.nn.Module | None, trainable: bool = True) -> int:
    if module is None:
        return 0
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable)


def _measure_variant(cfg_dict: dict[str, Any], steps: int, latency_repeats: int, device: str) -> dict[str, float]:
    """One variant in a fresh process: training steps on real batches, then batch-1 latency."""
    from hetmem.train.config import TrainConfig
    from hetmem.train.loaders import EpochLoader
    from hetmem.train.module import split_batch
    from hetmem.train.runner import _load_task, build_model

    cfg = TrainConfig(**cfg_dict)
    torch.manual_seed(0)
    task = _load_task(cfg, 0)
    model = build_model(cfg, task).to(device).train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    loader = EpochLoader(task.train, cfg.batch_size, shuffle=True, graph=task.is_graph, drop_last=len(task.train) >= cfg.batch_size)
    batches = [tuple(t.to(device) for t in b) if isinstance(b, tuple) else b.to(device) for b in loader]
    times = []
    for i in range(steps + 3):  # 3 warm-up steps
        x, y = split_batch(batches[i % len(batches)])
        sync(device)
        start = time.perf_counter()
        loss = F.cross_entropy(model(x, y), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync(device)
        if i >= 3:
            times.append(time.perf_counter() - start)
    # Whole-process peak: params, gradients, optimiser state and activations on top of the same
    # baseline (interpreter, libraries, data) in both variants, so the difference is HMA's cost.
    peak_mb = torch.cuda.max_memory_allocated() / 2**20 if str(device).startswith("cuda") else peak_rss_mb()
    model.eval()
    one = next(iter(EpochLoader(task.tests[next(iter(task.tests))], 1, shuffle=False, graph=task.is_graph)))
    x1 = split_batch(one)[0].to(device) if not task.is_graph else one.to(device)
    latency = []
    with torch.no_grad():
        for i in range(latency_repeats + 5):
            sync(device)
            start = time.perf_counter()
            model(x1)
            sync(device)
            if i >= 5:
                latency.append(time.perf_counter() - start)
    return {
        "params_backbone": _count(model.backbone),
        "params_head": _count(model.head),
        "params_frozen": _count(model.momentum_encoder, trainable=False),
        "queue_floats": model.head.queue.rows.numel() if model.head.queue is not None else 0,
        "step_ms": 1000 * statistics.median(times),
        "peak_mb": peak_mb,
        "latency_ms": 1000 * statistics.median(latency),
    }


def measure_efficiency(cfg: Any, *, steps: int = 20, latency_repeats: int = 50, device: str = "cpu") -> dict[str, Any]:
    """The cost of ``cfg``'s HMA (variant "hma") over the same backbone with a linear head.

    Each variant runs in its own process so peak memory is measured separately.

    Returns:
        ``params_backbone``; ``params_added`` (trainable parameters of the HMA head minus the
        linear head); ``params_frozen`` (the momentum encoder); ``queue_floats``; and for
        ``none`` and ``hma``: ``step_ms`` (median training step: forward, backward, Adam, and for
        HMA the EMA update and queue write), ``peak_mb`` (the process's peak resident memory on
        CPU, the allocator's peak on CUDA) and ``latency_ms`` (eval, batch of 1);
        ``step_ratio`` and ``latency_ratio`` (hma / none).
    """
    out: dict[str, Any] = {"device": device, "batch_size": cfg.batch_size, "steps": steps}
    for variant in ("none", "hma"):
        data = cfg.model_copy(update={"variant": variant}).to_dict()
        out[variant] = run_isolated(_measure_variant, data, steps, latency_repeats, device)
    none, hma = out["none"], out["hma"]
    out["params_backbone"] = none["params_backbone"]
    out["params_added"] = hma["params_head"] - none["params_head"]
    out["params_frozen"] = hma["params_frozen"]
    out["queue_floats"] = hma["queue_floats"]
    out["step_ratio"] = hma["step_ms"] / none["step_ms"]
    out["latency_ratio"] = hma["latency_ms"] / none["latency_ms"]
    return out
