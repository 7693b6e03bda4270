"""A backbone with a linear head, and dropout on the pooled features in between.

The classifier of DomainBed and of the very-large-dropout code (``Sequential(Dropout(p),
Linear)`` on the featurizer's output), with the option to keep every BatchNorm layer of the
backbone in eval mode while training (DomainBed's ``freeze_bn``: running statistics fixed,
affine parameters still trained).
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["FeatureClassifier", "freeze_norm_"]

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def freeze_norm_(module: nn.Module) -> int:
    """Puts every BatchNorm layer of ``module`` in eval mode (its running statistics stop
    moving; its weight and bias still train). Returns how many layers it froze."""
    count = 0
    for m in module.modules():
        if isinstance(m, _NORMS):
            m.eval()
            count += 1
    return count


class FeatureClassifier(nn.Module):
    """``head(dropout(backbone.forward_features(x)))``.

    Dropout here is the very-large-dropout method's (Zhang & Bottou 2024): it acts on the
    pooled penultimate features only, with inverted scaling ``m / (1 - p) * phi``,
    ``m ~ Bernoulli(1 - p)``, and does nothing in eval mode.

    Args:
        backbone: any hetmem backbone (``forward_features`` and an int ``feature_dim``).
        num_classes: outputs of the linear head.
        dropout: the rate p in [0, 1) on the features (0.9 for very-large dropout).
        freeze_norm: keep the backbone's BatchNorm layers in eval mode in training too.
        head: a linear layer to start from (e.g. :func:`hetmem.models.rich.concat_heads`);
            default a fresh ``nn.Linear(feature_dim, num_classes)``.

    Shapes:
        - input: what the backbone takes, (B, ...).
        - ``forward_features``: (B, feature_dim), never dropped out.
        - output: logits (B, num_classes).

    Example:
        >>> import torch
        >>> from hetmem.backbones import InputSpec, create_backbone
        >>> net = FeatureClassifier(create_backbone("mlp", InputSpec.vector(8), hidden_dim=16), 3, dropout=0.9)
        >>> net(torch.randn(4, 8)).shape
        torch.Size([4, 3])
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        dropout: float = 0.0,
        freeze_norm: bool = False,
        head: nn.Linear | None = None,
    ) -> None:
        super().__init__()
        dim = getattr(backbone, "feature_dim", None)
        if not callable(getattr(backbone, "forward_features", None)) or isinstance(dim, bool) or not isinstance(dim, int):
            raise ValueError("FeatureClassifier: the backbone needs forward_features(x) and an int feature_dim")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"FeatureClassifier: num_classes must be a positive int, got {num_classes!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"FeatureClassifier: dropout must be a rate in [0, 1), got {dropout!r}")
        if head is not None and (head.in_features, head.out_features) != (dim, num_classes):
            raise ValueError(
                f"FeatureClassifier: head maps {head.in_features} -> {head.out_features}, expected {dim} -> {num_classes}"
            )
        self.backbone = backbone
        self.feature_dim = dim
        self.num_classes = num_classes
        self.freeze_norm = bool(freeze_norm)
        self.dropout = nn.Dropout(float(dropout))
        self.head = head if head is not None else nn.Linear(dim, num_classes)

    def train(self, mode: bool = True) -> FeatureClassifier:
        super().train(mode)
        if mode and self.freeze_norm:
            freeze_norm_(self.backbone)
        return self

    def forward_features(self, x: Tensor) -> Tensor:
        return self.backbone.forward_features(x)  # (B, feature_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.dropout(self.forward_features(x)))  # (B, num_classes)

    def extra_repr(self) -> str:
        return f"feature_dim={self.feature_dim}, num_classes={self.num_classes}, freeze_norm={self.freeze_norm}"
