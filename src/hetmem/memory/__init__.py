"""Memory stores: rows written at run time (FeatureQueue), rows learned by gradient
(ClassMemorySlots), the EMA network that writes real rows (MomentumEncoder), and a cache of
values derived from them (StateCache)."""

from hetmem.memory.cache import StateCache
from hetmem.memory.momentum import MomentumEncoder
from hetmem.memory.queue import FeatureQueue, fingerprint
from hetmem.memory.slots import ClassMemorySlots

__all__ = ["ClassMemorySlots", "FeatureQueue", "MomentumEncoder", "StateCache", "fingerprint"]
