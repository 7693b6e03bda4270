"""Heterogeneous Memory Augmentation (HMA): config, head and classifier."""

from hetmem.models.hma.classifier import HMAClassifier
from hetmem.models.hma.config import PRESETS, VARIANTS, Components, HMAConfig
from hetmem.models.hma.diagnostics import RetrievalMeter
from hetmem.models.hma.head import HMAHead, HMAOutput

__all__ = ["PRESETS", "VARIANTS", "Components", "HMAClassifier", "HMAConfig", "HMAHead", "HMAOutput", "RetrievalMeter"]
