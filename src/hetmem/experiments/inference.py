"""How much a prediction depends on the rest of its test batch: HMA's SMA attends over the
batch in the paper's ("batch") context and over the sample alone in the "single" context."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

from hetmem.data import dataset_labels
from hetmem.train.loaders import EpochLoader
from hetmem.train.module import split_batch

__all__ = ["predict", "inference_study"]


@torch.no_grad()
def predict(model: torch.nn.Module, dataset: Dataset, *, batch_size: int, graph: bool) -> Tensor:
    """Logits (N, C) for every sample of ``dataset``, in dataset order.

    Batches are formed from the fixed evaluation order of :class:`EpochLoader` (a random mix,
    the same for every call), so a batch never holds a single class.
    """
    loader = EpochLoader(dataset, batch_size, shuffle=False, graph=graph)
    order = loader.order(0)
    logits = torch.cat([model(split_batch(b)[0]) for b in loader])  # (N, C) in loader order
    out = torch.empty_like(logits)
    out[order] = logits
    return out


def inference_study(
    model: Any, task: Any, batch_sizes: Sequence[int], *, max_samples: int | None = None
) -> dict[str, dict[str, float]]:
    """Test accuracy per eval context and test batch size, and how far predictions move.

    ``max_samples`` scores only the first samples of each test split (in the fixed evaluation
    order), for quick checks.

    Returns:
        ``"<context>@<batch size>"`` -> ``accuracy`` (mean over the task's test splits),
        ``agreement`` (fraction of test predictions equal to those at the smallest batch size,
        same context) and ``max_logit_change`` (largest absolute logit difference from them).
    """
    model.eval()
    original = model.head.config
    results: dict[str, dict[str, float]] = {}
    try:
        for context in ("batch", "single"):
            model.head.config = dataclasses.replace(original, eval_context=context)
            reference: dict[str, Tensor] = {}
            for bs in sorted(batch_sizes):
                accs, agree, change, total = [], 0, 0.0, 0
                for name, ds in task.tests.items():
                    if max_samples is not None and len(ds) > max_samples:
                        keep = EpochLoader(ds, 1, shuffle=False).order(0)[:max_samples].tolist()
                        ds = Subset(ds, keep)
                    logits = predict(model, ds, batch_size=bs, graph=task.is_graph)
                    labels = torch.as_tensor(dataset_labels(ds))
                    accs.append(float((logits.argmax(1) == labels).float().mean()))
                    ref = reference.setdefault(name, logits)
                    agree += int((logits.argmax(1) == ref.argmax(1)).sum())
                    change = max(change, float((logits - ref).abs().max()))
                    total += len(ds)
                results[f"{context}@{bs}"] = {"accuracy": sum(accs) / len(accs), "agreement": agree / total, "max_logit_change": change}
    finally:
        model.head.config = original
    return results
