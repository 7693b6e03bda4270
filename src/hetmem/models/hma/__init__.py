"""Heterogeneous Memory Augmentation (HMA): config, head and classifier."""

from hetmem.models.hma.classifier import HMAClassifier
from hetmem.models.hma.config import VARIANTS, Components, HMAConfig
from hetmem.models.hma.head import HMAHead, HMAOutput

__all__ = ["VARIANTS", "Components", "HMAClassifier", "HMAConfig", "HMAHead", "HMAOutput"]
