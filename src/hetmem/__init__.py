"""hetmem: memory-augmented neural networks in PyTorch.

Layers, bottom-up: ``memory`` (stores), ``attention`` (readers), ``models`` (methods: HMA, MaSSL),
``backbones`` (feature extractors), ``data`` (tasks), ``train`` (runner), ``cli`` (thin).

Shape glossary used in docstrings and comments:

- B: batch size (rows being classified)
- D1: backbone feature width; D2: label-embedding width; D = D1 + D2
- M: memory rows read (M1 queue rows, S = n * m2 slot rows)
- n: number of classes; m2: slots per class
- H: attention heads; hd: width per head
- K: keys one query attends to
"""

__version__ = "0.1.0"  # the package's version (pyproject.toml reads it from here)

from hetmem.attention import MemoryAttentionBlock  # noqa: E402
from hetmem.inference import Predictions, TrainedModel, load_trained  # noqa: E402
from hetmem.memory import ClassMemorySlots, FeatureQueue, MomentumEncoder  # noqa: E402
from hetmem.models import VARIANTS, HMAClassifier, HMAConfig, HMAHead, HMAOutput  # noqa: E402

__all__ = [
    "VARIANTS",
    "ClassMemorySlots",
    "FeatureQueue",
    "HMAClassifier",
    "HMAConfig",
    "HMAHead",
    "HMAOutput",
    "MemoryAttentionBlock",
    "MomentumEncoder",
    "Predictions",
    "TrainedModel",
    "load_trained",
]
