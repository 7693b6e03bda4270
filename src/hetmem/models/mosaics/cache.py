"""Decoding caches: what each layer keeps between calls so that feeding a sequence in pieces
gives exactly the outputs of one full forward pass.

A Memory Mosaic context memory needs more than a transformer's KV cache (spec trap 8, where the
official toy decoder leaves the stored values at zero):

- the running leaky key sum (the key of step t depends on every earlier input),
- the keys of every stored position (they are read by later queries),
- the values of every position but the newest: v_t needs x_{t+1}, so it is completed (and
  stored) only when the next input arrives, from the part of it kept as ``pending``.

A persistent memory only needs its running leaky key sum. GPT needs keys, values and the
position count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch  # noqa: F401  (doctest)
from torch import Tensor

__all__ = ["ContextCache", "GrowingBuffer", "KVCache", "PersistentCache"]


class GrowingBuffer:
    """A (B, H, S, h) tensor that grows along S by amortised doubling (appending one step does
    not copy everything stored so far).

    Example:
        >>> buf = GrowingBuffer()
        >>> buf.append(torch.zeros(1, 2, 3, 4)); buf.append(torch.ones(1, 2, 1, 4))
        >>> buf.view().shape, len(buf)
        (torch.Size([1, 2, 4, 4]), 4)
    """

    def __init__(self, min_capacity: int = 64) -> None:
        self.min_capacity = min_capacity
        self.data: Tensor | None = None
        self.length = 0

    def __len__(self) -> int:
        return self.length

    def append(self, x: Tensor) -> None:
        needed = self.length + x.shape[2]
        if self.data is None or needed > self.data.shape[2]:
            capacity = max(needed, self.min_capacity, 2 * (0 if self.data is None else self.data.shape[2]))
            grown = x.new_empty(*x.shape[:2], capacity, x.shape[3])
            if self.data is not None:
                grown[:, :, : self.length] = self.data[:, :, : self.length]
            self.data = grown
        self.data[:, :, self.length : needed] = x
        self.length = needed

    def view(self) -> Tensor:
        """The stored (B, H, S, h) entries (a view, valid until the next append)."""
        if self.data is None:
            raise ValueError("GrowingBuffer: nothing stored yet")
        return self.data[:, :, : self.length]


@dataclass
class ContextCache:
    """State of one Memory Mosaic context memory after the positions fed so far."""

    keys: GrowingBuffer = field(default_factory=GrowingBuffer)  # k_0 .. k_{n-1}
    values: GrowingBuffer = field(default_factory=GrowingBuffer)  # v_0 .. v_{n-2} (complete ones)
    leaky: Tensor | None = None  # (B, H, h) unnormalised leaky key sum at position n-1
    pending: Tensor | None = None  # (B, H, 1, h) the 'now' part of position n-1: v_{n-1} = finish(now_{n-1}, ahead_n)

    @property
    def length(self) -> int:
        return len(self.keys)


@dataclass
class PersistentCache:
    """State of one persistent memory: its running leaky key sum."""

    leaky: Tensor | None = None  # (B, H, h)


@dataclass
class KVCache:
    """A transformer layer's keys and values (GPT baseline)."""

    keys: GrowingBuffer = field(default_factory=GrowingBuffer)
    values: GrowingBuffer = field(default_factory=GrowingBuffer)

    @property
    def length(self) -> int:
        return len(self.keys)

