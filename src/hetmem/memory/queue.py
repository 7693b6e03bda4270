"""A ring buffer of feature rows and their labels, kept in the state dict.

Used by HMA's real memory (RMA) and by MaSSL's memory of teacher embeddings.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["FeatureQueue", "fingerprint"]

_PRIME = 2_147_483_629  # the largest prime below 2**31: products of two residues fit in int64


def fingerprint(x: Tensor, *, seed: int = 0) -> Tensor:
    """An integer id per sample that is equal for bit-identical inputs, (B,) int64.

    A random linear hash of the float32 bit patterns modulo a prime, in integer arithmetic, so
    it does not depend on the batch the sample comes in or on the summation order. Different
    inputs collide with probability about 1 / 2**31.

    Example:
        >>> x = torch.randn(3, 4)
        >>> bool((fingerprint(x)[1:] == fingerprint(x[1:])).all())
        True
    """
    bits = x.detach().reshape(x.shape[0], -1).float().contiguous().view(torch.int32).long() % _PRIME  # (B, F)
    gen = torch.Generator().manual_seed(seed)
    weights = torch.randint(1, _PRIME, (bits.shape[1],), generator=gen).to(bits.device)  # (F,)
    return ((bits * weights) % _PRIME).sum(1) % _PRIME  # (B,)


class FeatureQueue(nn.Module):
    """First-in first-out queue of ``size`` rows of width ``dim``, with an integer label per row.

    The rows, labels, write pointer and fill count are *persistent* buffers, so a checkpoint
    restores the queue exactly (HMA reads its queue at test time; a bank that vanished from
    the checkpoint would change predictions after a reload). The queue starts empty; only the
    filled rows are ever returned, so readers never attend to uninitialised storage. Rows are
    always filled from index 0 upwards, so while the queue is not full the filled rows are the
    prefix ``[:len(queue)]``.

    Args:
        dim: width of each row.
        size: number of rows the queue holds.
        dtype: storage dtype of the rows.

    Shapes:
        - ``write_(rows, labels)``: rows (N, dim), labels (N,) with any N >= 0.
        - ``read()``: returns rows (L, dim) and labels (L,), L = ``len(queue)`` <= size.

    Example:
        >>> queue = FeatureQueue(dim=4, size=3)
        >>> queue.write_(torch.ones(2, 4), torch.tensor([0, 1]))
        >>> rows, labels = queue.read()
        >>> rows.shape, labels.tolist()
        (torch.Size([2, 4]), [0, 1])
    """

    def __init__(self, dim: int, size: int, *, dtype: torch.dtype = torch.float32, track_ids: bool = False) -> None:
        super().__init__()
        if dim <= 0:
            raise ValueError(f"FeatureQueue: dim must be a positive int, got {dim}")
        if size <= 0:
            raise ValueError(f"FeatureQueue: size must be a positive int, got {size}")
        self.dim = dim
        self.size = size
        self.register_buffer("rows", torch.zeros(size, dim, dtype=dtype))
        self.register_buffer("labels", torch.full((size,), -1, dtype=torch.long))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))  # next row to write
        self.register_buffer("count", torch.zeros((), dtype=torch.long))  # rows filled so far
        self.track_ids = track_ids
        if track_ids:  # an id per row (e.g. a :func:`fingerprint` of the input it came from); -1: none
            self.register_buffer("ids", torch.full((size,), -1, dtype=torch.long))

    def __len__(self) -> int:
        return int(self.count)

    @property
    def is_full(self) -> bool:
        return len(self) == self.size

    def read(self) -> tuple[Tensor, Tensor]:
        """Returns a detached copy of the filled rows and their labels.

        A copy, not a view: the caller may use the rows in a graph and write the queue
        afterwards without an in-place modification error.
        """
        n = len(self)
        return self.rows[:n].detach().clone(), self.labels[:n].clone()

    def read_ids(self) -> Tensor | None:
        """The ids of the filled rows, (L,), or None when the queue does not track ids."""
        return self.ids[: len(self)].clone() if self.track_ids else None

    @torch.no_grad()
    def write_(self, rows: Tensor, labels: Tensor | None = None, ids: Tensor | None = None) -> None:
        """Appends ``rows`` (and ``labels``), overwriting the oldest rows once full.

        Any number of rows is accepted: a write wraps around the end of the storage, and a
        write of more than ``size`` rows keeps its last ``size`` rows. The result, pointer
        included, is always that of writing the rows one at a time.
        """
        if rows.dim() != 2 or rows.shape[1] != self.dim:
            raise ValueError(f"FeatureQueue.write_: rows must have shape (N, {self.dim}), got {tuple(rows.shape)}")
        n = rows.shape[0]
        if labels is None:
            labels = torch.full((n,), -1, dtype=torch.long, device=rows.device)
        if labels.shape != (n,):
            raise ValueError(f"FeatureQueue.write_: labels must have shape ({n},), got {tuple(labels.shape)}")
        if ids is not None and ids.shape != (n,):
            raise ValueError(f"FeatureQueue.write_: ids must have shape ({n},), got {tuple(ids.shape)}")
        if n == 0:
            return
        skipped = max(n - self.size, 0)  # rows overwritten within this very write
        start = self.ptr + skipped
        index = (start + torch.arange(n - skipped, device=self.ptr.device)) % self.size  # (min(N, size),)
        self.rows[index] = rows[skipped:].detach().to(self.rows.dtype)
        self.labels[index] = labels[skipped:].to(torch.long)
        if self.track_ids:
            self.ids[index] = -1 if ids is None else ids[skipped:].to(torch.long)
        self.ptr.copy_((self.ptr + n) % self.size)
        self.count.copy_(torch.clamp(self.count + n, max=self.size))

    @torch.no_grad()
    def reset(self) -> None:
        """Empties the queue."""
        self.rows.zero_()
        self.labels.fill_(-1)
        if self.track_ids:
            self.ids.fill_(-1)
        self.ptr.zero_()
        self.count.zero_()

    def extra_repr(self) -> str:
        return f"dim={self.dim}, size={self.size}" + (", track_ids=True" if self.track_ids else "")
