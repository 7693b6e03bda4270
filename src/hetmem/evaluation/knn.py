"""Frozen-feature evaluation by weighted k-nearest neighbours (the protocol of DINO and MaSSL)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["extract_features", "knn_accuracy", "weighted_knn_predict", "weighted_knn_scores"]


@torch.no_grad()
def extract_features(
    backbone: nn.Module,
    loader: Iterable,
    *,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor]:
    """Runs ``backbone.forward_features`` in eval mode over ``loader``.

    The backbone's training mode is restored afterwards, so this can run in the middle of
    a training loop.

    Args:
        backbone: any hetmem backbone (``forward_features(x) -> (B, feature_dim)``).
        loader: yields ``(x, y)`` batches (a DataLoader over a TensorDataset, or a list), or
            torch_geometric Batches with ``y``.
        device: where the backbone runs; None uses the device of its first parameter.

    Returns:
        ``(features, labels)`` on the CPU: float (N, feature_dim) and int64 (N,).

    Example:
        >>> net = nn.Linear(4, 3); net.forward_features = net.forward
        >>> feats, labels = extract_features(net, [(torch.randn(5, 4), torch.arange(5))])
        >>> feats.shape, labels.tolist()
        (torch.Size([5, 3]), [0, 1, 2, 3, 4])
    """
    if device is None:
        first = next(backbone.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    was_training = backbone.training
    backbone.eval()
    features, labels = [], []
    try:
        for batch in loader:
            x, y = batch if isinstance(batch, (tuple, list)) else (batch, batch.y)  # tensors, or a graph Batch
            features.append(backbone.forward_features(x.to(device)).float().cpu())  # (b, feature_dim)
            labels.append(torch.as_tensor(y).long().view(-1).cpu())
    finally:
        backbone.train(was_training)
    if not features:
        raise ValueError("extract_features: the loader yielded no batches")
    return torch.cat(features), torch.cat(labels)


@torch.no_grad()
def weighted_knn_scores(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    *,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
    chunk_size: int = 1024,
) -> Tensor:
    """Class votes of the k nearest training points, weighted by ``exp(cos / temperature)``.

    Features are L2-normalised, so similarity is the cosine. A test point's score for class
    c is the sum of ``exp(sim / T)`` over its k most similar training points of class c
    (DINO's weighted k-NN, https://arxiv.org/abs/2104.14294, Section 4.1 and its code).
    ``k`` larger than the training set uses every training point.

    Args:
        train_features: features of the labelled set.
        train_labels: their classes in [0, num_classes).
        test_features: features to classify.
        num_classes: number of classes.
        k: neighbours (20 in DINO and MaSSL).
        temperature: T of the weights (0.07).
        chunk_size: test rows per similarity matrix, to bound memory.

    Shapes:
        - train_features: (N, F); train_labels: (N,); test_features: (M, F).
        - returns (M, num_classes) scores.
    """
    if train_features.dim() != 2 or test_features.dim() != 2 or train_features.shape[1] != test_features.shape[1]:
        raise ValueError(
            "weighted_knn: expected train (N, F) and test (M, F) features of the same width, got "
            f"{tuple(train_features.shape)} and {tuple(test_features.shape)}"
        )
    if train_labels.shape != (train_features.shape[0],):
        raise ValueError(
            f"weighted_knn: train_labels must have shape ({train_features.shape[0]},), got {tuple(train_labels.shape)}"
        )
    if train_features.shape[0] == 0:
        raise ValueError("weighted_knn: the training set is empty")
    if k < 1 or temperature <= 0 or num_classes < 1:
        raise ValueError(f"weighted_knn: need k >= 1, temperature > 0, num_classes >= 1; got {k}, {temperature}, {num_classes}")
    train_labels = train_labels.long()
    if int(train_labels.min()) < 0 or int(train_labels.max()) >= num_classes:
        raise ValueError(f"weighted_knn: train_labels must lie in [0, {num_classes})")
    k = min(k, train_features.shape[0])
    train = F.normalize(train_features.float(), dim=1)  # (N, F)
    test = F.normalize(test_features.float().to(train.device), dim=1)  # (M, F)
    scores = []
    for chunk in test.split(chunk_size):
        sim, idx = (chunk @ train.T).topk(k, dim=1)  # (m, k) cosines and indices of the neighbours
        weights = (sim / temperature).exp()  # (m, k)
        votes = torch.zeros(chunk.shape[0], num_classes, device=train.device)  # (m, num_classes)
        scores.append(votes.scatter_add_(1, train_labels.to(train.device)[idx], weights))
    return torch.cat(scores) if scores else torch.zeros(0, num_classes, device=train.device)


def weighted_knn_predict(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    *,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
) -> Tensor:
    """Predicted classes (M,) of ``weighted_knn_scores`` (ties go to the smaller class index).

    Example:
        >>> train = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
        >>> weighted_knn_predict(train, torch.tensor([0, 0, 1]), torch.tensor([[0.1, 1.0], [1.0, 0.2]]),
        ...                      num_classes=2, k=1).tolist()
        [1, 0]
    """
    scores = weighted_knn_scores(
        train_features, train_labels, test_features, num_classes=num_classes, k=k, temperature=temperature
    )
    return scores.argmax(dim=1)


def knn_accuracy(
    backbone: nn.Module,
    train_loader: Iterable,
    test_loader: Iterable,
    *,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
) -> float:
    """Top-1 accuracy of weighted k-NN on the backbone's frozen features, in [0, 1]."""
    train_x, train_y = extract_features(backbone, train_loader)
    test_x, test_y = extract_features(backbone, test_loader)
    pred = weighted_knn_predict(train_x, train_y, test_x, num_classes=num_classes, k=k, temperature=temperature)
    return float((pred == test_y).float().mean())
