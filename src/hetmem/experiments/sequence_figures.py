"""Figures of the Memory Mosaics experiments: rollout error by context (moons), the moduli of
the learned maps, RegBench scores against the number of training languages (with the
thesis's points), and the loss by position on Milton."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hetmem.experiments.figures import _plt

__all__ = ["moons_error_figure", "moons_weights_figure", "regbench_figure", "position_loss_figure"]


def _save(fig: Any, path: Path, ax: Any = None, *, xlabel: str = "", ylabel: str = "", title: str = "") -> Path:
    """Labels ``ax`` (when given: axis labels, title, grid, legend), then writes the figure."""
    if ax is not None:
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def _band(ax: Any, xs: Sequence[float], curves: list[list[float]], label: str) -> None:
    arr = np.array(curves, dtype=float)  # (seeds, points)
    mean, std = np.nanmean(arr, 0), np.nanstd(arr, 0)
    ax.plot(xs, mean, label=f"{label} ({len(curves)} seeds)")
    ax.fill_between(xs, mean - std, mean + std, alpha=0.2)


def moons_error_figure(rows: list[dict[str, Any]], path: Path) -> Path:
    """25-step rollout error against context length, one line per head count (thesis Figs. 3.5/3.6)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4))
    by: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by[(r["cell"]["heads"], r["cell"].get("steps", 500))].append(r["study"])
    for heads, steps in sorted(by, key=lambda k: (k[1], k[0])):
        studies = by[(heads, steps)]
        _band(ax, studies[0]["context"], [s["rollout_error"] for s in studies], f"{heads} head{'s' if heads > 1 else ''}, {steps} steps")
    ax.set_yscale("log")
    study = rows[0]["study"]
    for p in study["periods_steps"]:
        ax.axvline(p, color="gray", ls=":", lw=1)
    ax.axvline(study["lcm_steps"], color="k", ls="--", lw=1, label=f"lcm = {study['lcm_steps']:.1f}")
    return _save(fig, path, ax, xlabel="context length (steps); dotted: the held-out periods",
                 ylabel=f"mean |x̂ - x| over {study['rollout_steps']} generated steps", title="Three moons, held-out periods (1, 2, 3)")


def moons_weights_figure(rows: list[dict[str, Any]], path: Path) -> Path:
    """|W_phi|, |W_psi|, |W_z| (3 x 3 complex-unit moduli) of seed 0 of each head count (thesis Fig. B.1)."""
    plt = _plt()
    chosen = {(r["cell"]["heads"], r["cell"].get("steps", 500)): r for r in sorted(rows, key=lambda r: -r["seed"])}  # lowest seed of each
    keys = sorted(chosen, key=lambda k: (k[1], k[0]))
    fig, axes = plt.subplots(len(keys), 3, figsize=(8.5, 2.7 * len(keys)), squeeze=False)
    names = {"key": "|W_φ| (keys)", "value": "|W_ψ| (values)", "out": "|W_z| (output)"}
    for i, (h, steps) in enumerate(keys):
        study = chosen[(h, steps)]["study"]
        for j, name in enumerate(names):
            m = np.array(study["moduli"][name])
            ax = axes[i][j]
            im = ax.imshow(m, cmap="viridis", vmin=0)
            for (a, b), v in np.ndenumerate(m):
                ax.text(b, a, f"{v:.2f}", ha="center", va="center", color="w" if v < m.max() / 2 else "k", fontsize=8)
            ax.set_xticks(range(3)), ax.set_yticks(range(3))
            ax.set_title(f"{h} head{'s' if h > 1 else ''}, {steps} steps, seed {chosen[(h, steps)]['seed']}: {names[name]}\n"
                         f"permutation mass {study['permutation_mass'][name]:.2f}", fontsize=8)
            fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, path)


def regbench_figure(rows: list[dict[str, Any]], path: Path, thesis: dict[str, dict[int, float]]) -> Path:
    """Held-out accuracy and L1 distance against the number of training languages, ours (mean
    +- std over seeds) beside the thesis's Fig. 3.10 (read off the released figure)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric, label in ((axes[0], "accuracy", "accuracy (greedy token legal) ↑"), (axes[1], "tvd", "L1 distance to the PFA ↓")):
        for model, color in (("mosaic", "C0"), ("gpt", "C1")):
            groups: dict[int, list[float]] = defaultdict(list)
            for r in rows:
                if r["cell"]["model"] == model:
                    groups[r["cell"]["train_languages"]].append(r["metrics"]["test"][metric])
            xs = sorted(groups)
            mean = np.array([np.mean(groups[x]) for x in xs])
            std = np.array([np.std(groups[x]) for x in xs])
            ax.errorbar(xs, mean, yerr=std, marker="o", color=color, capsize=3, label=f"{'Memory Mosaic' if model == 'mosaic' else 'GPT'} (ours)")
            ref = thesis[f"{model}_{metric}"]
            ax.plot(list(ref), list(ref.values()), marker="x", ls="--", color=color, alpha=0.6,
                    label=f"{'MM' if model == 'mosaic' else 'Transformer'} (thesis, full scale)")
        ax.set_xscale("log")
        ax.set_xlabel("training languages")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("RegBench: held-out languages")
    return _save(fig, path)


def position_loss_figure(rows: list[dict[str, Any]], path: Path, smooth: int = 8) -> Path:
    """Loss by position on Milton (moving average over ``smooth`` positions), MM vs GPT; the
    dashed line is the training length."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4))
    by_model: dict[str, list[list[float]]] = defaultdict(list)
    for r in rows:
        by_model[r["cell"]["model"]].append(r["study"]["milton"])
    kernel = np.ones(smooth) / smooth
    for model in sorted(by_model):
        curves = [np.convolve(c, kernel, mode="valid").tolist() for c in by_model[model]]
        _band(ax, np.arange(len(curves[0])) + (smooth - 1) / 2, curves, "Memory Mosaic" if model == "mosaic" else "GPT")
    T = rows[0]["study"]["train_len"]
    ax.axvline(T, color="k", ls="--", lw=1, label=f"training length T = {T}")
    return _save(fig, path, ax, xlabel="position in the Milton window (characters)", ylabel=f"cross-entropy (nats/char), {smooth}-position mean",
                 title="Out of distribution: Milton, models trained on Shakespeare")
