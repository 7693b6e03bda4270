"""Linear probe: multinomial logistic regression on frozen, standardised features.

scikit-learn's ``LogisticRegression`` (L-BFGS, L2 penalty) on features standardised with
the training set's mean and std. A convex problem solved to convergence has no learning
rate, epoch count or seed to tune, so the probe measures the features and not the probe's
optimiser; on a few thousand rows of a few hundred dimensions it takes well under a
second on a CPU. (MaSSL's transfer tables use logistic regression on frozen features too.)
scikit-learn is an optional dependency (``hetmem[data]``), imported when a probe is fitted.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["LinearProbe", "fit_linear_probe", "linear_probe_accuracy"]


def _sklearn_linear_model() -> Any:
    try:
        return importlib.import_module("sklearn.linear_model")
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("the linear probe needs scikit-learn: pip install 'hetmem[data]'") from err


def _numpy(features: Tensor) -> np.ndarray:
    return features.detach().float().cpu().numpy().astype(np.float64)


@dataclass
class LinearProbe:
    """A fitted probe: standardisation statistics and the logistic-regression classifier."""

    mean: np.ndarray  # (F,) training-feature mean
    scale: np.ndarray  # (F,) training-feature std (1 where a feature is constant)
    classifier: Any  # a fitted sklearn.linear_model.LogisticRegression

    def _standardise(self, features: Tensor) -> np.ndarray:
        x = _numpy(features)
        if x.ndim != 2 or x.shape[1] != self.mean.shape[0]:
            raise ValueError(f"LinearProbe: expected features (M, {self.mean.shape[0]}), got {tuple(x.shape)}")
        return (x - self.mean) / self.scale

    def predict(self, features: Tensor) -> Tensor:
        """Predicted classes (M,) of features (M, F)."""
        return torch.from_numpy(np.asarray(self.classifier.predict(self._standardise(features)))).long()

    def accuracy(self, features: Tensor, labels: Tensor) -> float:
        """Top-1 accuracy in [0, 1]."""
        return float((self.predict(features) == labels.long().cpu()).float().mean())


def fit_linear_probe(train_features: Tensor, train_labels: Tensor, *, C: float = 1.0, max_iter: int = 2000) -> LinearProbe:
    """Fits a logistic-regression probe on standardised ``train_features``.

    Args:
        train_features: frozen features of the labelled set.
        train_labels: their classes.
        C: inverse L2 regularisation strength of scikit-learn's LogisticRegression.
        max_iter: L-BFGS iterations.

    Shapes:
        - train_features: (N, F); train_labels: (N,).

    Example:
        >>> x = torch.cat([torch.randn(20, 3) + 3, torch.randn(20, 3) - 3])
        >>> y = torch.cat([torch.zeros(20), torch.ones(20)]).long()
        >>> fit_linear_probe(x, y).accuracy(x, y)
        1.0
    """
    x = _numpy(train_features)
    y = train_labels.detach().long().cpu().numpy()
    if x.ndim != 2 or y.shape != (x.shape[0],) or x.shape[0] == 0:
        raise ValueError(
            f"fit_linear_probe: expected features (N, F) and labels (N,) with N >= 1, got {x.shape} and {y.shape}"
        )
    if len(np.unique(y)) < 2:
        raise ValueError("fit_linear_probe: the training labels hold a single class; a probe needs two or more")
    if C <= 0:
        raise ValueError(f"fit_linear_probe: C must be > 0, got {C}")
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-12] = 1.0
    classifier = _sklearn_linear_model().LogisticRegression(C=C, max_iter=max_iter)
    classifier.fit((x - mean) / scale, y)
    return LinearProbe(mean, scale, classifier)


def linear_probe_accuracy(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    *,
    C: float = 1.0,
    max_iter: int = 2000,
) -> float:
    """Fits a probe on the training features and returns its top-1 accuracy on the test ones."""
    probe = fit_linear_probe(train_features, train_labels, C=C, max_iter=max_iter)
    return probe.accuracy(test_features, test_labels)
