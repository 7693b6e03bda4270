"""What every sequence model here shares: the LM interface, cached generation and the loss by position.

A model implements ``forward_features(idx, cache=None) -> (B, T, d)``, ``forward_head(x) ->
logits`` and ``new_cache()``, and sets ``max_length`` (None when it has no positional limit).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hetmem.models.mosaics._checks import check_tokens

__all__ = ["SequenceLM", "generate", "loss_by_position"]


class SequenceLM(nn.Module):
    """Base class of :class:`MemoryMosaicLM` and :class:`GPTLM`: forward, loss, generation."""

    max_length: int | None = None

    def forward_features(self, idx: Tensor, cache: Any = None) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_head(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def new_cache(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, idx: Tensor, targets: Tensor | None = None, *, cache: Any = None, ignore_index: int = -1):
        """Logits of every position, and the mean cross-entropy when targets are given.

        Args:
            idx: (B, T) token ids.
            targets: optional (B, T) next-token ids; entries equal to ``ignore_index`` are skipped.
            cache: from ``new_cache()``: idx is then the next T tokens of a stream whose earlier
                tokens were fed before; the cache is updated in place and the logits are those a
                full forward pass over the whole stream gives at these positions.

        Returns:
            logits (B, T, V) if ``targets`` is None, else ``(logits, loss)``.
        """
        logits = self.forward_head(self.forward_features(idx, cache))
        if targets is None:
            return logits
        if targets.shape != idx.shape:
            raise ValueError(f"{type(self).__name__}: targets must have the shape of idx {tuple(idx.shape)}, got {tuple(targets.shape)}")
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=ignore_index)
        return logits, loss

    def num_parameters(self) -> int:
        """Number of parameters, a tied embedding counted once."""
        return sum(p.numel() for p in self.parameters())

    def optim_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """AdamW groups as in the official code: decay every tensor with >= 2 dims (matrices,
        embedding, memory slots), not the per-head scalars or the LayerNorm weights."""
        params = [p for p in self.parameters() if p.requires_grad]
        return [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]

    def generate(self, idx: Tensor, max_new_tokens: int, **kwargs: Any) -> Tensor:
        """See :func:`generate`."""
        return generate(self, idx, max_new_tokens, **kwargs)


def _sample(logits: Tensor, temperature: float, top_k: int | None, generator: torch.Generator | None) -> Tensor:
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)  # (B, 1)
    logits = logits / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)  # (B, 1)


@torch.no_grad()
def generate(
    model: SequenceLM,
    idx: Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    use_cache: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Continue each sequence by sampling ``max_new_tokens`` tokens, in eval mode.

    With ``use_cache`` (default) the prompt is fed once and every new token is one cached
    step (cost per token independent of the prefix length up to the O(T) attention read);
    ``use_cache=False`` recomputes the whole prefix per token (the reference, and what the
    official code does).

    Args:
        model: a :class:`SequenceLM`.
        idx: (B, T0) prompt token ids, T0 >= 1.
        max_new_tokens: tokens to add (>= 0).
        temperature: divides the logits; 0 means greedy (argmax).
        top_k: sample among the k most likely tokens only.
        use_cache: incremental decoding (True) or full recomputation (False).
        generator: torch random generator for reproducible sampling.

    Returns:
        (B, T0 + max_new_tokens) token ids, the prompt first.
    """
    owner = type(model).__name__
    check_tokens(owner, idx)
    if max_new_tokens < 0:
        raise ValueError(f"{owner}.generate: max_new_tokens must be >= 0, got {max_new_tokens}")
    if temperature < 0:
        raise ValueError(f"{owner}.generate: temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"{owner}.generate: top_k must be >= 1 or None, got {top_k}")
    needed = idx.shape[1] + max(max_new_tokens - 1, 0)  # the last sampled token is never fed back
    if model.max_length is not None and needed > model.max_length:
        raise ValueError(
            f"{owner}.generate: a prompt of {idx.shape[1]} tokens plus {max_new_tokens} new ones needs {needed} positions, "
            f"more than the model's block_size {model.max_length} (it has a learned positional table)"
        )
    was_training = model.training
    model.eval()
    try:
        out = [idx]
        if max_new_tokens == 0:
            return idx
        cache = model.new_cache() if use_cache else None
        features = model.forward_features(idx, cache)  # (B, T0, d)
        for step in range(max_new_tokens):
            logits = model.forward_head(features[:, -1])  # (B, V)
            out.append(_sample(logits, temperature, top_k, generator))
            if step + 1 < max_new_tokens:
                features = model.forward_features(out[-1], cache) if use_cache else model.forward_features(torch.cat(out, dim=1))
        return torch.cat(out, dim=1)
    finally:
        model.train(was_training)


@torch.no_grad()
def loss_by_position(model: SequenceLM, idx: Tensor, targets: Tensor, *, ignore_index: int = -1) -> Tensor:
    """Mean next-token cross-entropy at each position, over the batch, in eval mode.

    The curve of in-context learning and of length extrapolation: a Memory Mosaic (no
    positional table) accepts any T, so it can be scored beyond its training length; GPT
    raises ValueError past its ``block_size``.

    Args:
        model: a :class:`SequenceLM`.
        idx, targets: (B, T) inputs and next tokens; targets equal to ``ignore_index`` are skipped.

    Returns:
        (T,) float tensor; NaN at a position where every target is ignored.
    """
    check_tokens(type(model).__name__, idx)
    if targets.shape != idx.shape:
        raise ValueError(f"loss_by_position: targets must have the shape of idx {tuple(idx.shape)}, got {tuple(targets.shape)}")
    was_training = model.training
    model.eval()
    try:
        logits = model(idx)  # (B, T, V)
    finally:
        model.train(was_training)
    losses = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=ignore_index, reduction="none")  # (B, T)
    counts = (targets != ignore_index).sum(0)  # (T,)
    return losses.sum(0) / counts
