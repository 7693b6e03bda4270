"""Backbones: feature extractors with ``forward_features(x) -> (B, feature_dim)``, from a registry,
or any module through :func:`wrap`.

Importing this package registers every backbone; graph backbones import torch_geometric only
when built.
"""

from hetmem.backbones import cnn, gnn, mlp, resnet, vit  # noqa: F401  (registration)
from hetmem.backbones.registry import compatible_backbones, create_backbone, list_backbones, register_backbone
from hetmem.backbones.spec import InputSpec
from hetmem.backbones.wrap import WrappedBackbone, wrap

__all__ = ["InputSpec", "WrappedBackbone", "compatible_backbones", "create_backbone", "list_backbones", "register_backbone", "wrap"]
