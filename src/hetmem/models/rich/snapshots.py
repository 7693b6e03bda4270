"""Cat_n-s: snapshots of one training run, concatenated (thesis Fig. 2.5, app. A.4.4).

One network trained with a relatively high step size (plain SGD at lr 0.8 in the thesis, for 5x
the usual budget) and copied at regular intervals (epochs 200, 400, ..., 1000): the snapshots
hold features the run discovers and then abandons, and their concatenation does about as well
as Cat5 of five separate runs in few-shot transfer.
"""

from __future__ import annotations

import copy

from torch import Tensor, nn

from hetmem.models.rich.fit import Recipe, fit_steps

__all__ = ["train_snapshots"]


def train_snapshots(
    model: nn.Module,
    inputs: Tensor,
    labels: Tensor,
    recipe: Recipe,
    *,
    count: int = 5,
    seed: int = 0,
    transform=None,
) -> list[nn.Module]:
    """Trains ``model`` (in place) for ``recipe.steps`` steps and returns ``count`` deep copies
    taken every ``recipe.steps // count`` steps, the last at the end, each in eval mode.

    Args:
        model: e.g. a :class:`~hetmem.models.rich.FeatureClassifier`.
        inputs, labels: the training set.
        recipe: the run; ``recipe.steps`` must be a multiple of ``count``.
        count: the number of snapshots.
        seed: seeds the batch order.
        transform: a training-batch augmentation, as in :func:`~hetmem.models.rich.fit_steps`.

    Example:
        >>> import torch
        >>> from hetmem.backbones import InputSpec, create_backbone
        >>> from hetmem.models.rich import FeatureClassifier, CatBackbone
        >>> net = FeatureClassifier(create_backbone("mlp", InputSpec.vector(4), hidden_dim=8), 2)
        >>> snaps = train_snapshots(net, torch.randn(32, 4), torch.randint(0, 2, (32,)), Recipe(steps=10, lr=0.1, batch_size=8))
        >>> CatBackbone([s.backbone for s in snaps]).feature_dim
        40
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"train_snapshots: count must be a positive int, got {count!r}")
    if recipe.steps < count or recipe.steps % count:
        raise ValueError(f"train_snapshots: recipe.steps ({recipe.steps}) must be a positive multiple of count ({count})")
    snapshots: list[nn.Module] = []

    def keep(step: int, net: nn.Module) -> None:
        snapshots.append(copy.deepcopy(net).eval())

    fit_steps(model, inputs, labels, recipe, seed=seed, every=recipe.steps // count, callback=keep, transform=transform)
    return snapshots
