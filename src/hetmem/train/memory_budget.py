"""How much memory HMA's stores will take, estimated before anything is allocated.

``hma.slots_per_class=10000000`` on a 10-class task asks for 156 GB of slots; allocating first
fails deep inside torch (or worse, succeeds and swaps). The runner estimates the attention blocks,
the queue and the slots (with gradients and Adam state) and the attention over them, and refuses a
run that cannot fit, naming the setting to lower.
"""

from __future__ import annotations

import math
import os
from typing import Any

from hetmem.errors import ConfigError

__all__ = ["estimate_hma_bytes", "available_bytes", "check_hma_memory"]

_F32 = 4


def estimate_hma_bytes(feature_dim: int, config: Any, batch_size: int) -> dict[str, int]:
    """Bytes of HMA's memories in one training step, by part (a lower bound: the rest of the
    model and the backbone's activations come on top).

    Args:
        feature_dim: the backbone's feature width D1.
        config: an ``HMAConfig``.
        batch_size: rows per step B.

    Returns:
        ``{"attention blocks": ..., "queue": ..., "slots": ...}`` for the parts the variant has.

    Example:
        >>> from hetmem.models.hma import HMAConfig
        >>> parts = estimate_hma_bytes(128, HMAConfig(num_classes=10, slots_per_class=8), 64)
        >>> sorted(parts), parts["slots"] > 10 * 8 * 128 * 4
        (['attention blocks', 'queue', 'slots'], True)
    """
    parts = config.components
    if parts is None:
        return {}
    # width and ff_mult: a bottleneck before the blocks and the MLP expansion, where the config has them
    dim = (getattr(config, "width", None) or feature_dim) + config.label_dim
    inner = config.num_heads * (config.head_dim or math.ceil(dim / config.num_heads))
    per_row_read = (2 * dim + 2 * inner) * _F32 * 2  # rows with labels, LayerNorm, keys and values, and their gradients
    block_params = 4 * dim * inner + 2 * getattr(config, "ff_mult", 4) * dim * dim  # q, kv, out projections; the MLP
    out: dict[str, int] = {"attention blocks": 2 * block_params * _F32 * 4}  # with gradients and Adam state
    if parts.queue:
        m = config.queue_size
        width = feature_dim if config.queue_labels == "read" else dim
        out["queue"] = m * (width * _F32 + 8) + m * per_row_read + batch_size * config.num_heads * (1 + m) * _F32 * 2
    if parts.slots:
        s = config.num_classes * config.slots_per_class
        out["slots"] = s * feature_dim * _F32 * 4 + s * per_row_read + batch_size * config.num_heads * (batch_size + s) * _F32 * 2
    return out


def available_bytes(accelerator: str = "auto") -> tuple[int, str]:
    """Free memory where the model will live: the first GPU's, or the machine's available RAM."""
    import torch

    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return int(torch.cuda.mem_get_info()[0]), "GPU"
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024, "RAM"
    except (OSError, KeyError, ValueError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"), "RAM"


# what to lower when a part is too big
_KNOBS = {"attention blocks": "hma.label_dim or hma.head_dim", "queue": "hma.queue_size", "slots": "hma.slots_per_class"}


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def check_hma_memory(feature_dim: int, config: Any, batch_size: int, accelerator: str = "auto") -> None:
    """Raises ConfigError when HMA's head and memories alone would not fit in the free memory."""
    parts = estimate_hma_bytes(feature_dim, config, batch_size)
    total = sum(parts.values())
    free, where = available_bytes(accelerator)
    if total > free:
        detail = ", ".join(f"{name} {_gb(n)}" for name, n in parts.items())
        largest = max(parts, key=parts.get)
        raise ConfigError(
            f"HMA's head and memories would need about {_gb(total)} ({detail}; queue_size={config.queue_size}, "
            f"slots_per_class={config.slots_per_class}, {config.num_classes} classes, feature width {feature_dim}) "
            f"but {_gb(free)} of {where} is free; lower {_KNOBS[largest]}"
        )
