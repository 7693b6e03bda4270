"""A one-screen text table of run summaries (mean +- std over seeds)."""

from __future__ import annotations

from collections.abc import Sequence

from hetmem.train.runner import RunResult

__all__ = ["summary_table"]


def summary_table(runs: Sequence[RunResult], metric: str | None = None) -> str:
    """Rows: one per run (task, backbone, variant); columns: each split's ``metric``.

    ``metric`` defaults to the task's own metric (the one model selection used), read from the
    first run's summary (accuracy if absent).
    """
    if not runs:
        return "(no runs)"
    first = runs[0].summary
    if metric is None:
        candidates = [m for m in ("mcc", "rocauc", "accuracy", "loss") if m in first.get("val", {})]
        metric = candidates[0] if candidates else "accuracy"
    splits = list(first)
    header = ["task", "backbone", "variant", "seeds", *[f"{s} {metric}" for s in splits]]
    rows = []
    for run in runs:
        cells = [run.config.task, run.config.backbone, run.config.variant, str(len(run.seeds))]
        for split in splits:
            stat = run.summary.get(split, {}).get(metric)
            cells.append("-" if stat is None else f"{stat['mean']:.4f} +- {stat['std']:.4f}")
        rows.append(cells)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, rows)])
