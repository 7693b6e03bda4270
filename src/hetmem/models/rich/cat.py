"""Cat_n: the frozen concatenation of n separately trained networks (Zhang & Bottou 2023).

Thesis ch. 2.1: train n copies of one network and recipe that differ only in their seed, then
read ``[Phi_1(x); ...; Phi_n(x)]`` with one linear probe. ``catsub`` averages n probes trained
on each ``Phi_i`` alone. Plain fine-tuning of Cat_n is poor; **two-stage fine-tuning** is
not: fine-tune every network alone on the target task, concatenate the fine-tuned networks
frozen, start the head at ``w = [w_1; ...; w_n] / n`` (biases averaged), which is exactly the
catsub ensemble of the fine-tuned networks, and train that head for one epoch at lr 1e-3.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from hetmem.models.rich.classifier import FeatureClassifier
from hetmem.models.rich.fit import Recipe, epochs_to_steps, fit_steps

__all__ = ["CatBackbone", "concat_heads", "catsub", "two_stage_finetune", "TwoStageResult", "HEAD_RECIPE"]


def _check_backbone(owner: str, net: nn.Module) -> int:
    dim = getattr(net, "feature_dim", None)
    if not callable(getattr(net, "forward_features", None)) or isinstance(dim, bool) or not isinstance(dim, int):
        raise ValueError(f"{owner}: every member needs forward_features(x) and an int feature_dim, got {type(net).__name__}")
    return dim


class CatBackbone(nn.Module):
    """The frozen concatenation of n backbones' features: a backbone like any other.

    The members are frozen in place (``requires_grad`` off) and stay in eval mode whatever
    mode the Cat is put in (BatchNorm statistics fixed, no dropout), so any head (a linear
    probe, :class:`FeatureClassifier`, :class:`hetmem.HMAClassifier`) can sit on top and
    train only itself.

    Args:
        members: backbones with ``forward_features`` and ``feature_dim`` (n >= 1).

    Shapes:
        - input: what every member takes, (B, ...).
        - output: (B, sum of the members' feature_dim), member i in columns ``slices[i]``.

    Example:
        >>> from hetmem.backbones import InputSpec, create_backbone
        >>> nets = [create_backbone("mlp", InputSpec.vector(8), hidden_dim=16) for _ in range(3)]
        >>> cat = CatBackbone(nets)
        >>> cat.feature_dim, cat(torch.randn(5, 8)).shape
        (48, torch.Size([5, 48]))
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if isinstance(members, nn.Module) or not isinstance(members, Sequence) or len(members) == 0:
            raise ValueError("CatBackbone: members must be a non-empty sequence of backbones")
        dims = tuple(_check_backbone("CatBackbone", m) for m in members)
        self.members = nn.ModuleList(members)
        self.member_dims = dims
        self.feature_dim = sum(dims)
        bounds = [0, *torch.tensor(dims).cumsum(0).tolist()]
        self.slices = tuple(slice(a, b) for a, b in zip(bounds[:-1], bounds[1:]))
        self.members.requires_grad_(False)
        self.members.eval()

    def train(self, mode: bool = True) -> CatBackbone:
        super().train(mode)
        self.members.eval()  # frozen: no dropout, no BatchNorm update, in any mode
        return self

    def forward_features(self, x: Tensor) -> Tensor:
        return torch.cat([m.forward_features(x) for m in self.members], dim=1)  # (B, sum D_i)

    forward = forward_features

    def extra_repr(self) -> str:
        return f"n={len(self.members)}, member_dims={self.member_dims}, feature_dim={self.feature_dim}"


def concat_heads(heads: Sequence[nn.Linear]) -> nn.Linear:
    """The linear head on a Cat whose logits are the mean of the members' heads' logits.

    ``W = [W_1, ..., W_n] / n`` (concatenated along the input features) and
    ``b = (b_1 + ... + b_n) / n``: on ``[phi_1; ...; phi_n]`` it outputs
    ``mean_i (W_i phi_i + b_i)``. It is the catsub ensemble as one linear layer, and the
    two-stage fine-tuning initialisation.

    Args:
        heads: n linear layers with the same ``out_features`` (all with biases, or none).

    Returns:
        A new ``nn.Linear(sum in_features, out_features)``; the heads are not modified.
    """
    if isinstance(heads, nn.Module) or not isinstance(heads, Sequence) or len(heads) == 0:
        raise ValueError("concat_heads: heads must be a non-empty sequence of nn.Linear")
    if not all(isinstance(h, nn.Linear) for h in heads):
        raise ValueError(f"concat_heads: every head must be an nn.Linear, got {[type(h).__name__ for h in heads]}")
    outs = {h.out_features for h in heads}
    if len(outs) != 1:
        raise ValueError(f"concat_heads: the heads must have the same out_features, got {sorted(outs)}")
    biased = {h.bias is not None for h in heads}
    if len(biased) != 1:
        raise ValueError("concat_heads: either every head has a bias or none has")
    n = len(heads)
    first = heads[0].weight
    out = nn.Linear(sum(h.in_features for h in heads), outs.pop(), bias=biased.pop(), device=first.device, dtype=first.dtype)
    with torch.no_grad():
        out.weight.copy_(torch.cat([h.weight for h in heads], dim=1) / n)  # (C, sum D_i)
        if out.bias is not None:
            out.bias.copy_(torch.stack([h.bias for h in heads]).mean(dim=0))  # (C,)
    return out


def catsub(classifiers: Sequence[FeatureClassifier]) -> FeatureClassifier:
    """The ensemble of n classifiers (mean of their logits) as one frozen Cat with a linear head.

    The classifiers' backbones become the Cat's frozen members (in place, not copied); the
    head is :func:`concat_heads` of their heads, so the output equals the mean of their logits.
    """
    if isinstance(classifiers, nn.Module) or not isinstance(classifiers, Sequence) or not classifiers:
        raise ValueError("catsub: classifiers must be a non-empty sequence of FeatureClassifier")
    if not all(isinstance(c, FeatureClassifier) for c in classifiers):
        raise ValueError("catsub: every classifier must be a FeatureClassifier (backbone + linear head)")
    head = concat_heads([c.head for c in classifiers])
    return FeatureClassifier(CatBackbone([c.backbone for c in classifiers]), head.out_features, head=head)


HEAD_RECIPE = {"lr": 1e-3, "optimizer": "sgd", "momentum": 0.9, "weight_decay": 0.0}  # stage 2 of the thesis (A.2.1)


@dataclass
class TwoStageResult:
    model: FeatureClassifier  # the frozen Cat with the trained head
    members: list[FeatureClassifier]  # each network fine-tuned alone (their backbones are the Cat's members)
    head_losses: list[float]  # the head's training losses


def two_stage_finetune(
    backbones: Sequence[nn.Module],
    inputs: Tensor,
    labels: Tensor,
    *,
    num_classes: int,
    finetune: Recipe,
    head_epochs: int = 1,
    head_lr: float = HEAD_RECIPE["lr"],
    head_batch_size: int | None = None,
    dropout: float = 0.0,
    freeze_norm: bool = False,
    seed: int = 0,
) -> TwoStageResult:
    """Two-stage fine-tuning of Cat_n (thesis Fig. 2.2 and app. A.2.1).

    1. Each backbone gets a fresh linear head and is fine-tuned alone with ``finetune``
       (a deep copy: the given backbones are not changed); network i's head initialisation
       and batch order use seed ``seed + i``, so the result depends on ``seed`` only.
    2. The fine-tuned backbones are concatenated frozen (:class:`CatBackbone`); the head starts
       at :func:`concat_heads` of their heads (the mean of their logits).
    3. Only that head trains, ``head_epochs`` epochs of SGD (momentum 0.9, no weight decay) at
       ``head_lr`` (1e-3 in the thesis).

    Args:
        backbones: the n pretrained networks.
        inputs, labels: the target task's training set, (N, ...) and (N,).
        num_classes: classes of the target task.
        finetune: the recipe of stage 1.
        head_epochs, head_lr, head_batch_size: stage 3 (batch size default: ``finetune``'s).
        dropout, freeze_norm: of each stage-1 classifier (very-large dropout fine-tuning works here too).
        seed: seeds the batch orders.
    """
    if isinstance(head_epochs, bool) or not isinstance(head_epochs, int) or head_epochs < 0:
        raise ValueError(f"two_stage_finetune: head_epochs must be an int >= 0, got {head_epochs!r}")
    members = []
    for i, backbone in enumerate(backbones):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + i)  # the head's initialisation
            clf = FeatureClassifier(copy.deepcopy(backbone), num_classes, dropout=dropout, freeze_norm=freeze_norm)
        clf.to(next(backbone.parameters()).device)
        fit_steps(clf, inputs, labels, finetune, seed=seed + i)
        members.append(clf.eval())
    model = catsub(members)
    batch = head_batch_size or finetune.batch_size
    steps = epochs_to_steps(head_epochs, len(inputs), batch)
    recipe = Recipe(steps=steps, lr=head_lr, batch_size=batch, optimizer="sgd", momentum=HEAD_RECIPE["momentum"])
    losses = fit_steps(model, inputs, labels, recipe, seed=seed + len(members), params=model.head.parameters()) if steps else []
    return TwoStageResult(model.eval(), members, losses)

