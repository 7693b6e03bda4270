"""A ring buffer of feature rows and their labels, kept in the state dict.

Used by HMA's real memory (RMA) and by MaSSL's memory of teacher embeddings.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["FeatureQueue"]


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

    def __init__(self, dim: int, size: int, *, dtype: torch.dtype = torch.float32) -> None:
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

    @torch.no_grad()
    def write_(self, rows: Tensor, labels: Tensor | None = None) -> None:
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
        if n == 0:
            return
        skipped = max(n - self.size, 0)  # rows overwritten within this very write
        start = self.ptr + skipped
        index = (start + torch.arange(n - skipped, device=self.ptr.device)) % self.size  # (min(N, size),)
        self.rows[index] = rows[skipped:].detach().to(self.rows.dtype)
        self.labels[index] = labels[skipped:].to(torch.long)
        self.ptr.copy_((self.ptr + n) % self.size)
        self.count.copy_(torch.clamp(self.count + n, max=self.size))

    @torch.no_grad()
    def reset(self) -> None:
        """Empties the queue."""
        self.rows.zero_()
        self.labels.fill_(-1)
        self.ptr.zero_()
        self.count.zero_()

    def extra_repr(self) -> str:
        return f"dim={self.dim}, size={self.size}"
