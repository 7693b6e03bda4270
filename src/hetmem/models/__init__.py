"""Methods built on hetmem's memory primitives."""

from hetmem.models.hma import VARIANTS, HMAClassifier, HMAConfig, HMAHead, HMAOutput

__all__ = ["VARIANTS", "HMAClassifier", "HMAConfig", "HMAHead", "HMAOutput"]
