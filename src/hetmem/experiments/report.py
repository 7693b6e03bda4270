"""``build_report``: RESULTS.md and docs/figures/*.png from the results store.

Every table states the command, seeds, epochs and machine that produced it; cells are mean
+- std over seeds with the best mean of each row in bold; where a baseline and HMA are both
present a verdict line counts where HMA wins, ties (within one std) and loses. Nothing is
tuned or selected on the test split: the numbers are those of the best-validation checkpoints.
"""

from __future__ import annotations

import json
import logging
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from hetmem.experiments.figures import attention_figure, curve_figure, score_of, tsne_figure
from hetmem.experiments.grids import EXPERIMENTS, Experiment
from hetmem.experiments.store import ResultsStore

__all__ = ["build_report", "written_by_report"]

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
    unit = "steps" if exp.kind == "rich" else "epochs"
    epochs = sorted({r["config"][unit] for r in rows})
    m = rows[0]["machine"]
    v = rows[0]["versions"]
    machine = f"{m['cores']}-core {m['cpu']}" + (f", {m['cuda']}" if m.get("cuda") else ", CPU only") + f", {m['torch_threads']} torch threads"
    dates = sorted(r["finished_at"][:10] for r in rows)
    return (
        f"*Made by* `hetmem experiment {exp.name}` then `hetmem report`; seeds {seeds}; {unit} {epochs}; "
        f"{len(rows)} runs; {machine}; torch {v['torch']}, hetmem {v['hetmem']}; {dates[0]} to {dates[-1]}.  \n"
        f"*Scale:* {exp.scale}."
    )


HIDDEN = ("tiny", "v")  # cell params that key the store but are not table coordinates
COMPARED = ("hma", "paper")  # columns compared with the baseline column "none", when present


def _verdict(name: str, wins: int, ties: int, losses: int, single: int) -> str:
    if wins + ties + losses == 0:
        return f"**Verdict ({name}):** none: every row has a single seed ({single}), too few to call it better or worse."
    return (
        f"**Verdict ({name} vs baseline):** better by more than one standard deviation in {wins} of "
        f"{wins + ties + losses} rows with several seeds, within one standard deviation in {ties}, and worse by "
        f"more than one in {losses}" + (f"; {single} rows have a single seed and are not called either way." if single else ".")
    )


def _grid_table(exp: Experiment, rows: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """Rows: the non-column params; columns: the values of the column param; cells: scores."""
    col = exp.columns[0]
    row_keys = list(dict.fromkeys(k for r in rows for k in r["cell"] if k != col and k not in HIDDEN))
    cols = list(dict.fromkeys(r["cell"][col] for r in rows))
    cells: dict[tuple, dict[Any, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        cells[tuple(r["cell"].get(k, "–") for k in row_keys)][r["cell"][col]].append(score_of(r, exp.split)[1])
    metrics = {tuple(r["cell"].get(k, "–") for k in row_keys): score_of(r, exp.split)[0] for r in rows}
    pairs = [c for c in COMPARED if "none" in cols and c in cols]
    header = [*row_keys, "metric", *[f"{col}={c}" for c in cols]] + [f"{c} − none" for c in pairs]
    body: list[list[str]] = []
    counts = {c: [0, 0, 0, 0] for c in pairs}  # wins, ties, losses, single-seed rows
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
        for c in pairs:
            if "none" not in by_col or c not in by_col:
                out.append("–")
                continue
            diff = stats[c][0] - stats["none"][0]
            out.append(f"{diff:+.3f}")
            if min(len(by_col["none"]), len(by_col[c])) < 2:
                counts[c][3] += 1  # no spread to compare the difference with
            elif abs(diff) <= max(statistics.stdev(by_col["none"]), statistics.stdev(by_col[c])):
                counts[c][1] += 1
            elif diff > 0:
                counts[c][0] += 1
            else:
                counts[c][2] += 1
        body.append(out)
    where = "validation split" if exp.split == "val" else "test split (the mean over test sets where there are several)"
    selection = "the final model" if rows and rows[0].get("config", {}).get("select") == "last" else "the best-validation checkpoint"
    notes = [f"Scores: the task's metric on its {where}, from {selection}; mean ± std over seeds; the best mean of each row in bold."]
    names = {"hma": "HMA at hetmem's defaults", "paper": "the paper's HMA"}
    notes += [_verdict(names[c], *counts[c]) for c in pairs]
    return _md_table(header, body), notes


DIAGNOSTICS = (("rma_lift", "queue read: same-class lift"), ("rma_top1", "queue top-1 class"), ("rma_entropy", "queue entropy"),
               ("sma_lift", "slot read: same-class lift"), ("slot_ncm", "slot NCM accuracy"), ("momentum_cosine", "momentum cosine"))


def _diagnostics_table(exp: Experiment, rows: list[dict[str, Any]]) -> str | None:
    """Retrieval diagnostics on the validation split after the last epoch, mean over seeds, for
    every HMA cell that logged them (see hetmem.models.hma.diagnostics)."""
    logged = [r for r in rows if r.get("diagnostics_history")]
    if not logged:
        return None
    keys = list(dict.fromkeys(k for r in logged for k in r["cell"] if k not in HIDDEN))
    groups: dict[tuple, list[dict[str, float]]] = defaultdict(list)
    for r in logged:
        groups[tuple(r["cell"].get(k, "–") for k in keys)].append(r["diagnostics_history"][-1])
    shown = [(k, label) for k, label in DIAGNOSTICS if any(k in d for ds in groups.values() for d in ds)]
    body = []
    for key, ds in groups.items():
        body.append([*map(str, key), *(_fmt([d[k] for d in ds])[1].replace(" (1 seed)", "") if all(k in d for d in ds) else "–" for k, _ in shown)])
    return _md_table([*keys, *(label for _, label in shown)], body)


RETRIEVAL_LIFT = 3.0  # the goal: a queue read with 3x the same-class share of a uniform one


def _recipe_ranking(exp: Experiment, rows: list[dict[str, Any]]) -> list[str]:
    """hma-defaults: each recipe's rank per task (1 = best mean validation score), their mean,
    its queue-read lift on validation, and the recipe the grid chooses: the best mean rank
    among the recipes whose queue read retrieves (mean lift >= 3), all recipes if none does.
    States whether HMAConfig's defaults agree."""
    from hetmem.experiments.grids import DEFAULT_RECIPE

    scores: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    lifts: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        scores[r["cell"]["task"]][r["cell"]["recipe"]].append(score_of(r, "val")[1])
        last = (r.get("diagnostics_history") or [{}])[-1]
        if "rma_lift" in last:
            lifts[r["cell"]["recipe"]].append(last["rma_lift"])
    recipes = list(dict.fromkeys(r["cell"]["recipe"] for r in rows))
    ranks: dict[str, list[float]] = defaultdict(list)
    for by_recipe in scores.values():
        if set(by_recipe) != set(recipes):
            continue  # a task the grid has not finished for every recipe
        means = {k: statistics.fmean(v) for k, v in by_recipe.items()}
        order = sorted(means.values(), reverse=True)
        for k, m in means.items():  # ties share the best rank
            ranks[k].append(1 + order.index(m))
    if not ranks:
        return []
    mean_rank = {k: statistics.fmean(v) for k, v in ranks.items()}
    mean_lift = {k: statistics.fmean(v) for k, v in lifts.items()}
    retrieving = [k for k in recipes if mean_lift.get(k, 0.0) >= RETRIEVAL_LIFT]
    chosen = min(retrieving or recipes, key=lambda k: mean_rank[k])  # a tie goes to the recipe listed first
    overall = min(recipes, key=lambda k: mean_rank[k])
    body = [[k, f"{mean_rank[k]:.2f}", " ".join(f"{x:g}" for x in ranks[k]),
             f"{mean_lift[k]:.2f}" if k in mean_lift else "–"] for k in recipes]
    agree = "HMAConfig's defaults are this recipe." if chosen == DEFAULT_RECIPE else (
        f"HMAConfig's defaults are recipe {DEFAULT_RECIPE!r}, not the one chosen: the defaults are stale.")
    rule = (f"the best mean rank among the recipes whose queue read retrieves (mean lift >= {RETRIEVAL_LIFT:g}, the goal "
            "of a memory that is read)" if retrieving else "the best mean rank (no recipe's queue read retrieves)")
    rule += "; a tie goes to the recipe listed first"
    lines = ["", f"Mean rank over the {len(next(iter(ranks.values())))} tasks finished for every recipe (1 = best mean "
             "validation score; ties share a rank) and the mean queue-read lift on validation after the last epoch:",
             "", _md_table(["recipe", "mean rank", "rank per task", "queue lift"], body), "",
             f"**Chosen on validation** ({rule}): `{chosen}`. {agree}"]
    if overall != chosen:
        lines.append(f"The best mean rank over all recipes is `{overall}` ({mean_rank[overall]:.2f} vs {mean_rank[chosen]:.2f}).")
    return lines


def _split_table(rows: list[dict[str, Any]]) -> str | None:
    """Per-test-set scores when the task has several test sets (Colored MNIST), beside the
    validation score and the epoch it picked in each seed: a model selected on in-distribution
    validation can be one that has learnt only the spurious feature."""
    splits = [s for s in rows[0]["metrics"] if s not in ("val", "test_mean")]
    if len(splits) < 2:
        return None
    shown = [*splits, *(["val"] if "val" in rows[0]["metrics"] else [])]
    keys = list(dict.fromkeys(k for r in rows for k in r["cell"] if k not in HIDDEN))
    groups: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    epochs: dict[tuple, list[tuple[int, Any]]] = defaultdict(list)
    for r in rows:
        key = tuple(r["cell"].get(k, "–") for k in keys)
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
    """t-SNE and attention maps from the first trained HMA checkpoint of a 10-class task; a
    warning says why when there is none (the store keeps checkpoint paths, not checkpoints)."""
    from hetmem.train.runner import load_trained

    wanted = [r for r in rows if r["cell"].get("variant") == "hma" and r["seed"] == 0 and r["config"]["task"] in ("mnist", "digits")]
    for r in wanted:
        ckpt = r.get("checkpoint")
        if ckpt and Path(ckpt).is_file():
            model, _, task, _ = load_trained(ckpt)
            return [tsne_figure(model, task, fig_dir / "tsne.png"), attention_figure(model, task, fig_dir / "attention.png")]
    why = (f"none of the {len(wanted)} checkpoints the store names exists here (first: {wanted[0].get('checkpoint')})" if wanted
           else "the ablation has no HMA run with seed 0 on mnist or digits")
    kept = [fig_dir / name for name in ("tsne.png", "attention.png") if (fig_dir / name).is_file()]
    if kept:  # e.g. a store merged from another machine: keep the figures drawn earlier from its checkpoints
        log.warning("report: kept the existing %s, not redrawn: %s", ", ".join(k.name for k in kept), why)
        return kept
    log.warning("report: skipped the t-SNE and attention figures (tsne.png, attention.png): %s", why)
    return []


def _current_rows(exp: Experiment, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rows of cells the grid defines now, rows of cells it no longer defines)."""
    key = lambda params: json.dumps({k: v for k, v in params.items() if k != "tiny"}, sort_keys=True)  # noqa: E731
    defined = {key(c.params) for tiny in (False, True) for c in exp.cells(tiny)}
    current = [r for r in rows if key(r["cell"]) in defined]
    return current, [r for r in rows if key(r["cell"]) not in defined]


def _train_tables(exp: Experiment, rows: list[dict[str, Any]]) -> list[str]:
    table, notes = _grid_table(exp, rows)
    parts = [table, "", *notes]
    split = _split_table(rows)
    if split:
        parts += ["", "Per test set (accuracy), beside the in-distribution validation accuracy and the epoch of the "
                  "scored model in each seed (0 = after the first epoch):", "", split]
    return parts


def written_by_report(path: str | Path) -> bool:
    """True when ``path`` is a markdown file that :func:`build_report` wrote (safe to replace)."""
    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(2000)
    except (OSError, UnicodeDecodeError):
        return False
    return head.startswith("# Results\n") and "rendered by `hetmem report`" in head


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
        rows, old = _current_rows(exp, [r for r in all_rows if r["experiment"] == exp.name])
        if not rows:
            continue
        parts += ["", f"## {exp.title} (`{exp.name}`)", "", exp.question, "", _provenance(exp, rows), ""]
        if exp.kind == "train":
            parts += _train_tables(exp, rows)
            diagnostics = _diagnostics_table(exp, rows)
            if diagnostics:
                parts += ["", "Retrieval diagnostics on the validation split after the last epoch (mean over seeds; "
                          "lift = the same-class share of a read over its value under uniform attention, 1 for a "
                          "class-blind mean; see `hetmem.models.hma.diagnostics`):", "", diagnostics]
            if exp.name == "hma-defaults":
                parts += _recipe_ranking(exp, rows)
            if old and exp.superseded:
                parts += ["", f"### {exp.superseded}", "", _provenance(exp, old), "", *_train_tables(exp, old)]
        elif exp.kind == "massl":
            parts += _massl_tables(exp, rows)
        elif exp.kind == "sequence":
            from hetmem.experiments.sequence_report import sequence_section

            parts += sequence_section(exp.name, rows, fig_dir, rel)
        elif exp.kind == "rich":
            from hetmem.experiments.rich_report import rich_section

            parts += rich_section(exp, rows)
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
