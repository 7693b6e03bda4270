"""The contextual memory layer: H associative memories that start empty for every sequence.

Relation to hetmem's other memories: like HMA's real memory (a FeatureQueue read by
:func:`hetmem.attention.memory_attention`) its rows are written at run time, but here the
rows are the (key, value) pairs of the *same* sequence, read strictly causally, with the
query equal to the key (no W_q), L2-normalised keys scaled by a learned bandwidth and no
1 / sqrt(h). None of that fits ``memory_attention`` (which adds the row's own key and scales
by 1 / sqrt(h)), so the read is :func:`~hetmem.models.mosaics.read.past_attention`.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn

from hetmem.models.mosaics.cache import ContextCache
from hetmem.models.mosaics._checks import check_heads
from hetmem.models.mosaics.extractors import KeyExtractor, ValueExtractor
from hetmem.models.mosaics.read import past_attention

__all__ = ["ContextMemory"]


class ContextMemory(nn.Module):
    """Contextual memory units (thesis Eq. 3.12, the official ``InContextAssoMemBlock``).

    .. math::
        y_t = \\sum_{s < t} \\mathrm{softmax}_s(k_t \\cdot k_s)\\, v_s, \\qquad
        z_t = W_z\\, \\mathrm{concat}_h(y_t^{(h)})

    with leaky-average keys k (:class:`KeyExtractor`, which also serve as queries) and
    one-step look-ahead values v (:class:`ValueExtractor`). v_s contains x_{s+1} and query t
    reads s <= t - 1, so y_t depends on x_0..x_t only; y_0 = 0.

    Args:
        dim: model width d.
        num_heads: memory units H.
        attn_dropout: dropout on the attention probabilities (``ic_dropout``, 0.05); applied
            only when > 0 and training, so eval stays on the fused SDPA path.
        resid_dropout: dropout after ``c_proj`` (``hd_dropout``, 0.05).
        value_kind: ``"mix"`` (official) or ``"conv2"`` (:class:`ValueExtractor`).
        bias: bias in the linear maps.
        **key_options: ``max_log_scale``, ``leaky_mode``, ``leaky_chunk`` of the :class:`KeyExtractor`.

    Shapes:
        x: (B, T, d) -> (B, T, d). With a :class:`ContextCache`, x is the next T positions of a
        stream whose earlier positions the cache holds; the cache is updated in place.

    Example:
        >>> mem = ContextMemory(8, 2, attn_dropout=0.0, resid_dropout=0.0)
        >>> mem(torch.randn(3, 5, 8)).shape
        torch.Size([3, 5, 8])
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        attn_dropout: float = 0.05,
        resid_dropout: float = 0.05,
        value_kind: Literal["mix", "conv2"] = "mix",
        bias: bool = False,
        **key_options: Any,
    ) -> None:
        super().__init__()
        check_heads("ContextMemory", dim, num_heads)
        self.attn_dropout = attn_dropout
        self.key = KeyExtractor(dim, num_heads, scale_power=1, bias=bias, **key_options)
        self.value = ValueExtractor(dim, num_heads, kind=value_kind, bias=bias)
        self.c_proj = nn.Linear(dim, dim, bias=bias)  # W_z, the combining layer
        self.resid_drop = nn.Dropout(resid_dropout)

    def forward(self, x: Tensor, cache: ContextCache | None = None) -> Tensor:
        B, T, C = x.shape
        if T == 0:
            raise ValueError("ContextMemory: the sequence is empty (T = 0)")
        keys, leaky = self.key(x, None if cache is None else cache.leaky)  # (B, H, T, h), (B, H, h)
        now, ahead = self.value.parts(x)  # (B, H, T, h) each: v_t = finish(now_t, ahead_{t+1})
        values = self.value.finish(now[:, :, :-1], ahead[:, :, 1:])  # (B, H, T-1, h): positions whose next input is here
        if cache is not None and cache.pending is not None:
            values = torch.cat([self.value.finish(cache.pending, ahead[:, :, :1]), values], dim=2)  # completes v_{n-1}
        if cache is None:
            past_keys, past_values = keys[:, :, :-1], values
        else:
            cache.keys.append(keys)
            cache.values.append(values)
            cache.leaky, cache.pending = leaky, now[:, :, -1:]
            past_keys, past_values = cache.keys.view()[:, :, :-1], cache.values.view()
        dropout_p = self.attn_dropout if self.training else 0.0
        y = past_attention(keys, past_keys, past_values, scale=1.0, dropout_p=dropout_p)  # (B, H, T, h)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, d)
        return self.resid_drop(self.c_proj(y))
