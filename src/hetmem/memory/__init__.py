"""Memory stores: rows written at run time (FeatureQueue), rows learned by gradient
(ClassMemorySlots), and the EMA network that writes real rows (MomentumEncoder)."""

from hetmem.memory.momentum import MomentumEncoder
from hetmem.memory.queue import FeatureQueue, fingerprint
from hetmem.memory.slots import ClassMemorySlots

__all__ = ["ClassMemorySlots", "FeatureQueue", "MomentumEncoder", "fingerprint"]
