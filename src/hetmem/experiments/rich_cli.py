"""``python -m hetmem.experiments.rich_cli``: the rich-features grids without the ``hetmem`` command's
training extras (no Lightning or pydantic needed: torch, numpy and PyYAML suffice, e.g. on a bare GPU image).

    python -m hetmem.experiments.rich_cli --device cuda --store OUT/store.jsonl rich-e1 rich-e2 rich-e3
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from hetmem.experiments.rich import RICH_EXPERIMENTS

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Runs rich grids: ``[--device cuda] [--store FILE] [--work-dir DIR] [--tiny] [--seeds 0,1] NAME...``."""
    import argparse

    from hetmem.experiments.run import run_experiment

    p = argparse.ArgumentParser(prog="python -m hetmem.experiments.rich_cli", description=main.__doc__)
    p.add_argument("names", nargs="+", choices=sorted(RICH_EXPERIMENTS))
    p.add_argument("--device", default="auto")
    p.add_argument("--store", default=None)
    p.add_argument("--work-dir", default=None)
    p.add_argument("--tiny", action="store_true")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default: the experiment's)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    for name in args.names:
        start = time.perf_counter()
        run = run_experiment(name, seeds=seeds, store=args.store, work_dir=args.work_dir, tiny=args.tiny, device=args.device)
        print(f"{name}: {len(run.added)} runs added, {run.skipped} already in the store ({time.perf_counter() - start:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
