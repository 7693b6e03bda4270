"""HMAHead: real memory (RMA), then synthetic memory with attention between datapoints (SMA),
then a linear classifier, on top of any backbone's features."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from hetmem.attention import MemoryAttentionBlock
from hetmem.distributed import all_gather_with_grad, concat_all_gather, is_distributed
from hetmem.inputs import as_float, as_labels, as_positive_int
from hetmem.memory import ClassMemorySlots, FeatureQueue, StateCache
from hetmem.models.hma.config import HMAConfig

__all__ = ["HMAHead", "HMAOutput", "check_features", "check_labels"]

MemoryKV = tuple[Tensor, Tensor]  # keys and values of one memory, each (H, M, hd)


class HMAOutput(NamedTuple):
    """Intermediate rows of one HMA pass, for analysis (t-SNE, attention maps)."""

    c1: Tensor  # (B, D) (projected) features joined with the 'unknown' label embedding
    c2: Tensor  # (B, D) after the RMA read
    c3: Tensor  # (B, D) after the SMA read (the classifier's input)
    rma_weights: Tensor | None  # (H, B, 1 + M1): key 0 is the row itself, then the queue rows
    sma_weights: Tensor | None  # (H, B, K): batch rows (or the row itself) then the slots


def check_features(features: Tensor, feature_dim: int, where: str) -> None:
    """Raises ValueError unless features is a finite (B, feature_dim) tensor with B >= 1."""
    if features.dim() != 2 or features.shape[1] != feature_dim:
        raise ValueError(f"{where}: features must have shape (B, {feature_dim}), got {tuple(features.shape)}")
    if features.shape[0] == 0:
        raise ValueError(f"{where}: features is an empty batch (B=0); expected at least one row")
    bad = (~torch.isfinite(features)).sum().item()
    if bad:
        raise ValueError(f"{where}: features contain {bad} NaN or Inf values; expected finite backbone features")


def check_labels(labels: Tensor, num_classes: int, where: str, batch_size: int | None = None) -> None:
    """Raises ValueError unless labels is an integer (B,) tensor with values in [0, num_classes)."""
    expected = "B" if batch_size is None else batch_size
    if (
        labels.dtype.is_floating_point
        or labels.dtype == torch.bool
        or labels.dim() != 1
        or (batch_size is not None and labels.shape[0] != batch_size)
    ):
        raise ValueError(
            f"{where}: labels must be an integer tensor of shape ({expected},), got {labels.dtype} {tuple(labels.shape)}"
        )
    if labels.numel() and (labels.min().item() < 0 or labels.max().item() >= num_classes):
        raise ValueError(
            f"{where}: labels must be in [0, {num_classes}), got values in "
            f"[{labels.min().item()}, {labels.max().item()}]"
        )


class HMAHead(nn.Module):
    """Heterogeneous Memory Augmentation on backbone features (Qiu et al., arXiv 2310.10909).

    .. math::
        C^1 = [h; e_{\\text{unknown}}], \\quad
        C^2_i = \\mathrm{MHA}(C^1_i, [C^1_i; M_{\\text{queue}}]), \\quad
        C^3 = \\mathrm{MHA}(C^2, [C^2; M_{\\text{syn}}]), \\quad
        \\text{logits} = W C^3 + b

    The queue holds momentum-encoder features of past batches with their *true* labels; the
    synthetic memory holds ``slots_per_class`` learned rows per class, each joined with its
    class's label embedding. The queue's keys and values are projected once per call and
    shared by all B rows (the paper's formula repeats the queue B times).

    In eval mode without autograd (``torch.no_grad()``, ``torch.inference_mode()``) the keys
    and values of the queue and the slots are kept between calls and recomputed after any
    change of the head's parameters or buffers (:meth:`memory_kv`): a batch of one then costs
    the rows' own work, not a projection of every memory row.

    The head reads its memories; it writes the queue only when asked
    (:meth:`write_memory_`), which :class:`HMAClassifier` does after each training forward.

    Args:
        feature_dim: backbone feature width D1.
        config: the method's hyper-parameters; ``config.variant`` picks the ablation.

    Shapes:
        - features: (B, D1), B >= 1.
        - output: logits (B, num_classes).
        - D = width + label_dim is the width of the rows the attention blocks see (width =
          ``config.width``, a learned projection of the features, or D1 itself).

    Example:
        >>> head = HMAHead(feature_dim=16, config=HMAConfig(num_classes=3, label_dim=8, queue_size=32))
        >>> head.write_memory_(torch.randn(4, 16), torch.tensor([0, 1, 2, 0]))
        >>> head(torch.randn(5, 16)).shape
        torch.Size([5, 3])
    """

    def __init__(self, feature_dim: int, config: HMAConfig) -> None:
        super().__init__()
        self.feature_dim = feature_dim = as_positive_int("HMAHead", "feature_dim", feature_dim)
        self.config = config
        self.cache_memory = True  # eval without autograd: keep the memories' keys and values between calls
        self._memory_cache = StateCache()
        self.num_classes = n = config.num_classes
        parts = config.components
        self.queue: FeatureQueue | None = None
        self.slots: ClassMemorySlots | None = None
        if parts is None:  # "none": the backbone's own linear classifier
            self.fc = nn.Linear(feature_dim, n)
            return
        self.width = width = config.width or feature_dim
        self.dim = dim = width + config.label_dim
        # the bottleneck: backbone and queue features enter the blocks at `width`
        self.proj = nn.Linear(feature_dim, width) if config.width is not None else nn.Identity()
        self.label_embed = nn.Embedding(n + 1, config.label_dim)  # index n: the 'unknown' class
        block = dict(
            num_heads=config.num_heads,
            head_dim=config.head_dim,
            dropout=config.dropout,
            ff_mult=config.ff_mult,
            fused=config.fused_attention,
            scores=config.scores,
            score_scale=config.score_scale,
            layer_scale=config.layer_scale,
        )
        self.rma = MemoryAttentionBlock(dim, **block, key_dim=width if config.keys == "features" else None)
        self.sma = MemoryAttentionBlock(dim, **block, key_dim=width if config.slot_keys == "features" else None)
        queue_width = feature_dim if config.queue_labels == "read" else dim
        if parts.queue:
            self.queue = FeatureQueue(queue_width, config.queue_size, track_ids=config.leave_one_out)
        if parts.slots:
            self.slots = ClassMemorySlots(n, config.slots_per_class, width, init=config.slot_init, std=config.slot_init_std)
        self.fc = nn.Linear(dim, n)

    # ----- memory rows -------------------------------------------------------------------
    def queue_rows(self) -> Tensor | None:
        """The filled queue rows as [features; label embedding], (M1, D), or None.

        In training with ``label_dropout`` p > 0, each row's label is read as 'unknown' with
        probability p (the rows stay, their label does not come with them).
        """
        if self.queue is None:
            return None
        rows, labels = self.queue.read()  # (M1, D1 or D), (M1,)
        p = self.config.label_dropout
        dropped = torch.rand(labels.shape, device=labels.device) < p if self.training and p > 0 else None  # (M1,)
        if self.config.queue_labels == "write":  # the embedding was stored: replace it where dropped
            if dropped is not None:
                unknown = self.label_embed.weight[self.num_classes].to(rows.dtype)  # (D2,)
                rows = torch.cat([rows[:, : self.width], torch.where(dropped[:, None], unknown, rows[:, self.width :])], dim=1)
            return rows
        if dropped is not None:
            labels = labels.masked_fill(dropped, self.num_classes)
        return torch.cat([self.proj(rows), self.label_embed(labels)], dim=1)  # (M1, D)

    def slot_rows(self) -> Tensor | None:
        """The synthetic memory as [slot; label embedding of its class], (n * m2, D), or None."""
        if self.slots is None:
            return None
        slots, labels = self.slots()  # (S, D1), (S,)
        return torch.cat([slots, self.label_embed(labels)], dim=1)  # (S, D)

    def _project_memories(self) -> tuple[MemoryKV, MemoryKV]:
        return self.rma.project_memory(self.queue_rows()), self.sma.project_memory(self.slot_rows())

    def memory_kv(self) -> tuple[MemoryKV, MemoryKV]:
        """Keys and values of the queue (read by RMA) and of the slots (read by SMA), each (H, M, hd).

        In eval mode with autograd off (``torch.no_grad()``, ``torch.inference_mode()``) they are
        computed once and kept while no parameter or buffer of the head changes (a queue write,
        an optimiser step, ``load_state_dict``, ``.to()``: see :class:`~hetmem.memory.StateCache`);
        otherwise, and with ``cache_memory = False``, they are computed on every call.
        """
        if self.training or torch.is_grad_enabled() or not self.cache_memory:
            return self._project_memories()
        return self._memory_cache.get(self, self._project_memories)

    def clear_memory_cache(self) -> None:
        """Drops the cached keys and values (needed only after writes through ``tensor.data``)."""
        self._memory_cache.clear()

    @torch.no_grad()
    def write_memory_(self, features: Tensor, labels: Tensor, ids: Tensor | None = None) -> None:
        """Appends momentum-encoder ``features`` (N, D1) with their true ``labels`` (N,) to the
        queue, with the ids of their inputs (N,) for ``leave_one_out``. With
        ``slot_init="data"`` the first rows of each class also seed that class's slots."""
        if self.queue is None and (self.slots is None or self.slots.init != "data"):
            return
        features = as_float(features, self.fc.weight, "HMAHead.write_memory_")
        labels = as_labels(labels, features.device, "HMAHead.write_memory_")
        if self.config.validate_inputs:
            check_features(features, self.feature_dim, "HMAHead.write_memory_")
            check_labels(labels, self.num_classes, "HMAHead.write_memory_", features.shape[0])
        if self.slots is not None:
            self.slots.seed_(self.proj(features), labels)
        if self.queue is None:
            return
        if self.config.queue_labels == "write":
            features = torch.cat([self.proj(features), self.label_embed(labels)], dim=1)  # (N, D)
        self.queue.write_(features, labels, ids)

    # ----- forward -----------------------------------------------------------------------
    def context(self) -> str:
        """The SMA context in the current mode ('single' whenever the variant has no ABD)."""
        parts = self.config.components
        if parts is None or not parts.batch:
            return "single"
        return self.config.train_context if self.training else self.config.eval_context

    def augment(
        self,
        features: Tensor,
        *,
        need_weights: bool = False,
        exclude_ids: Tensor | None = None,
        memory_kv: tuple[MemoryKV, MemoryKV] | None = None,
    ) -> HMAOutput:
        """Runs C1 -> RMA -> SMA and returns every intermediate (see :class:`HMAOutput`).

        ``exclude_ids`` (B,): row i does not read queue rows whose id equals ``exclude_ids[i]``
        (``leave_one_out``: a training row never reads its own earlier copy and label).
        ``memory_kv``: the memories' keys and values, as :meth:`memory_kv` returns them
        (default: that call, cached in eval mode without autograd).
        """
        if self.config.components is None:
            raise ValueError("HMAHead.augment: variant 'none' has no memory to read")
        features = as_float(features, self.fc.weight, "HMAHead")
        if self.config.validate_inputs:
            check_features(features, self.feature_dim, "HMAHead")
        B = features.shape[0]
        unknown = self.label_embed.weight[self.num_classes].expand(B, -1)  # (B, D2)
        c1 = torch.cat([self.proj(features), unknown], dim=1)  # (B, D)
        mask = None
        if exclude_ids is not None and self.queue is not None and self.queue.track_ids:
            mask = self.queue.read_ids().unsqueeze(0) == exclude_ids.unsqueeze(1)  # (B, M1)
        rma_kv, sma_kv = self.memory_kv() if memory_kv is None else memory_kv
        c2 = self.rma(c1, context="single", need_weights=need_weights, memory_mask=mask, memory_kv=rma_kv)
        c2, rma_w = c2 if need_weights else (c2, None)
        context = self.context()
        batch_rows = None
        if context == "batch" and self.config.global_batch and is_distributed():
            # keys over every process's rows; in training the gradient flows back to each rank
            batch_rows = all_gather_with_grad(c2) if self.training else concat_all_gather(c2)
        c3 = self.sma(c2, context=context, need_weights=need_weights, batch_rows=batch_rows, memory_kv=sma_kv)
        c3, sma_w = c3 if need_weights else (c3, None)
        return HMAOutput(c1, c2, c3, rma_w, sma_w)

    def forward(
        self, features: Tensor, memory_kv: tuple[MemoryKV, MemoryKV] | None = None, *, exclude_ids: Tensor | None = None
    ) -> Tensor:
        if self.config.components is None:
            features = as_float(features, self.fc.weight, "HMAHead")
            if self.config.validate_inputs:
                check_features(features, self.feature_dim, "HMAHead")
            return self.fc(features)
        return self.fc(self.augment(features, exclude_ids=exclude_ids, memory_kv=memory_kv).c3)  # (B, num_classes)

    def extra_repr(self) -> str:
        width = f", width={self.width}" if self.config.width is not None and self.config.components is not None else ""
        return f"feature_dim={self.feature_dim}{width}, num_classes={self.num_classes}, variant={self.config.variant!r}"
