"""Evaluation latency of HMA: memory keys and values cached vs recomputed every call.

One run times every path at every batch size, interleaved round by round so that a slow
moment of a shared machine falls on all of them alike:

- ``head``: HMAHead alone (features in, logits out); ``model``: the colored-mnist MLP
  backbone + the head (pixels in);
- ``uncached``: the memories projected on every call (hetmem before the cache);
  ``cached``: keys and values kept between calls; ``compiled``: cached, the per-row part
  through ``torch.compile`` (compile time excluded: the first calls are warm-up).

Beside the times: the head's FLOPs (``torch.utils.flop_counter``) and achieved GFLOP/s, this
machine's measured matmul rate (compute-bound ceiling) and matrix-vector rate (the bandwidth
ceiling a batch of one meets: every weight is read once per call), and the latency floor that
the head's weight bytes at that bandwidth imply.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from hetmem.benchmarks.isolate import sync

__all__ = ["LatencyBenchConfig", "bench_latency", "machine_rates"]

GOAL = 8.0  # batch-1 head: uncached latency / best cached latency (issue 14)


@dataclass
class LatencyBenchConfig:
    feature_dim: int = 390  # D1: the MLP backbone's width on 2x14x14 colored-mnist
    image_shape: tuple[int, int, int] = (2, 14, 14)  # the backbone's input
    num_classes: int = 2
    label_dim: int = 64
    queue_size: int = 512  # all rows filled
    slots_per_class: int = 8
    num_heads: int = 4
    batch_sizes: tuple[int, ...] = (1, 256)
    rounds: int = 7  # interleaved rounds; the median of the rounds is reported
    calls: int = 20  # calls per round at batch 1 (fewer at larger batches, see _calls)
    compile: bool = True  # also time the torch.compile path (falls back where no compiler works)
    threads: int | None = None  # torch.set_num_threads for the run; None keeps the current setting
    seed: int = 0
    device: str = "cpu"
    paths: tuple[str, ...] = field(default=("uncached", "cached", "compiled"))
    preset: str = "paper"  # HMAConfig preset: "paper" (the full-width head of the issue) or "default" (128 wide)


def _calls(cfg: LatencyBenchConfig, batch: int) -> int:
    return max(2, cfg.calls // max(1, batch // 16))


def _time(fn: Callable[[], Any], calls: int, device: str) -> float:
    sync(device)
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    sync(device)
    return (time.perf_counter() - start) / calls


def machine_rates(device: str = "cpu", *, working_set_mb: float = 20.0, size: int = 512, rows: int = 454, cols: int = 1816) -> dict[str, float]:
    """Measured matmul GFLOP/s (size^3, compute-bound), and the matrix-vector rate (GFLOP/s,
    GB/s) of (cols, rows) fp32 weights times one vector, cycling through ``working_set_mb`` of
    weights so that, as in a batch-1 forward, they do not all stay in a core's cache."""
    a = torch.randn(size, size, device=device)
    count = max(1, math.ceil(working_set_mb * 1e6 / (4 * rows * cols)))
    ws, v = [torch.randn(cols, rows, device=device) for _ in range(count)], torch.randn(rows, device=device)

    def matvecs() -> None:
        for w in ws:
            w @ v

    with torch.inference_mode():
        for _ in range(3):
            a @ a, matvecs()
        mm = min(_time(lambda: a @ a, 5, device) for _ in range(3))
        mv = min(_time(matvecs, 10, device) for _ in range(3)) / count
    return {
        "matmul_gflops": 2 * size**3 / mm / 1e9,
        "matvec_gflops": 2 * rows * cols / mv / 1e9,
        "matvec_gbps": 4 * rows * cols / mv / 1e9,
    }


def _build(cfg: LatencyBenchConfig) -> tuple[Any, Any]:
    from hetmem.backbones import InputSpec, create_backbone
    from hetmem.models.hma import HMAClassifier, HMAConfig

    torch.manual_seed(cfg.seed)
    hma = HMAConfig.from_preset(
        cfg.preset,
        num_classes=cfg.num_classes,
        label_dim=cfg.label_dim,
        queue_size=cfg.queue_size,
        slots_per_class=cfg.slots_per_class,
        num_heads=cfg.num_heads,
    )
    backbone = create_backbone("mlp", InputSpec.image(*cfg.image_shape), hidden_dim=cfg.feature_dim)  # IRM's MLP
    model = HMAClassifier(backbone, hma).to(cfg.device).eval()
    feats = torch.randn(cfg.queue_size, cfg.feature_dim, device=cfg.device)
    model.head.write_memory_(feats, torch.randint(0, cfg.num_classes, (cfg.queue_size,), device=cfg.device))
    return model, model.head


def _flops(fn: Callable[[], Any]) -> int:
    counter = FlopCounterMode(display=False)
    with torch.no_grad():  # (FlopCounterMode's module tracker rejects inference mode)
        fn()  # fills the cache for no-grad mode, so a cached path counts only its per-call work
        with counter:
            fn()
    return counter.get_total_flops()


def bench_latency(cfg: LatencyBenchConfig | None = None) -> dict[str, Any]:
    """Times every (scope, batch, path) and returns them with FLOPs, machine rates and the goal.

    Returns:
        ``rows``: one dict per scope x batch x path with ``median_ms``, ``min_ms`` (over rounds),
        ``flops`` and ``gflops_per_s``; ``speedups``: uncached / cached and uncached / compiled
        median latency per scope and batch; ``machine``: :func:`machine_rates`; ``head_weight_mb``
        and ``batch1_floor_ms`` (weight bytes / matrix-vector bandwidth); ``compile``: whether it
        worked, its error, its warm-up seconds; ``goal``: batch-1 head speedup vs the 8x target.
    """
    from hetmem.inference.compiled import CompiledHead

    cfg = cfg or LatencyBenchConfig()
    threads_before = torch.get_num_threads()
    dynamo_log = logging.getLogger("torch._dynamo")
    level = dynamo_log.level
    dynamo_log.setLevel(logging.ERROR)  # its graph-break notice (the head's input check) is expected
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _run(cfg, CompiledHead)
    finally:
        torch.set_num_threads(threads_before)
        dynamo_log.setLevel(level)


def _run(cfg: LatencyBenchConfig, compiled_head: Callable[..., Any]) -> dict[str, Any]:
    model, head = _build(cfg)
    paths = [p for p in cfg.paths if p != "compiled" or cfg.compile]
    fast = compiled_head(head) if "compiled" in paths else None
    calls: dict[tuple[str, int, str], Callable[[], Any]] = {}
    for batch in cfg.batch_sizes:
        x = torch.randn(batch, *cfg.image_shape, device=cfg.device)
        f = torch.randn(batch, cfg.feature_dim, device=cfg.device)
        for path in paths:
            if path == "compiled":
                calls["head", batch, path] = lambda f=f: fast(f)
                calls["model", batch, path] = lambda x=x: fast(model.backbone.forward_features(x))
            else:
                calls["head", batch, path] = lambda f=f: head(f)
                calls["model", batch, path] = lambda x=x: model(x)
    head.cache_memory = True
    set_cache = {p: p != "uncached" for p in paths}
    compile_s = None
    with torch.inference_mode():
        for (scope, batch, path), fn in calls.items():  # warm-up; the compiled path compiles here
            head.cache_memory = set_cache[path]
            start = time.perf_counter()
            fn(), fn()
            if path == "compiled" and compile_s is None:
                compile_s = time.perf_counter() - start
        times: dict[tuple[str, int, str], list[float]] = {k: [] for k in calls}
        for _ in range(cfg.rounds):
            for (scope, batch, path), fn in calls.items():
                head.cache_memory = set_cache[path]
                times[scope, batch, path].append(_time(fn, _calls(cfg, batch), cfg.device))
    rows = []
    for (scope, batch, path), ts in times.items():
        head.cache_memory = set_cache[path]
        flops = _flops(calls[scope, batch, path if path != "compiled" else "cached"])
        med = statistics.median(ts)
        rows.append({"scope": scope, "batch": batch, "path": path, "median_ms": med * 1e3, "min_ms": min(ts) * 1e3,
                     "flops": flops, "gflops_per_s": flops / med / 1e9})
    head.cache_memory = True
    return _report(cfg, rows, fast, compile_s, head)


def _report(cfg: LatencyBenchConfig, rows: list[dict], fast: Any, compile_s: float | None, head: Any) -> dict[str, Any]:
    by = {(r["scope"], r["batch"], r["path"]): r["median_ms"] for r in rows}
    speedups = {
        f"{scope}_b{batch}_{path}": by[scope, batch, "uncached"] / by[scope, batch, path]
        for (scope, batch, path) in by
        if path != "uncached" and (scope, batch, "uncached") in by
    }
    weight_mb = sum(p.numel() * p.element_size() for p in head.parameters()) / 1e6
    machine = machine_rates(cfg.device, working_set_mb=weight_mb)
    floor_ms = weight_mb / 1e3 / machine["matvec_gbps"] * 1e3
    best = max((v for k, v in speedups.items() if k.startswith("head_b1_")), default=float("nan"))
    met = best >= GOAL
    line = (
        f"batch-1 head: {best:.1f}x faster than uncached (goal {GOAL:.0f}x): {'met' if met else 'MISSED'}; "
        f"uncached {by.get(('head', 1, 'uncached'), float('nan')):.2f} ms, floor from weight bytes {floor_ms:.2f} ms"
    )
    return {
        "rows": rows,
        "speedups": speedups,
        "machine": machine,
        "head_weight_mb": weight_mb,
        "batch1_floor_ms": floor_ms,
        "compile": {"used": fast is not None and fast.compiled, "error": getattr(fast, "error", None), "warmup_s": compile_s},
        "goal": {"target": GOAL, "achieved": best, "met": met, "line": line},
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "config": asdict(cfg),
    }
