"""HMAClassifier: any backbone + its momentum encoder + HMAHead, with the queue written for you."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hetmem.distributed import concat_all_gather
from hetmem.inputs import as_float, as_labels
from hetmem.memory import MomentumEncoder, fingerprint
from hetmem.models.hma.config import HMAConfig
from hetmem.models.hma.head import HMAHead, HMAOutput, check_labels

__all__ = ["HMAClassifier"]


class HMAClassifier(nn.Module):
    """A classifier that augments a backbone's features with heterogeneous memory.

    In training mode a forward pass (Algorithm 1 of the paper):

    1. moves the momentum encoder towards the backbone (MoCo's order: the EMA step that
       follows optimiser step t-1 is taken at the start of step t, which gives the same
       sequence of weights as the paper's update after each step);
    2. computes features, reads the queue and the slots, returns logits;
    3. writes [momentum-encoder features; true labels] to the queue (all-gathered across
       processes under torch.distributed), so the next batch can read them.

    In eval mode nothing is written and the momentum encoder does not move.

    Args:
        backbone: any module with ``forward_features(x) -> (B, feature_dim)`` and an int
            ``feature_dim`` attribute (every hetmem backbone; wrap others in a few lines).
        config: HMA hyper-parameters.

    Shapes:
        - x: whatever the backbone takes, batch size B.
        - labels: (B,) integers in [0, num_classes); required in training for the variants
          that read the queue (rma, abd+rma, hma).
        - output: logits (B, num_classes).

    Example:
        >>> class Backbone(nn.Module):
        ...     feature_dim = 32
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU())
        ...     def forward_features(self, x):
        ...         return self.net(x)
        >>> model = HMAClassifier(Backbone(), HMAConfig(num_classes=10, queue_size=64))
        >>> x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
        >>> model(x, y).shape  # training mode: reads, then writes the queue
        torch.Size([8, 10])
        >>> len(model.head.queue)
        8
    """

    def __init__(self, backbone: nn.Module, config: HMAConfig) -> None:
        super().__init__()
        feature_dim = getattr(backbone, "feature_dim", None)
        if not callable(getattr(backbone, "forward_features", None)) or not isinstance(feature_dim, numbers.Integral):
            raise ValueError(
                "HMAClassifier: backbone must have a forward_features(x) -> (B, D) method and an int "
                f"feature_dim attribute; {type(backbone).__name__} has not (hetmem.backbones.wrap(module, "
                "example_input=...) makes one from any module)"
            )
        self.config = config
        self.backbone = backbone
        self.head = HMAHead(feature_dim, config)
        self.momentum_encoder = (
            MomentumEncoder(backbone, momentum=config.momentum, buffers=config.momentum_buffers)
            if config.uses_queue
            else None
        )

    @property
    def writes_memory(self) -> bool:
        """True when a forward pass writes the queue (training mode and a variant with RMA)."""
        return self.training and self.momentum_encoder is not None

    def _input(self, x: Any) -> Any:
        """Floating inputs (tensors, numpy arrays) in the backbone's dtype; anything else as given."""
        if isinstance(x, np.ndarray) or (isinstance(x, Tensor) and x.is_floating_point()):
            ref = next((p for p in self.backbone.parameters() if p.is_floating_point()), self.head.fc.weight)
            return as_float(x, ref, "HMAClassifier", "input x")  # float64 / half -> the model's dtype
        return x

    def forward(self, x: Any, labels: Any = None) -> Tensor:
        x = self._input(x)
        if labels is not None:
            labels = as_labels(labels, self.head.fc.weight.device, "HMAClassifier")
        if labels is not None and self.config.validate_inputs:
            check_labels(labels, self.config.num_classes, "HMAClassifier")
        rows = x.shape[0] if isinstance(x, Tensor) else getattr(x, "num_graphs", None)  # known before any state changes
        if labels is not None and rows is not None and labels.shape[0] != rows:
            raise ValueError(f"HMAClassifier: labels has {labels.shape[0]} rows but the batch has {rows}")
        if self.writes_memory:
            if labels is None:
                raise ValueError(
                    "HMAClassifier: labels are required in training mode, because variant "
                    f"{self.config.variant!r} writes them into its queue; call model(x, labels)"
                )
            self.momentum_encoder.update_(self.backbone)
        features = self.backbone.forward_features(x)  # (B, D1)
        if labels is not None and labels.shape[0] != features.shape[0]:
            raise ValueError(f"HMAClassifier: labels has {labels.shape[0]} rows but the batch has {features.shape[0]}")
        ids = fingerprint(x) if self.writes_memory and self.config.leave_one_out and isinstance(x, Tensor) else None
        logits = self.head(features, exclude_ids=ids)  # (B, num_classes)
        if self.writes_memory:
            with torch.no_grad():
                keys = self.momentum_encoder.module.forward_features(x)  # (B, D1)
            ids = concat_all_gather(ids) if ids is not None else None
            self.head.write_memory_(concat_all_gather(keys), concat_all_gather(labels), ids)
        elif self.training and labels is not None and self.head.slots is not None:
            self.head.write_memory_(features.detach(), labels)  # no queue: seeds data-initialised slots
        return logits

    def augment(self, x: Any, *, need_weights: bool = False) -> HMAOutput:
        """Backbone features through RMA and SMA, every intermediate returned; writes nothing."""
        return self.head.augment(self.backbone.forward_features(self._input(x)), need_weights=need_weights)
