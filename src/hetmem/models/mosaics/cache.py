"""Decoding caches: what each layer keeps between calls so that feeding a sequence in pieces
gives exactly the outputs of one full forward pass.

A Memory Mosaic context memory needs more than a transformer's KV cache (spec trap 8, where the
official toy decoder leaves the stored values at zero):

- the running leaky key sum (the key of step t depends on every earlier input),
- the keys of every stored position (they are read by later queries),
- the values of every position but the newest: v_t needs x_{t+1}, so it is completed (and
  stored) only when the next input arrives, from the part of it kept as ``pending``.

A persistent memory only needs its running leaky key sum. GPT needs keys, values and the
position count. A Memory Mosaic v2 memory (:class:`LagCache`) needs what a v1 context memory
does; its short-term memory keeps only the window it can still read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch  # noqa: F401  (doctest)
from torch import Tensor

__all__ = ["ContextCache", "GrowingBuffer", "KVCache", "LagCache", "PersistentCache"]


class GrowingBuffer:
    """A (B, H, S, h) tensor that grows along S by amortised doubling (appending one step does
    not copy everything stored so far), and can forget its oldest entries (a sliding window).

    ``start`` is the stream position of the first entry kept, ``end`` the position after the
    newest; :meth:`drop_before` forgets entries before a position without copying (the space
    is reused when the buffer next runs out of room).

    Example:
        >>> buf = GrowingBuffer()
        >>> buf.append(torch.zeros(1, 2, 3, 4)); buf.append(torch.ones(1, 2, 1, 4))
        >>> buf.view().shape, len(buf)
        (torch.Size([1, 2, 4, 4]), 4)
        >>> buf.drop_before(3); buf.view().shape, buf.start, buf.end
        (torch.Size([1, 2, 1, 4]), 3, 4)
    """

    def __init__(self, min_capacity: int = 64) -> None:
        self.min_capacity = min_capacity
        self.data: Tensor | None = None
        self.head = 0  # index in data of the first entry kept
        self.length = 0  # entries kept
        self.start = 0  # stream position of the first entry kept

    def __len__(self) -> int:
        return self.length

    @property
    def end(self) -> int:
        """Stream position after the newest entry (entries appended so far)."""
        return self.start + self.length

    def drop_before(self, position: int) -> None:
        """Forget the entries at stream positions < ``position``."""
        k = min(max(position - self.start, 0), self.length)
        self.head, self.length, self.start = self.head + k, self.length - k, self.start + k

    def append(self, x: Tensor) -> None:
        T = x.shape[2]
        live = self.length + T
        if self.data is None or self.head + live > self.data.shape[2]:
            capacity = 0 if self.data is None else self.data.shape[2]
            if self.data is not None and 2 * live <= capacity:  # room enough once the dropped entries are reclaimed
                self.data[:, :, : self.length] = self.data[:, :, self.head : self.head + self.length].clone()
            else:
                grown = x.new_empty(*x.shape[:2], max(live, self.min_capacity, 2 * capacity), x.shape[3])
                if self.data is not None:
                    grown[:, :, : self.length] = self.data[:, :, self.head : self.head + self.length]
                self.data = grown
            self.head = 0
        self.data[:, :, self.head + self.length : self.head + live] = x
        self.length = live

    def view(self) -> Tensor:
        """The kept (B, H, S, h) entries (a view, valid until the next append)."""
        if self.data is None:
            raise ValueError("GrowingBuffer: nothing stored yet")
        return self.data[:, :, self.head : self.head + self.length]


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



@dataclass
class LagCache:
    """State of one Memory Mosaic v2 memory (short- or long-term) after the positions fed so far.

    Like :class:`ContextCache`, with the leaky state of the gated keys (exact: the gate and
    the decay of step t depend on x_t only). A short-term memory drops the pairs no later query
    can read (lags beyond its window), so its cache stays at about the window's size.
    """

    keys: GrowingBuffer = field(default_factory=GrowingBuffer)  # k_s for s < n (those still readable)
    values: GrowingBuffer = field(default_factory=GrowingBuffer)  # v_s for s < n - 1
    leaky: Tensor | None = None  # (B, H, h) unnormalised (gated) leaky key sum at position n-1
    pending: Tensor | None = None  # (B, H, 1, h) the 'now' part of v_{n-1}

    @property
    def length(self) -> int:
        """n, the positions fed so far."""
        return self.keys.end
