"""RESULTS.md sections of the Memory Mosaics experiments (``moons``, ``regbench``, ``charlm``):
our numbers beside the thesis's, with a plain statement of what does and does not reproduce."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hetmem.experiments.report import _fmt, _md_table
from hetmem.experiments.sequence_figures import moons_error_figure, moons_weights_figure, position_loss_figure, regbench_figure

__all__ = ["THESIS_REGBENCH", "sequence_section"]

# Thesis Fig. 3.10, read off the released ICLL/figure/dfa_tvd.png (approximate, +-0.01); TVD in the L1 form.
THESIS_REGBENCH = {
    "mosaic_accuracy": {100: 0.925, 500: 0.93, 1000: 0.935, 2500: 0.94, 40000: 0.96},
    "gpt_accuracy": {100: 0.52, 500: 0.54, 1000: 0.53, 2500: 0.925, 40000: 0.95},
    "mosaic_tvd": {100: 0.57, 500: 0.25, 1000: 0.215, 2500: 0.185, 40000: 0.12},
    "gpt_tvd": {100: 0.685, 500: 0.64, 1000: 0.63, 2500: 0.23, 40000: 0.145},
}
MODEL_NAMES = {"mosaic": "Memory Mosaic", "gpt": "GPT"}


def _bucket_means(xs: list[int], ys: list[float | None], edges: list[float]) -> list[float]:
    x, y = np.array(xs, dtype=float), np.array([np.nan if v is None else v for v in ys], dtype=float)
    return [float(np.nanmean(y[(x >= lo) & (x < hi)])) if ((x >= lo) & (x < hi)).any() else float("nan") for lo, hi in zip(edges, edges[1:])]


def _apart(a: Any, b: Any) -> tuple[float, bool]:
    """mean(a) - mean(b), and whether it exceeds the larger of the two standard deviations."""
    gap = float(np.mean(a)) - float(np.mean(b))
    return gap, abs(gap) > max(float(np.std(a)), float(np.std(b)))


def _cell(values: list[float]) -> str:
    values = [v for v in values if not np.isnan(v)]
    return _fmt(values)[1] if values else "–"


# ----- moons -------------------------------------------------------------------------------------
def _moons(rows: list[dict[str, Any]], fig_dir: Path, rel: Callable) -> list[str]:
    study = rows[0]["study"]
    p = sorted(study["periods_steps"])
    lcm, T = study["lcm_steps"], max(study["context"])
    edges = [0, p[0], p[1], p[2], lcm, T + 1]
    labels = [f"< {p[0]:.0f}", f"{p[0]:.0f}–{p[1]:.0f}", f"{p[1]:.0f}–{p[2]:.0f}", f"{p[2]:.0f}–{lcm:.0f} (after max p)", f"≥ {lcm:.0f} (after lcm)"]
    by: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by[(r["cell"]["heads"], r["cell"].get("steps", 500))].append(r)
    body, late, mass = [], {}, {}
    for heads, steps in sorted(by, key=lambda k: (k[1], k[0])):
        group = by[(heads, steps)]
        buckets = np.array([_bucket_means(r["study"]["context"], r["study"]["rollout_error"], edges) for r in group])  # (seeds, 5)
        late[(heads, steps)] = buckets[:, 3]
        mass[(heads, steps)] = [statistics.fmean(r["study"]["permutation_mass"].values()) for r in group]
        body.append([str(heads), f"{steps:,}", str(group[0]["study"]["num_parameters"]), _cell([r["metrics"]["test"]["loss"] for r in group]),
                     *[_cell(list(buckets[:, i])) for i in range(len(labels))], _cell(mass[(heads, steps)]),
                     ", ".join(str(r.get("best_epoch")) for r in sorted(group, key=lambda r: r["seed"]))])
    header = ["heads", "steps", "params", "test loss (clipped)", *[f"25-step error, context {lab}" for lab in labels],
              "permutation mass of |W| (mean of 3 maps)", "epoch picked per seed"]
    parts = [_md_table(header, body), "",
             f"Held-out periods {', '.join(f'{v:.1f}' for v in p)} steps, lcm {lcm:.1f}; the 25-step error is the mean |x̂ − x| "
             "of autoregressive rollouts (predictions fed back), averaged over the context lengths in each range (a model whose "
             "maps amplify can diverge in a rollout from a short context, hence errors above 1); the permutation mass is the "
             "share of Σ|W_ij| (moduli of the 3 × 3 complex units) on the best permutation: 1 for a permutation matrix, 1/3 for "
             "a uniform one (our number, not the thesis's). The checkpoint is the one with the best one-step validation loss "
             "(epochs of 50 steps, 0-based)."]
    verdicts = []
    for steps in sorted({k[1] for k in by}):
        if (1, steps) in late and (3, steps) in late:
            one, three = late[(1, steps)], late[(3, steps)]
            gap, apart = _apart(three, one)
            won = apart and gap < 0
            m3 = mass[(3, steps)]
            shown = won and all(m > 0.9 for m in m3)  # the thesis's signature: better before the lcm, one memory per moon
            verdicts.append(f"after {steps:,} steps, between the longest period and the lcm 3 heads reach an error of {np.mean(three):.3f} "
                            f"against {np.mean(one):.3f} for 1 head ({'better by more than one standard deviation' if won else 'not clearly better'}), "
                            f"and {sum(m > 0.9 for m in m3)} of {len(m3)} 3-head seeds learned near-permutation maps (mass > 0.9): "
                            f"the disentanglement {'reproduces' if shown else 'does not reproduce'}")
    if verdicts:
        parts += ["", "**Verdict:** " + "; ".join(verdicts) + ". Thesis (full scale, 500 steps of batch 64 × 800, Figs. 3.5–3.6): 1 head "
                  "stays flat until the lcm, 3 heads drop at each period and are accurate after max(p_k); a throwaway half-scale port "
                  "(spec §6a, 500 steps) measured 3 heads 0.82 (context 5–16), 0.45 (44), 0.23 (66), ≈ 0.1 (≥ 88) and 1 head 0.77 flat "
                  "to 111, 0.42 at 133, ≈ 0.36 beyond."]
    figs = [moons_error_figure(rows, fig_dir / "moons-error.png"), moons_weights_figure(rows, fig_dir / "moons-weights.png")]
    return parts + [f"\n![{f.stem}]({rel(f)})" for f in figs]


# ----- regbench ----------------------------------------------------------------------------------
def _regbench(rows: list[dict[str, Any]], fig_dir: Path, rel: Callable) -> list[str]:
    groups: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["cell"]["train_languages"], r["cell"]["model"])].append(r)
    metrics = [("test", "accuracy"), ("test", "tvd"), ("test", "last_accuracy"), ("test", "last_tvd"), ("iid", "accuracy"), ("iid", "tvd")]
    header = ["train languages", "model", "params", "accuracy ↑", "L1 (TVD) ↓", "last-token accuracy", "last-token L1",
              "IID accuracy", "IID L1", "thesis accuracy", "thesis L1"]
    body, means = [], {}
    for (n, model), group in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] != "mosaic")):
        cells = [_cell([r["metrics"][s][m] for r in group if s in r["metrics"]]) for s, m in metrics]
        means[(n, model)] = {m: [r["metrics"]["test"][m] for r in group] for m in ("accuracy", "tvd")}
        ref_acc, ref_tvd = THESIS_REGBENCH[f"{model}_accuracy"].get(n), THESIS_REGBENCH[f"{model}_tvd"].get(n)
        body.append([str(n), MODEL_NAMES.get(model, model), f"{group[0]['study']['num_parameters']:,}", *cells,
                     f"≈ {ref_acc}" if ref_acc else "–", f"≈ {ref_tvd}" if ref_tvd else "–"])
    parts = [_md_table(header, body), "",
             "Scores on 200 held-out languages (never a training language), at every position whose input is a symbol; "
             "accuracy: the greedy next token is legal under the language's DFA; L1: Σ_v |p_model(v) − p_PFA(v)| against the "
             "exact PFA distribution (uniform over the current state's outgoing edges), **without** the 1/2 of the textbook "
             "TVD, as seq_icl's `prob_distance_dfa` and the thesis compute it (range 0–2). Last-token: the same at each "
             "sequence's last scored position. IID: new strings of 100 training languages (thesis Table B.3: MM 0.959/0.417, "
             "transformer 0.856/0.308 at 100 languages). Thesis values: Fig. 3.10 read off the released figure (±0.01), full scale. "
             "GPT's extra parameters are its learned positional table (d per position of the longest sequence); without it "
             "the two models are of the same size (persistent memory of P = 3.5 d slots against an MLP of 4 d)."]
    verdicts = []
    for n in sorted({k[0] for k in means}):
        if (n, "mosaic") in means and (n, "gpt") in means:
            mm, tf = means[(n, "mosaic")]["accuracy"], means[(n, "gpt")]["accuracy"]
            gap, apart = _apart(mm, tf)
            verdicts.append(f"{n} languages: MM − GPT accuracy {gap:+.3f} ({'beyond' if apart else 'within'} one std; "
                            f"thesis {THESIS_REGBENCH['mosaic_accuracy'][n] - THESIS_REGBENCH['gpt_accuracy'][n]:+.3f})")
    if verdicts:
        parts += ["", "**Verdict:** " + "; ".join(verdicts) + "."]
    mm_acc = [statistics.fmean(v["accuracy"]) for (n, m), v in sorted(means.items()) if m == "mosaic" and n in THESIS_REGBENCH["mosaic_accuracy"]]
    ref = [THESIS_REGBENCH["mosaic_accuracy"][n] for (n, m) in sorted(means) if m == "mosaic" and n in THESIS_REGBENCH["mosaic_accuracy"]]
    if mm_acc:
        short = max(r - a for r, a in zip(ref, mm_acc))
        parts += ["", f"Against the thesis: the largest shortfall of our Memory Mosaic's held-out accuracy below its Fig. 3.10 value "
                  f"is {short:+.3f} ({'within 0.02: reproduced' if short <= 0.02 else 'the thesis level is not reproduced at this scale'}); "
                  "the table compares the L1 distances and GPT."]
    fig = regbench_figure(rows, fig_dir / "regbench.png", THESIS_REGBENCH)
    return parts + [f"\n![{fig.stem}]({rel(fig)})"]


# ----- charlm ------------------------------------------------------------------------------------
def _charlm(rows: list[dict[str, Any]], fig_dir: Path, rel: Callable) -> list[str]:
    T = rows[0]["study"]["train_len"]
    edges = [0, T // 16, T // 4, T // 2, T, 2 * T, 4 * T]  # 0, 8, 32, 64, 128, 256, 512 at T = 128
    labels = [f"{a}–{b}" for a, b in zip(edges, edges[1:])]
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by[r["cell"]["model"]].append(r)
    body, buckets_of = [], {}
    for model in sorted(by, key=lambda m: m != "mosaic"):
        group = by[model]
        buckets = np.array([_bucket_means(list(range(len(r["study"]["milton"]))), r["study"]["milton"], edges) for r in group])
        buckets_of[model] = buckets  # (seeds, position ranges)
        body.append([MODEL_NAMES.get(model, model), f"{group[0]['study']['num_parameters']:,}",
                     *[_cell([r["metrics"][s]["loss"] for r in group]) for s in ("val", "plays", "milton")],
                     *[_cell(list(buckets[:, i])) for i in range(len(labels))]])
    header = ["model", "params", "val loss (Hamlet, Tempest)", "test loss (held-out plays)", f"Milton loss (T = {T})",
              *[f"Milton, positions {lab}" for lab in labels]]
    parts = [_md_table(header, body), "",
             f"Cross-entropy in nats per character. The position columns are the mean loss at those positions of 64 Milton "
             f"windows of {4 * T} characters; GPT has a learned positional table of T = {T} rows, so its curve stops at T, "
             "while the Memory Mosaic (no positional encoding) runs on to 4 T. The thesis publishes curves only (Fig. 3.9, "
             "BabiStories → Simple English Wikipedia: the transformer plateaus after 100–150 tokens, MM keeps improving); a "
             "throwaway one-seed run of this setup (spec §9, 400 steps) measured validation 2.148 (MM) and 2.167 (GPT), and on Milton "
             "MM 2.411 / 2.342 / 2.337 / 2.304 and GPT 2.421 / 2.378 / 2.394 / 2.369 at positions 0–8 / 8–32 / 32–64 / 64–128."]
    if "mosaic" in buckets_of and "gpt" in buckets_of:
        mm, tf = (buckets_of[m][:, 3] - buckets_of[m][:, 0] for m in ("mosaic", "gpt"))  # late minus early: < 0 when context helps
        beyond = float(np.nanmean(buckets_of["mosaic"][:, 4:]))
        parts += ["", f"**Verdict:** on Milton, the mean loss at positions {edges[3]}–{T} minus that at positions 0–{edges[1]} is "
                  f"{np.mean(mm):+.3f} ± {np.std(mm):.3f} nats for the Memory Mosaic and {np.mean(tf):+.3f} ± {np.std(tf):.3f} for GPT "
                  "(negative: the context helps); "
                  f"past its training length (positions {T}–{4 * T}) the Memory Mosaic runs without error at a mean loss of {beyond:.3f}."]
    fig = position_loss_figure(rows, fig_dir / "charlm-milton.png")
    return parts + [f"\n![{fig.stem}]({rel(fig)})"]


_SECTIONS = {"moons": _moons, "regbench": _regbench, "charlm": _charlm}


def sequence_section(name: str, rows: list[dict[str, Any]], fig_dir: Path, rel: Callable[[Path], Any]) -> list[str]:
    """The tables, verdict and figures of experiment ``name`` (lines of Markdown)."""
    return _SECTIONS[name](rows, Path(fig_dir), rel)
