"""The ``hetmem`` command line: a thin layer that parses arguments, calls library functions
and prints what they return. Input errors are one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence

from hetmem.errors import HetmemError

__all__ = ["main"]

log = logging.getLogger("hetmem")


# ----- bench -----------------------------------------------------------------------------
def _bench(args: argparse.Namespace) -> int:
    from hetmem.benchmarks.rma import RMABenchConfig, bench_rma

    cfg = RMABenchConfig(
        batch_size=args.batch_size,
        queue_size=args.queue_size,
        feature_dim=args.feature_dim,
        label_dim=args.label_dim,
        num_heads=args.num_heads,
        repeats=args.repeats,
        device=args.device,
    )
    for name in ("batch_size", "queue_size", "feature_dim", "label_dim", "num_heads", "repeats"):
        if getattr(cfg, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive int, got {getattr(cfg, name)}")
    result = bench_rma(cfg)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"RMA read, forward+backward, B={cfg.batch_size} M={cfg.queue_size} D={cfg.feature_dim}+{cfg.label_dim} H={cfg.num_heads}")
        for prefix, what in (("", "read (attention sublayer)"), ("block_", "whole block (+ MLP)")):
            print(
                f"  {what:28s} literal {result[prefix + 'literal_s']:.3f}s  fast {result[prefix + 'fast_s']:.4f}s  "
                f"speedup {result[prefix + 'speedup']:.1f}x  max|diff| {result[prefix + 'max_abs_diff']:.1e}  "
                f"peak MB {result[prefix + 'literal_peak_mb']:.0f} vs {result[prefix + 'fast_peak_mb']:.0f}"
            )
    return 0


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks (not tests): time hetmem's fast paths against their references")
    p.add_argument("name", choices=["rma"], help="rma: shared-projection RMA read vs the paper-literal formulation")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--queue-size", type=int, default=512)
    p.add_argument("--feature-dim", type=int, default=512)
    p.add_argument("--label-dim", type=int, default=64)
    p.add_argument("--num-heads", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.set_defaults(func=_bench)


# ----- entry point -----------------------------------------------------------------------
COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_bench]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hetmem", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    try:
        return args.func(args)
    except (HetmemError, ValueError) as err:
        if os.environ.get("HETMEM_DEBUG"):
            raise
        print(f"hetmem: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
