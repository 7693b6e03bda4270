"""Figures for RESULTS.md: curves from the results store, and t-SNE / attention maps from a
trained HMA checkpoint (the paper's Figures 3, 4 and 6)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["curve_figure", "tsne_figure", "attention_figure", "score_of"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def score_of(row: dict[str, Any], split: str = "test") -> tuple[str, float]:
    """(metric name, value) a row is ranked by: the task metric on the test split(s), or on
    the validation split with ``split="val"``."""
    metrics = row["metrics"]
    if split == "test":
        split = "test_mean" if "test_mean" in metrics else "test"
    name = next((m for m in ("mcc", "rocauc") if m in metrics[split]), "accuracy")
    return name, metrics[split][name]


def curve_figure(
    rows: Sequence[dict[str, Any]],
    path: Path,
    *,
    x: str,
    line: str | None,
    panel: str | None = None,
    value: Callable[[dict[str, Any]], float] | None = None,
    ylabel: str | None = None,
    logx: bool = False,
    title: str = "",
) -> Path:
    """Mean +- std over seeds of ``value(row)`` against cell param ``x``, one line per ``line``
    value, one panel per ``panel`` value."""
    plt = _plt()
    value = value or (lambda r: score_of(r)[1])
    ylabel = ylabel or f"test {score_of(rows[0])[0]}"
    panels = sorted({r["cell"].get(panel) for r in rows}, key=str) if panel else [None]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    for ax, pv in zip(axes[0], panels):
        groups: dict[Any, dict[Any, list[float]]] = defaultdict(lambda: defaultdict(list))
        for r in rows:
            if panel and r["cell"].get(panel) != pv:
                continue
            groups[r["cell"].get(line) if line else ""][r["cell"][x]].append(value(r))
        for lv in sorted(groups, key=str):
            xs = sorted(groups[lv])
            mean = np.array([np.mean(groups[lv][v]) for v in xs])
            std = np.array([np.std(groups[lv][v]) for v in xs])
            ax.plot(xs, mean, marker="o", label=f"{line} = {lv}" if line else None)
            ax.fill_between(xs, mean - std, mean + std, alpha=0.2)
        if logx:
            ax.set_xscale("log")
        ax.set_xlabel(x.replace("_", " "))
        ax.set_ylabel(ylabel)
        ax.set_title(f"{panel} = {pv}" if panel else title)
        ax.grid(alpha=0.3)
        if line:
            ax.legend(fontsize=8)
    if panel and title:
        fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@torch.no_grad()
def _real_features(model: Any, task: Any, per_class: int) -> tuple[torch.Tensor, np.ndarray, torch.Tensor]:
    """Up to ``per_class`` test samples of each class: (inputs batch, labels, C2 rows)."""
    from hetmem.data import dataset_labels
    from hetmem.train.loaders import EpochLoader
    from hetmem.train.module import split_batch

    ds = next(iter(task.tests.values()))
    labels = dataset_labels(ds)
    idx = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(task.num_classes)])  # class-sorted
    from torch.utils.data import Subset

    sub = Subset(ds, idx.tolist())
    loader = EpochLoader(sub, len(sub), shuffle=False, graph=task.is_graph)
    order = loader.order(0)
    batch = next(iter(loader))
    x, _ = split_batch(batch)
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(len(order))
    return x, labels[idx], inverse  # batch rows are in loader order; inverse puts them back


def tsne_figure(model: Any, task: Any, path: Path, *, per_class: int = 40, seed: int = 0) -> Path:
    """Left: t-SNE of the synthetic slots alone. Right: real test features (the feature part of
    C2, without label embeddings, as the paper does) together with the slots."""
    from sklearn.manifold import TSNE

    plt = _plt()
    model.eval()
    x, labels, inverse = _real_features(model, task, per_class)
    with torch.no_grad():
        c2 = model.augment(x).c2[inverse][:, : model.head.width].numpy()  # (N, width), class-sorted
    slots, slot_labels = (t.detach().numpy() for t in model.head.slots())
    cmap = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    emb = TSNE(2, perplexity=min(30, len(slots) - 1), init="pca", random_state=seed).fit_transform(slots)
    for c in range(task.num_classes):
        m = slot_labels == c
        axes[0].scatter(emb[m, 0], emb[m, 1], s=30, color=cmap(c % 10), marker="*", label=f"{c}-mem")
    axes[0].set_title("synthetic memory slots")
    both = np.concatenate([c2, slots])
    emb = TSNE(2, perplexity=30, init="pca", random_state=seed).fit_transform(both)
    real, mem = emb[: len(c2)], emb[len(c2) :]
    for c in range(task.num_classes):
        axes[1].scatter(*real[labels == c].T, s=8, color=cmap(c % 10), alpha=0.6, label=f"{c}-test")
        axes[1].scatter(*mem[slot_labels == c].T, s=60, color=cmap(c % 10), marker="*", edgecolors="k", linewidths=0.5)
    axes[1].set_title("real test features (C2, feature part) and slots (stars)")
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_xlabel("t-SNE 1"), ax.set_ylabel("t-SNE 2")
    axes[0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def attention_figure(model: Any, task: Any, path: Path, *, per_class: int = 10) -> Path:
    """SMA attention (mean over heads) of a class-sorted test batch over [the batch; the slots],
    in the paper's batch context (Figure 6)."""
    import dataclasses

    plt = _plt()
    model.eval()
    original = model.head.config
    model.head.config = dataclasses.replace(original, eval_context="batch")
    try:
        x, labels, inverse = _real_features(model, task, per_class)
        with torch.no_grad():
            weights = model.augment(x, need_weights=True).sma_weights.mean(0)  # (B, B + S), loader order
    finally:
        model.head.config = original
    B = len(labels)
    batch_part = weights[:, :B][inverse][:, inverse]  # rows and batch columns class-sorted
    slot_part = weights[:, B:][inverse]
    full = torch.cat([batch_part, slot_part], dim=1).numpy()
    fig, ax = plt.subplots(figsize=(10, 5))
    im = ax.imshow(full, aspect="auto", cmap="viridis")
    ax.axvline(B - 0.5, color="w", lw=1.5)
    ax.set_xlabel(f"keys: {B} test samples (left, class-sorted) | {full.shape[1] - B} synthetic slots (right, class-sorted)")
    ax.set_ylabel("queries: test samples, class-sorted")
    ax.set_title("SMA attention between datapoints and synthetic memory")
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
