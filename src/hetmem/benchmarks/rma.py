"""Benchmark of HMA's real-memory read: shared projection vs the paper-literal formulation.

The paper (Section 4.2) and its code repeat the queue B times, join each copy with its row,
and run a full attention block per row: B x (1 + M) rows go through LayerNorm and the key /
value projections. hetmem projects the M queue rows once and shares them. Both compute the
same function; :func:`paper_literal_rma` is the reference the tests compare against.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from hetmem.attention import MemoryAttentionBlock
from hetmem.benchmarks.isolate import PeakMemory, run_isolated, sync

__all__ = ["RMABenchConfig", "bench_rma", "paper_literal_rma"]


def paper_literal_rma(block: MemoryAttentionBlock, c1: Tensor, memory: Tensor, *, read_only: bool = False) -> Tensor:
    """RMA as the paper writes it: C2 = MHA(C1_i, [C1_i; M_buffer]) with the buffer repeated B times.

    Uses ``block``'s parameters, so its output must equal ``block(c1, memory, context="single")``
    (or ``block.attend(...)[0]`` with ``read_only``: the attention sublayer without the MLP).

    Shapes:
        c1: (B, D); memory: (M, D); returns (B, D).
    """
    if block.scores != "dot" or block.key_dim is not None or block.gamma_attn is not None:
        raise ValueError("paper_literal_rma: the block must use the paper's attention (dot scores, whole-row keys, no layer scale)")
    B, D = c1.shape
    H, hd = block.num_heads, block.head_dim
    kv_rows = torch.cat([c1.unsqueeze(1), memory.unsqueeze(0).repeat(B, 1, 1)], dim=1)  # (B, 1 + M, D)
    K = kv_rows.shape[1]
    q = block.q_proj(block.norm_q(c1)).view(B, H, 1, hd)  # (B, H, 1, hd)
    kv = block.kv_proj(block.norm_kv(kv_rows)).view(B, K, 2, H, hd)  # (B, 1 + M, 2, H, hd)
    k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, 1 + M, hd)
    out = F.scaled_dot_product_attention(q, k, v, scale=block.scale())  # (B, H, 1, hd)
    x = c1 + block.out_drop(block.out_proj(out.reshape(B, H * hd)))  # (B, D)
    return x if read_only else x + block.ff(block.norm_ff(x))


@dataclass
class RMABenchConfig:
    batch_size: int = 256  # B
    queue_size: int = 512  # M, all rows filled
    feature_dim: int = 512  # D1
    label_dim: int = 64  # D2
    num_heads: int = 4
    repeats: int = 3  # timed forward+backward passes of the literal formulation (median reported)
    fast_repeats: int = 20  # the same for the fast one, which is cheap enough to time more often
    seed: int = 0
    device: str = "cpu"


def _inputs(cfg: RMABenchConfig) -> tuple[MemoryAttentionBlock, Tensor, Tensor]:
    torch.manual_seed(cfg.seed)
    dim = cfg.feature_dim + cfg.label_dim
    block = MemoryAttentionBlock(dim, cfg.num_heads).to(cfg.device).eval()  # eval: no dropout, same function
    c1 = torch.randn(cfg.batch_size, dim, device=cfg.device, requires_grad=True)
    memory = torch.randn(cfg.queue_size, dim, device=cfg.device, requires_grad=True)  # label part trains
    return block, c1, memory


def _step(name: str, scope: str, block: MemoryAttentionBlock, c1: Tensor, memory: Tensor) -> Tensor:
    read_only = scope == "read"
    if name == "literal":
        out = paper_literal_rma(block, c1, memory, read_only=read_only)
    elif read_only:
        out = block.attend(c1, memory, context="single")[0]
    else:
        out = block(c1, memory, context="single")
    out.square().mean().backward()
    return out.detach()


def _measure(name: str, scope: str, cfg_dict: dict[str, Any]) -> tuple[float, float, Any, Any]:
    """Runs in a fresh process (see :func:`run_isolated`): the peak of one formulation only."""
    cfg = RMABenchConfig(**cfg_dict)
    block, c1, memory = _inputs(cfg)
    peak = PeakMemory(cfg.device)
    peak.start()
    out = _step(name, scope, block, c1, memory)  # first pass: the peak
    sync(cfg.device)
    peak_mb = peak.peak_mb()
    times = []
    for _ in range(cfg.repeats if name == "literal" else cfg.fast_repeats):
        block.zero_grad(set_to_none=True)
        c1.grad = memory.grad = None
        sync(cfg.device)
        start = time.perf_counter()
        _step(name, scope, block, c1, memory)
        sync(cfg.device)
        times.append(time.perf_counter() - start)
    grads = torch.cat([c1.grad.flatten(), memory.grad.flatten()]).cpu()
    return statistics.median(times), peak_mb, out.cpu().numpy(), grads.numpy()  # numpy: plain pickles


def bench_rma(cfg: RMABenchConfig | None = None) -> dict[str, Any]:
    """Times forward+backward of both RMA formulations, each in its own process.

    Two scopes are measured in the same run. ``read``: the attention sublayer (LayerNorm,
    projections, attention, output projection), the part the shared projection changes; its
    numbers are the unprefixed keys. ``block``: the whole block including the feed-forward MLP,
    which both formulations apply to the same B rows; its numbers have the ``block_`` prefix.

    Returns:
        ``literal_s`` and ``fast_s`` (median seconds per forward+backward), ``speedup``,
        ``max_abs_diff`` (outputs), ``max_abs_grad_diff`` (gradients of the inputs and the
        queue), ``literal_peak_mb`` and ``fast_peak_mb`` (peak memory above the inputs: RSS
        growth on CPU, allocated bytes on CUDA); the same with ``block_``; the configuration.
    """
    cfg = cfg or RMABenchConfig()
    report: dict[str, Any] = {"scope": "read: LayerNorm, projections, attention, output projection"}
    for scope, prefix in (("read", ""), ("block", "block_")):
        fast_s, fast_mb, fast_out, fast_g = run_isolated(_measure, "fast", scope, asdict(cfg))
        lit_s, lit_mb, lit_out, lit_g = run_isolated(_measure, "literal", scope, asdict(cfg))
        report.update(
            {
                f"{prefix}literal_s": lit_s,
                f"{prefix}fast_s": fast_s,
                f"{prefix}speedup": lit_s / fast_s,
                f"{prefix}max_abs_diff": float(abs(lit_out - fast_out).max()),
                f"{prefix}max_abs_grad_diff": float(abs(lit_g - fast_g).max()),
                f"{prefix}literal_peak_mb": lit_mb,
                f"{prefix}fast_peak_mb": fast_mb,
            }
        )
    report["torch_threads"] = torch.get_num_threads()
    report["config"] = asdict(cfg)
    return report
