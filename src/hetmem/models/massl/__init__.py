"""MaSSL: memory-augmented self-supervised learning (Silva, Pedrini, Ramírez Rivera, arXiv 2407.17486).

A student and its EMA teacher embed several crops of each image on the unit sphere; each
view's similarities to a memory of past teacher embeddings, cut into random blocks, give
a distribution per block, and the student's must match the teacher's for every other view.

Files, bottom-up: ``augment`` (multi-crop views), ``blocks`` (stochastic memory blocks),
``loss``, ``schedules``, ``head`` (projection head), ``model`` (MaSSLConfig, MaSSL),
``module`` (Lightning training).

Shape glossary:

- B: images in the batch; V: views (Vs student views = 2 global + n_local, Vt = 2 teacher views)
- D: embedding width (``out_dim``), also the width of a memory row
- K: memory rows (``memory_size``); Nb: rows per block (``block_size``); N = K / Nb blocks
"""

from hetmem.models.massl.augment import MultiCropAugmentation
from hetmem.models.massl.blocks import BLOCK_SAMPLINGS, sample_memory_blocks
from hetmem.models.massl.head import ProjectionHead
from hetmem.models.massl.loss import MaSSLLossStats, massl_loss
from hetmem.models.massl.model import MaSSL, MaSSLConfig, MultiCropNetwork
from hetmem.models.massl.schedules import MaSSLSchedule

__all__ = [
    "BLOCK_SAMPLINGS",
    "MaSSL",
    "MaSSLConfig",
    "MaSSLLossStats",
    "MaSSLSchedule",
    "MultiCropAugmentation",
    "MultiCropNetwork",
    "ProjectionHead",
    "massl_loss",
    "sample_memory_blocks",
]
