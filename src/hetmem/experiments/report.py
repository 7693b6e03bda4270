"""``build_report``: RESULTS.md and docs/figures/*.png from the results store.

Every table states the command, seeds, epochs and machine that produced it; cells are mean
+- std over seeds with the best mean of each row in bold; where a baseline and HMA are both
present a verdict line counts where HMA wins, ties (within one std) and loses. Nothing is
tuned or selected on the test split: the numbers are those of the best-validation checkpoints.
"""

from __future__ import annotations

import logging
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from hetmem.experiments.figures import attention_figure, curve_figure, score_of, tsne_figure
from hetmem.experiments.grids import EXPERIMENTS, Experiment
from hetmem.experiments.store import ResultsStore

__all__ = ["build_report"]

log = logging.getLogger(__name__)


def _fmt(values: list[float]) -> tuple[float, str]:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, f"{mean:.3f} (1 seed)"
    return mean, f"{mean:.3f} ± {statistics.stdev(values):.3f}"


def _md_table(header: list[str], body: list[list[str]]) -> str:
    """A Markdown table: one header row, the separator, one line per row of ``body``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in body])


def _provenance(exp: Experiment, rows: list[dict[str, Any]]) -> str:
    seeds = sorted({r["seed"] for r in rows})
    epochs = sorted({r["config"]["epochs"] for r in rows})
    m = rows[0]["machine"]
    v = rows[0]["versions"]
    machine = f"{m['cores']}-core {m['cpu']}" + (f", {m['cuda']}" if m.get("cuda") else ", CPU only") + f", {m['torch_threads']} torch threads"
    dates = sorted(r["finished_at"][:10] for r in rows)
    return (
        f"*Made by* `hetmem experiment {exp.name}` then `hetmem report`; seeds {seeds}; epochs {epochs}; "
        f"{len(rows)} runs; {machine}; torch {v['torch']}, hetmem {v['hetmem']}; {dates[0]} to {dates[-1]}.  \n"
        f"*Scale:* {exp.scale}."
    )


def _grid_table(exp: Experiment, rows: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """Rows: the non-column params; columns: the values of the column param; cells: scores."""
    col = exp.columns[0]
    row_keys = [k for k in rows[0]["cell"] if k != col and k != "tiny"]
    cols = list(dict.fromkeys(r["cell"][col] for r in rows))
    cells: dict[tuple, dict[Any, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        cells[tuple(r["cell"][k] for k in row_keys)][r["cell"][col]].append(score_of(r)[1])
    metrics = {tuple(r["cell"][k] for k in row_keys): score_of(r)[0] for r in rows}
    has_pair = "none" in cols and "hma" in cols
    header = [*row_keys, "metric", *[f"{col}={c}" for c in cols]] + (["hma − none"] if has_pair else [])
    body: list[list[str]] = []
    wins = ties = losses = single = 0
    for key, by_col in cells.items():
        stats = {c: _fmt(v) for c, v in by_col.items()}
        best = max(stats.values(), key=lambda s: s[0])[0]
        out = [*map(str, key), metrics[key]]
        for c in cols:
            if c not in stats:
                out.append("–")
                continue
            mean, text = stats[c]
            out.append(f"**{text}**" if mean == best else text)
        if has_pair and "none" in by_col and "hma" in by_col:
            diff = stats["hma"][0] - stats["none"][0]
            out.append(f"{diff:+.3f}")
            if min(len(by_col["none"]), len(by_col["hma"])) < 2:
                single += 1  # no spread to compare the difference with
            elif abs(diff) <= max(statistics.stdev(by_col["none"]), statistics.stdev(by_col["hma"])):
                ties += 1
            elif diff > 0:
                wins += 1
            else:
                losses += 1
        elif has_pair:
            out.append("–")
        body.append(out)
    notes = ["Scores: the task's metric on its test split (the mean over test sets where there are several), "
             "from the best-validation checkpoint; mean ± std over seeds; the best mean of each row in bold."]
    if has_pair and wins + ties + losses == 0:
        notes.append(f"**Verdict:** none: every row has a single seed ({single}), too few to call HMA better or worse.")
    elif has_pair:
        notes.append(
            f"**Verdict:** HMA is better than the baseline by more than one standard deviation in {wins} of "
            f"{wins + ties + losses} rows with several seeds, within one standard deviation in {ties}, and worse by "
            f"more than one in {losses}"
            + (f"; {single} rows have a single seed and are not called either way." if single else ".")
        )
    return _md_table(header, body), notes


def _split_table(rows: list[dict[str, Any]]) -> str | None:
    """Per-test-set scores when the task has several test sets (Colored MNIST), beside the
    validation score and the epoch it picked in each seed: a model selected on in-distribution
    validation can be one that has learnt only the spurious feature."""
    splits = [s for s in rows[0]["metrics"] if s not in ("val", "test_mean")]
    if len(splits) < 2:
        return None
    shown = [*splits, *(["val"] if "val" in rows[0]["metrics"] else [])]
    keys = [k for k in rows[0]["cell"] if k != "tiny"]
    groups: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    epochs: dict[tuple, list[tuple[int, Any]]] = defaultdict(list)
    for r in rows:
        key = tuple(r["cell"][k] for k in keys)
        for s in shown:
            groups[key][s].append(r["metrics"][s]["accuracy"])
        epochs[key].append((r["seed"], r.get("best_epoch", "?")))
    header = [*keys, *shown, "best epoch per seed"]
    body: list[list[str]] = []
    for key, by in groups.items():
        picked = ", ".join(str(e) for _, e in sorted(epochs[key], key=lambda t: t[0]))
        body.append([*map(str, key), *(_fmt(by[s])[1] for s in shown), picked])
    return _md_table(header, body)


def _inference_table(rows: list[dict[str, Any]]) -> str:
    groups: dict[tuple, dict[str, list[dict[str, float]]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        for setting, m in r["inference"].items():
            groups[(r["cell"]["task"], r["cell"]["train_context"])][setting].append(m)
    sizes = sorted({int(s.split("@")[1]) for r in rows for s in r["inference"]})
    header = ["task", "trained with", "eval context", *[f"B={b}" for b in sizes], "agreement with B=1 (min)"]
    body: list[list[str]] = []
    for (task, train_ctx), by in groups.items():
        for ctx in ("batch", "single"):
            accs = [_fmt([m["accuracy"] for m in by[f"{ctx}@{b}"]])[1] for b in sizes]
            agree = min(m["agreement"] for b in sizes for m in by[f"{ctx}@{b}"])
            body.append([task, train_ctx, ctx, *accs, f"{agree:.3f}"])
    return _md_table(header, body)


def _efficiency_table(rows: list[dict[str, Any]]) -> str:
    header = ["task", "backbone", "backbone params", "HMA adds (trainable)", "momentum copy", "step ms none → hma",
              "peak MB none → hma (process)", "batch-1 latency ms none → hma"]
    body: list[list[str]] = []
    for r in rows:
        e = r["efficiency"]
        n, h = e["none"], e["hma"]
        body.append([
            r["cell"]["task"], r["cell"]["backbone"], f"{e['params_backbone']:,}", f"{e['params_added']:,}", f"{e['params_frozen']:,}",
            f"{n['step_ms']:.1f} → {h['step_ms']:.1f} (×{e['step_ratio']:.1f})", f"{n['peak_mb']:.0f} → {h['peak_mb']:.0f}",
            f"{n['latency_ms']:.2f} → {h['latency_ms']:.2f} (×{e['latency_ratio']:.1f})",
        ])
    return _md_table(header, body)


def _massl_tables(exp: Experiment, rows: list[dict[str, Any]]) -> list[str]:
    """Representation quality per block sampling, collapse monitors, and the low-shot grid."""
    pre = [r for r in rows if r["cell"]["stage"] == "pretrain"]
    parts: list[str] = []
    if pre:
        header = ["task", "backbone", "metric (test)", "random init", *[f"blocks={s}" for s in ("random", "contiguous", "none")]]
        body: list[list[str]] = []
        for task in dict.fromkeys(r["cell"]["task"] for r in pre):
            task_rows = [r for r in pre if r["cell"]["task"] == task]
            for metric in ("knn_accuracy", "linear_probe_accuracy"):
                init = [r["pretrain"]["initial"]["test"][metric] for r in task_rows if r["cell"]["blocks"] == "random"]
                cells = {"init": _fmt(init)} if init else {}
                for sampling in ("random", "contiguous", "none"):
                    vals = [r["pretrain"]["pretrained"]["test"][metric] for r in task_rows if r["cell"]["blocks"] == sampling]
                    if vals:
                        cells[sampling] = _fmt(vals)
                best = max(m for m, _ in cells.values())
                out = [task, task_rows[0]["config"]["backbone"], metric.replace("_", " ")]
                for key in ("init", "random", "contiguous", "none"):
                    out.append("–" if key not in cells else (f"**{cells[key][1]}**" if cells[key][0] == best else cells[key][1]))
                body.append(out)
        parts += ["Frozen-feature accuracy on the test split (weighted k-NN, k = 20, T = 0.07; logistic-regression probe), "
                  "training split as memory / probe data, labels never used in pretraining:", "", _md_table(header, body)]
        header = ["task", "blocks", "student embedding std", "teacher entropy", "distinct argmax rows", "loss"]
        body = []
        for r_key in dict.fromkeys((r["cell"]["task"], r["cell"]["blocks"]) for r in pre):
            group = [r for r in pre if (r["cell"]["task"], r["cell"]["blocks"]) == r_key]
            mon = lambda k: _fmt([r["pretrain"]["last_epoch"].get(k, float("nan")) for r in group])[1]  # noqa: E731
            body.append([*r_key, mon("student_std"), mon("teacher_entropy"), mon("distinct_rows"), mon("loss")])
        parts += ["", "Collapse monitors, mean over the last epoch (a collapsed run has a tiny embedding std and few distinct rows):",
                  "", _md_table(header, body)]
    low = [r for r in rows if r["cell"]["stage"] == "lowshot"]
    if low:
        sub = Experiment(exp.name, exp.title, exp.question, exp.scale, exp.cells, columns=("variant",))
        trimmed = [{**r, "cell": {k: v for k, v in r["cell"].items() if k != "stage"}} for r in low]
        table, notes = _grid_table(sub, trimmed)
        parts += ["", "Few labels on the frozen backbone pretrained with random blocks: a linear head (variant none) "
                  "vs HMA, test accuracy:", "", table, "", *notes]
    return parts


def _figures(exp: Experiment, rows: list[dict[str, Any]], fig_dir: Path) -> list[Path]:
    path = fig_dir / f"{exp.name}.png"
    if exp.name == "memory-sweep":
        return [curve_figure(rows, path, x="slots_per_class", line="queue", title=exp.title)]
    if exp.name == "capacity":
        return [curve_figure(rows, path, x="slots_per_class", line=None, logx=True, title=exp.title)]
    if exp.name == "scarcity":
        return [curve_figure(rows, path, x="per_class", line="variant", panel="task", logx=True, title=exp.title)]
    if exp.name == "inference":
        flat = [
            {**r, "cell": {**r["cell"], "batch_size": int(s.split("@")[1]), "setting": f"train {r['cell']['train_context']} / eval {s.split('@')[0]}"},
             "value": m["accuracy"]}
            for r in rows for s, m in r["inference"].items()
        ]
        return [curve_figure(flat, path, x="batch_size", line="setting", panel="task", value=lambda r: r["value"],
                             ylabel="test accuracy", logx=True, title=exp.title)]
    return []


def _model_figures(rows: list[dict[str, Any]], fig_dir: Path) -> list[Path]:
    """t-SNE and attention maps from the first trained HMA checkpoint of a 10-class task."""
    from hetmem.train.runner import load_trained

    for r in rows:
        ckpt = r.get("checkpoint")
        if r["cell"].get("variant") == "hma" and r["seed"] == 0 and ckpt and Path(ckpt).is_file() and r["config"]["task"] in ("mnist", "digits"):
            model, _, task, _ = load_trained(ckpt)
            return [tsne_figure(model, task, fig_dir / "tsne.png"), attention_figure(model, task, fig_dir / "attention.png")]
    kept = [fig_dir / name for name in ("tsne.png", "attention.png") if (fig_dir / name).is_file()]
    if kept:  # the checkpoints are not on this machine (e.g. a store merged from elsewhere): keep the figures drawn from them
        log.info("no HMA checkpoint of the store here; keeping %s", ", ".join(str(k) for k in kept))
    return kept


def build_report(
    store: str | Path,
    out: str | Path = "RESULTS.md",
    figures: str | Path = "docs/figures",
    *,
    include_tiny: bool = False,
) -> str:
    """Writes ``out`` (markdown) and the figures; returns the markdown."""
    store = ResultsStore(store)
    out, fig_dir = Path(out), Path(figures)
    rel = lambda p: p.relative_to(out.parent) if p.is_relative_to(out.parent) else p  # noqa: E731
    parts = [
        "# Results",
        "",
        "Every number here was produced by `hetmem experiment NAME` and rendered by `hetmem report` from "
        f"`{store.path}`; each section names its command, seeds, epochs and machine. CPU-scale runs: small "
        "backbones, real data that ships offline, few epochs, as each section states. Model selection uses "
        "the validation split only.",
    ]
    all_rows = [r for r in store.rows() if include_tiny or not r.get("tiny")]
    for exp in EXPERIMENTS.values():
        rows = [r for r in all_rows if r["experiment"] == exp.name]
        if not rows:
            continue
        parts += ["", f"## {exp.title} (`{exp.name}`)", "", exp.question, "", _provenance(exp, rows), ""]
        if exp.kind == "train":
            table, notes = _grid_table(exp, rows)
            parts += [table, "", *notes]
            split = _split_table(rows)
            if split:
                parts += ["", "Per test set (accuracy), beside the in-distribution validation accuracy that picked "
                          "the checkpoint and the epoch it picked in each seed (0 = after the first epoch):", "", split]
        elif exp.kind == "massl":
            parts += _massl_tables(exp, rows)
        elif exp.kind == "sequence":
            from hetmem.experiments.sequence_report import sequence_section

            parts += sequence_section(exp.name, rows, fig_dir, rel)
        elif exp.kind == "inference":
            parts += [_inference_table(rows), "", "Accuracy (mean ± std over seeds) at each test batch size; "
                      "'agreement' is the smallest fraction of test predictions equal to those made one sample at a time."]
        else:
            parts += [_efficiency_table(rows)]
        for fig in _figures(exp, rows, fig_dir):
            parts += ["", f"![{exp.name}]({rel(fig)})"]
        if exp.name == "ablation":
            for fig in _model_figures(rows, fig_dir):
                parts += ["", f"![{fig.stem}]({rel(fig)})"]
    text = "\n".join(parts) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text
