"""H1 (spec §6): a memory head on frozen ERM / Cat5 / Bonsai / oracle features of Colored MNIST.

For each frozen representation: a linear ERM head, a linear vREx head (as E3), and an HMA head
(hetmem's defaults: a retrieval read of the queue, keys from the features, momentum 0.9, label
dropout 0.25, batch-independent evaluation) trained on the labelled training features. Then,
with no gradient step, the HMA queue is emptied and given k in {10, 50, 200} labelled rows of the
reversed test environment; the metric is the reversed accuracy on the rows after the first 200,
the same rows for every k (``k0``: the queue of training features). The spec's prediction: the
k-shot gain grows with the richness of the representation; ERM features (colour) gain least.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hetmem.train.fullbatch import Curve

__all__ = ["H1_FEATURES", "H1_HEADS", "SHOTS", "h1_cells", "fit_h1"]

H1_FEATURES = ("erm", "cat5", "bonsai", "oracle")
H1_HEADS = ("erm", "vrex", "hma")
SHOTS = (10, 50, 200)
HMA_STEPS, HMA_BATCH, HMA_LR = 480, 256, 1e-3  # the linear heads' budget; hetmem's Adam default for HMA


def h1_cells(tiny: bool) -> list[dict[str, Any]]:
    cells = [{"features": f, "head": h} for f in H1_FEATURES for h in H1_HEADS]
    return [cells[0], cells[-1]] if tiny else cells


class _Frozen(nn.Module):
    """Precomputed features as a backbone: forward_features is the identity."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.feature_dim = dim

    def forward_features(self, x: Tensor) -> Tensor:
        return x


@torch.no_grad()
def _accuracy(model: nn.Module, x: Tensor, y: Tensor, chunk: int = 4096) -> float:
    right = sum((model(x[i : i + chunk]).argmax(-1) == y[i : i + chunk]).sum().item() for i in range(0, len(y), chunk))
    return right / max(1, len(y))


def _hma_member(train_x: list[Tensor], train_y: list[Tensor], tests: dict[str, tuple[Tensor, Tensor]], seed: int,
                steps: int) -> dict[str, float]:
    """One seed: an HMA head on frozen features (N, H), its test accuracies and k-shot accuracies."""
    from hetmem.models.hma import HMAClassifier, HMAConfig

    x, y = torch.cat(train_x), torch.cat(train_y)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = HMAClassifier(_Frozen(x.shape[1]), HMAConfig(num_classes=2, queue_size=max(SHOTS) + 56, eval_context="single")).to(x.device)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=HMA_LR)
    model.train()
    for _ in range(steps):
        idx = torch.randint(len(y), (HMA_BATCH,), generator=g).to(x.device)
        loss = F.cross_entropy(model(x[idx], y[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    out = {name: _accuracy(model, tx, ty) for name, (tx, ty) in tests.items()}
    rx, ry = tests["reversed"]
    rest_x, rest_y = rx[max(SHOTS):], ry[max(SHOTS):]
    out["k0"] = _accuracy(model, rest_x, rest_y)
    for k in SHOTS:
        model.head.queue.reset()
        model.head.write_memory_(rx[:k], ry[:k])
        model.head.clear_memory_cache()
        out[f"k{k}"] = _accuracy(model, rest_x, rest_y)
    return out


def fit_h1(ctx: Any, dataset: str, features: str, head: str) -> tuple[dict[str, Any], Curve, dict[str, Any]]:
    """The H1 cell ``features`` x ``head`` for every seed of ``ctx`` (see :func:`hetmem.experiments.rich.run_rich`)."""
    from hetmem.experiments.rich import WORST_OF, _fit_cat, _frozen, frozen_representation

    if head in ("erm", "vrex"):
        return _fit_cat(ctx, dataset, features, head)
    feature_fn, _, _ = frozen_representation(ctx, dataset, features)
    train, tests = ctx.data(dataset)
    ftrain, ftests = _frozen(feature_fn, train, tests)
    steps = ctx.scale.steps(HMA_STEPS)
    per_member = [
        _hma_member([x[m] for x in ftrain.x], [y[m] for y in ftrain.y], {n: (tx[m], ty[m]) for n, (tx, ty) in ftests.items()},
                    seed=s, steps=steps)
        for m, s in enumerate(ctx.seeds)
    ]
    curve = Curve()
    values = {k: torch.tensor([p[k] for p in per_member]) for k in per_member[0]}
    values["worst"] = torch.stack([values[n] for n in WORST_OF]).min(0).values
    curve.add(steps, values)
    hparams = {"penalty_weight": 0.0, "steps": steps, "eval_stride": steps, "batch_size": HMA_BATCH, "lr": HMA_LR,
               "hma": "HMAConfig defaults (retrieval+labeldrop), queue 256, eval_context single", "shots": list(SHOTS)}
    return hparams, curve, {"train": torch.full((len(ctx.seeds),), float("nan"))}
