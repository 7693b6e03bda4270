"""Accept what PyTorch users pass without thinking: numpy or list labels, numpy integers as
sizes, float64 or half inputs. Each helper converts what is unambiguous and raises one
ValueError naming the dtype or type for what is not."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["as_float", "as_labels", "as_positive_int"]


def as_positive_int(owner: str, name: str, value: Any) -> int:
    """``value`` as a Python int when it is a positive integer of any kind (int, numpy integer).

    Example:
        >>> as_positive_int("HMAHead", "feature_dim", np.int64(390))
        390
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")
    return int(value)


def as_labels(labels: Any, device: torch.device, owner: str) -> Tensor:
    """Integer class labels (a tensor, numpy array or list of ints) as a long tensor on ``device``.

    Floating-point or boolean labels are refused: a float label is usually a one-hot row or a
    regression target passed by mistake.

    Shapes:
        labels: (B,); returns (B,) long.

    Example:
        >>> as_labels(np.array([0, 2], dtype=np.int32), torch.device("cpu"), "HMAClassifier")
        tensor([0, 2])
    """
    if not isinstance(labels, Tensor):
        try:
            labels = torch.as_tensor(np.asarray(labels))
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"{owner}: labels must be integer class indices (tensor, numpy array or list); {err}") from None
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise ValueError(
            f"{owner}: labels must be integer class indices (an integer tensor, numpy array or list), got dtype {labels.dtype}"
        )
    return labels.to(device=device, dtype=torch.long)


def as_float(x: Any, like: Tensor, owner: str, what: str = "features") -> Tensor:
    """``x`` (a tensor or numpy array) in ``like``'s floating dtype; numpy arrays also move to its device.

    Any floating dtype is cast (float64 from numpy, half from a mixed-precision pipeline);
    integer, boolean and complex inputs are refused, naming their dtype.

    Example:
        >>> as_float(np.zeros((2, 3)), torch.zeros(1), "HMAHead").dtype
        torch.float32
    """
    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"{owner}: {what} must be floating-point, got numpy dtype {x.dtype}")
        return torch.from_numpy(x).to(device=like.device, dtype=like.dtype)
    if not isinstance(x, Tensor):
        raise ValueError(f"{owner}: {what} must be a tensor or numpy array, got {type(x).__name__}")
    if not x.dtype.is_floating_point:
        raise ValueError(f"{owner}: {what} must be floating-point ({like.dtype} or castable to it), got dtype {x.dtype}")
    return x if x.dtype == like.dtype else x.to(like.dtype)
