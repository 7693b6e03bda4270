"""The ``hetmem`` command line: a thin layer that parses arguments, calls library functions
and prints what they return. Errors are one line on stderr; exit codes: 2 bad input, 3 a run
that could not finish (diverged, a worker died), 130 interrupted (see :mod:`hetmem.errors`)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from hetmem import __version__
from hetmem.errors import HetmemError
from hetmem.extras import missing_extra, require_extras

__all__ = ["main"]

log = logging.getLogger("hetmem")


# ----- bench -----------------------------------------------------------------------------
def _positive(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive int, got {value}")


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        values = ()
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 256,1024, got {text!r}")
    return values


def _bench_mosaics(args: argparse.Namespace) -> int:
    from hetmem.benchmarks.mosaics import MosaicsBenchConfig, bench_mosaics

    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be a positive int, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    _positive(args, "num_heads", "repeats")
    given = {"num_heads": args.num_heads, "repeats": args.repeats}
    cfg = MosaicsBenchConfig(
        dim=args.dim, num_layers=args.num_layers, vocab_size=args.vocab_size,
        seq_lens=args.seq_lens, tokens=args.tokens, decode_positions=args.decode_positions,
        decode_tokens=args.decode_tokens, profile=args.profile, device=args.device,
        **{k: v for k, v in given.items() if v is not None},
    )
    result = bench_mosaics(cfg)
    if args.json:
        print(json.dumps(result))
        return 0
    params = result["params"]
    print(f"Memory Mosaic ({params['mosaic']:,} params) vs GPT ({params['gpt']:,} params): d={cfg.dim} H={cfg.num_heads} "
          f"L={cfg.num_layers} V={cfg.vocab_size}, {result['torch_threads']} torch thread(s), device {cfg.device}")
    print("training step (forward+backward, dropout 0), min / median of the repeats; peak memory of one step")
    for T, row in result["train"].items():
        mm, gpt = row["mosaic"], row["gpt"]
        print(f"  T={T:>5s} B={row['batch_size']:<3d} mosaic {mm['min_s'] * 1e3:7.1f} / {mm['median_s'] * 1e3:7.1f} ms  "
              f"gpt {gpt['min_s'] * 1e3:7.1f} / {gpt['median_s'] * 1e3:7.1f} ms  ratio {row['ratio']:.2f}  "
              f"peak MB {mm['peak_mb']:.0f} vs {gpt['peak_mb']:.0f}")
    print("generation, batch 1, tokens/s after a prompt of P tokens: cached (recomputing the prefix)")
    for P, row in result["decode"].items():
        print("  P={:>5s}  ".format(P) + "  ".join(
            f"{name} {row[name]['cached_tokens_per_s']:7.1f} ({row[name]['recompute_tokens_per_s']:6.1f})" for name in ("mosaic", "gpt")))
    flat = result["decode_flatness"]
    print(f"  cached tokens/s at the longest / shortest prompt: mosaic {flat['mosaic']:.2f}, gpt {flat['gpt']:.2f} (1.00 = flat)")
    for row in result.get("profile", []):
        print(f"  profile: {row['op'][:60]:60s} {row['self_ms']:8.1f} ms  {row['share'] * 100:5.1f}%  {row['calls']} calls")
    return 0


def _bench_rma(args: argparse.Namespace) -> int:
    from hetmem.benchmarks.rma import RMABenchConfig, bench_rma

    _positive(args, "batch_size", "queue_size", "feature_dim", "label_dim", "num_heads", "repeats")
    given = {k: getattr(args, k) for k in ("batch_size", "queue_size", "feature_dim", "label_dim", "num_heads", "repeats")}
    cfg = RMABenchConfig(**{k: v for k, v in given.items() if v is not None}, device=args.device)
    from hetmem.benchmarks.isolate import check_device

    check_device(cfg.device)
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


def _bench_latency(args: argparse.Namespace) -> int:
    from hetmem.benchmarks.latency import LatencyBenchConfig, bench_latency

    _positive(args, "queue_size", "feature_dim", "label_dim", "num_heads", "repeats", "threads")
    if args.batch_sizes is not None and (not args.batch_sizes or min(args.batch_sizes) <= 0):
        raise ValueError(f"--batch-sizes must be positive ints like 1,256, got {args.batch_sizes}")
    given = {"queue_size": args.queue_size, "feature_dim": args.feature_dim, "label_dim": args.label_dim,
             "num_heads": args.num_heads, "rounds": args.repeats, "threads": args.threads,
             "batch_sizes": tuple(args.batch_sizes) if args.batch_sizes else None}
    cfg = LatencyBenchConfig(**{k: v for k, v in given.items() if v is not None}, compile=not args.no_compile,
                             device=args.device, preset=args.preset)
    result = bench_latency(cfg)
    if args.json:
        print(json.dumps(result))
        return 0
    m = result["machine"]
    print(f"HMA eval latency ({cfg.preset} head), D={cfg.feature_dim}+{cfg.label_dim} queue={cfg.queue_size} slots={cfg.num_classes}x{cfg.slots_per_class} "
          f"H={cfg.num_heads}, {result['torch_threads']} thread(s), median of {cfg.rounds} interleaved rounds")
    print(f"  machine: matmul {m['matmul_gflops']:.0f} GFLOP/s, matrix-vector {m['matvec_gflops']:.1f} GFLOP/s "
          f"({m['matvec_gbps']:.1f} GB/s); head weights {result['head_weight_mb']:.1f} MB")
    for row in result["rows"]:
        print(f"  {row['scope']:5s} B={row['batch']:<4d} {row['path']:9s} {row['median_ms']:9.3f} ms (min {row['min_ms']:.3f})  "
              f"{row['flops'] / 1e6:8.1f} MFLOP  {row['gflops_per_s']:6.1f} GFLOP/s")
    comp = result["compile"]
    if comp["error"]:
        print(f"  torch.compile unavailable, compiled rows ran eager: {comp['error']}")
    print(f"  {result['goal']['line']}")
    return 0


def _bench_bonsai(args: argparse.Namespace) -> int:
    from hetmem.benchmarks.bonsai import BonsaiBenchConfig, bench_bonsai

    out = bench_bonsai(BonsaiBenchConfig(fraction=args.fraction, threads=args.threads if args.threads is not None else 1,
                                         device=args.device))
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"Bonsai on colored-mnist scale irm ({out['rows']} rows, {out['hidden_dim']} wide, {out['threads']} thread(s), "
          f"{out['device']}): steps {out['steps_run']} of {out['full_steps']} took {out['train_s']:.1f} s (data {out['load_s']:.1f} s); "
          f"the full pipeline, extrapolated: {out['full_pipeline_s_extrapolated'] / 60:.1f} min per seed")
    return 0


BENCHES: dict[str, Callable[[argparse.Namespace], int]] = {"rma": _bench_rma, "latency": _bench_latency, "mosaics": _bench_mosaics,
                                                           "bonsai": _bench_bonsai}


def _bench(args: argparse.Namespace) -> int:
    return BENCHES[args.name](args)


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks (not tests): time hetmem's fast paths against their references")
    p.add_argument("name", choices=list(BENCHES), help="rma: shared-projection RMA read vs the paper-literal formulation; "
                   "latency: eval latency with memory keys/values cached vs recomputed, batch 1 and 256; "
                   "mosaics: Memory Mosaic LM vs the same-size GPT (training step, cached generation, memory); "
                   "bonsai: one Bonsai pipeline (discovery + synthesis) on colored-mnist scale irm, time per seed")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--batch-size", type=int, help="rma: rows per batch (default 256)")
    p.add_argument("--queue-size", type=int, help="queue rows, all filled (default 512)")
    p.add_argument("--feature-dim", type=int, help="backbone feature width (default: rma 512, latency 390)")
    p.add_argument("--label-dim", type=int, help="label-embedding width (default 64)")
    p.add_argument("--num-heads", type=int, help="attention heads (default 4)")
    p.add_argument("--repeats", type=int, help="rma: timed passes (default 3); latency: interleaved rounds (default 7)")
    p.add_argument("--batch-sizes", type=_seeds, help="latency: comma-separated batch sizes (default 1,256)")
    p.add_argument("--threads", type=int, help="latency, mosaics: torch threads for the run (default: torch's setting)")
    p.add_argument("--no-compile", action="store_true", help="latency: skip the torch.compile path")
    p.add_argument("--fraction", type=float, default=0.1, help="bonsai: the share of RFC's steps run (the rest extrapolated)")
    p.add_argument("--preset", choices=["paper", "default"], default="paper",
                   help="latency: the HMA head timed: the paper's full-width head (default) or hetmem's 128-wide default")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--dim", type=int, default=128, help="(mosaics) model width d")
    p.add_argument("--num-layers", type=int, default=4, help="(mosaics)")
    p.add_argument("--vocab-size", type=int, default=256, help="(mosaics)")
    p.add_argument("--seq-lens", type=_int_list, default=(256, 1024), help="(mosaics) training-step lengths, e.g. 256,1024")
    p.add_argument("--tokens", type=int, default=4096, help="(mosaics) tokens per training batch (B = tokens / T)")
    p.add_argument("--decode-positions", type=_int_list, default=(64, 256, 1024), help="(mosaics) prompt lengths for generation")
    p.add_argument("--decode-tokens", type=int, default=16, help="(mosaics) timed tokens per prompt length")
    p.add_argument("--profile", action="store_true", help="(mosaics) list the operators that dominate a Memory Mosaic step")
    p.set_defaults(func=_bench)


# ----- train / evaluate / demo ------------------------------------------------------------
def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 0 like 0,1,2, got {text!r}") from None
    if any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"seeds must be >= 0, got {text!r}")
    return seeds


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE like task=digits, got {text!r}")
    return key.strip(), value.strip()


def _saved_config(args: argparse.Namespace) -> list[dict]:
    """With ``--resume --out RUN``, the run's own config.yaml is the first layer, so the run
    continues with no other flag; any flag given must agree with it."""
    from hetmem.train.config import load_yaml

    saved = Path(args.out) / "config.yaml" if (args.resume and args.out) else None
    return [load_yaml(saved)] if saved is not None and saved.is_file() else []


def _interrupted(command: str, out: Path) -> KeyboardInterrupt:
    return KeyboardInterrupt(
        f"the checkpoints saved so far are kept in {out}; continue with: hetmem {command} --out {shlex.quote(str(out))} --resume"
    )


def _train_layers(args: argparse.Namespace) -> list[dict]:
    from hetmem.train.config import load_yaml, parse_overrides

    flags = {
        "task": args.task,
        "backbone": args.backbone,
        "variant": args.variant,
        "seeds": args.seeds,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "per_class": args.per_class,
        "devices": args.devices,
        "data_root": args.data_root,
        "init_from": args.init_from,
        "freeze_backbone": True if args.freeze_backbone else None,
    }
    layers = _saved_config(args) + ([load_yaml(args.config)] if args.config else [])
    layers.append({k: v for k, v in flags.items() if v is not None})
    layers.append(parse_overrides(args.set or []))
    return layers


def _train(args: argparse.Namespace) -> int:
    from hetmem.train.config import resolve_config
    from hetmem.train.runner import default_out_dir, train
    from hetmem.train.table import summary_table

    cfg = resolve_config(*_train_layers(args))
    out = Path(args.out) if args.out else default_out_dir(cfg)
    try:
        run = train(cfg, out, overwrite=args.overwrite, resume=args.resume)
    except KeyboardInterrupt:
        raise _interrupted("train", out) from None
    print(summary_table([run]))
    print(f"run directory: {run.out_dir}")
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a backbone (+ HMA variant) on a task, or a sequence model on a sequence task, one run per seed")
    p.add_argument("--task", help="a registered task, e.g. colored-mnist, digits, molecules, three-moons, regbench, shakespeare")
    p.add_argument("--backbone", help="a registered backbone: mlp, cnn, resnet18, vit, gcn, gin; for sequence tasks "
                   "mosaic, gpt or moon (default: the task's)")
    p.add_argument("--variant", help="none, param, rma, abd, abd+rma, abd+syn, hma (default hma)")
    p.add_argument("--seeds", type=_seeds, help="comma-separated seeds, e.g. 0,1,2")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--per-class", type=int, help="keep N training samples per class (data scarcity)")
    p.add_argument("--devices", type=int, help="processes (CPU, gloo) or GPUs; >1 trains with torch.distributed")
    p.add_argument("--data-root", help="directory of download-only data sets (default $HETMEM_DATA or ./data)")
    p.add_argument("--init-from", help="start the backbone from a hetmem pretrain (or train) checkpoint or run directory")
    p.add_argument("--freeze-backbone", action="store_true", help="keep the backbone fixed (probe its features)")
    p.add_argument("--config", help="YAML file of config fields; flags and --set override it")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="any config field, e.g. optim.lr=0.01 or hma.queue_size=256")
    p.add_argument("--out", help="run directory (default runs/TASK/BACKBONE-VARIANT)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--overwrite", action="store_true",
                       help="replace the hetmem run in --out (the old run is deleted once the new one finishes)")
    group.add_argument("--resume", action="store_true", help="continue the interrupted run in --out (its config.yaml is the base)")
    p.set_defaults(func=_train, extras=("train",))


def _mean_over_seeds(per_seed: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {split: {m: statistics.fmean(r[split][m] for r in per_seed) for m in metrics} for split, metrics in per_seed[0].items()}


def _evaluate(args: argparse.Namespace) -> int:
    """Scores one checkpoint, or every seed of a run directory (then also their mean)."""
    from hetmem.train.checkpoint import find_checkpoints

    if args.knn:
        from hetmem.train.frozen import evaluate_frozen

        paths = find_checkpoints(args.checkpoint, ("best.ckpt", "last.ckpt"))
        score = lambda p: evaluate_frozen(p, k=args.k, temperature=args.temperature, probe=args.linear_probe, data_root=args.data_root)  # noqa: E731
    else:
        from hetmem.train.runner import evaluate

        paths = find_checkpoints(args.checkpoint)
        score = lambda p: evaluate(p, eval_context=args.eval_context, eval_batch_size=args.eval_batch_size, data_root=args.data_root)  # noqa: E731
    results = {}
    for path in paths:
        log.info("scoring %s", path)
        results[path.parent.parent.name if len(paths) > 1 else str(path)] = score(path)
    if len(paths) > 1:
        results["mean"] = _mean_over_seeds(list(results.values()))
    if args.json:  # one checkpoint: split -> metrics; several: seed-<s> (and "mean") -> split -> metrics
        print(json.dumps(results if len(paths) > 1 else next(iter(results.values()))))
        return 0
    for name, splits in results.items():
        print(f"{name}:" if len(paths) > 1 else f"checkpoint {name}:")
        for split, metrics in splits.items():
            print(f"  {split:10s} " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    return 0


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="re-score a saved model on its task's validation and test splits")
    p.add_argument("--checkpoint", required=True,
                   help="a .ckpt from hetmem train, or a run directory (scores each seed's best.ckpt, and their mean)")
    p.add_argument("--eval-context", choices=["batch", "single"], help="SMA at test time: over the batch, or per sample")
    p.add_argument("--eval-batch-size", type=int)
    p.add_argument("--knn", action="store_true", help="weighted k-NN on the backbone's frozen features (any checkpoint)")
    p.add_argument("--k", type=int, default=20, help="neighbours for --knn")
    p.add_argument("--temperature", type=float, default=0.07, help="similarity temperature for --knn")
    p.add_argument("--linear-probe", action="store_true", help="with --knn, also fit a linear probe")
    p.add_argument("--data-root")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_evaluate, extras=("train",))


def _predict(args: argparse.Namespace) -> int:
    from hetmem.inference import load_trained, read_inputs, write_predictions

    out = Path(args.out) if args.out else Path(args.input).with_suffix(".predictions.csv")
    if out.exists() and not args.overwrite:  # checked first: no model is loaded for nothing
        raise ValueError(f"output {str(out)!r} already exists; pass --overwrite to replace it")
    inputs = read_inputs(args.input)
    trained = load_trained(args.checkpoint, eval_context=args.eval_context, batch_size=args.batch_size,
                           device=args.device, data_root=args.data_root)
    if trained.input_spec.kind == "graph":
        raise ValueError("hetmem predict reads tensor inputs; a graph model takes torch_geometric Data: "
                         "use hetmem.load_trained(...).predict(list_of_data) in Python")
    predictions = trained.predict(inputs)
    write_predictions(out, predictions, overwrite=args.overwrite)
    columns = "row, prediction, prob_0..prob_" + str(trained.num_classes - 1) if out.suffix == ".csv" else "predictions, probabilities, logits"
    print(f"model: {trained.describe()}")
    print(f"wrote {len(predictions.labels)} predictions to {out} ({out.suffix[1:]}: {columns})")
    return 0


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict classes and probabilities for the rows of a file with a trained model")
    p.add_argument("--checkpoint", required=True, help="a .ckpt from hetmem train, or a run directory (uses best.ckpt)")
    p.add_argument("--input", required=True, help="rows to predict: .npy or .pt (N, *input shape) or (N, features), "
                   ".csv (one flattened row per line, optional header); values as the task's loader gives them")
    p.add_argument("--out", help="predictions file: .csv (row, prediction, prob_0..) or .npz (predictions, probabilities, "
                   "logits); default INPUT.predictions.csv beside the input")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--eval-context", choices=["batch", "single"], help="SMA at test time: over the batch, or per sample")
    p.add_argument("--batch-size", type=int, help="rows per evaluation batch (default: the run's)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--data-root", help="only for checkpoints older than hetmem predict: where the task's data lives")
    p.set_defaults(func=_predict, extras=("train",))


def _generate(args: argparse.Namespace) -> int:
    from hetmem.train.generate import generate_text

    text = generate_text(args.checkpoint, args.prompt, max_new_tokens=args.tokens, temperature=args.temperature,
                         top_k=args.top_k, seed=args.seed)
    print(args.prompt + text)
    return 0


def _add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="continue a prompt with a language model from hetmem train (shakespeare, regbench)")
    p.add_argument("--checkpoint", required=True, help="a .ckpt from hetmem train, or a run directory (uses best.ckpt)")
    p.add_argument("--prompt", required=True, help="the text to continue")
    p.add_argument("--tokens", type=int, default=200, help="characters to generate")
    p.add_argument("--temperature", type=float, default=1.0, help="0 for greedy decoding")
    p.add_argument("--top-k", type=int, help="sample among the k most likely characters")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_generate, extras=("train",))


def _pretrain(args: argparse.Namespace) -> int:
    from hetmem.train.pretrain import default_pretrain_out_dir, pretrain, resolve_pretrain_config
    from hetmem.train.config import load_yaml, parse_overrides

    flags = {"method": args.method, "task": args.task, "backbone": args.backbone, "seeds": args.seeds, "epochs": args.epochs,
             "batch_size": args.batch_size, "devices": args.devices, "data_root": args.data_root}
    layers = _saved_config(args) + ([load_yaml(args.config)] if args.config else [])
    layers += [{k: v for k, v in flags.items() if v is not None}, parse_overrides(args.set or [])]
    cfg = resolve_pretrain_config(*layers)
    out = Path(args.out) if args.out else default_pretrain_out_dir(cfg)
    try:
        result = pretrain(cfg, out, overwrite=args.overwrite, resume=args.resume)
    except KeyboardInterrupt:
        raise _interrupted("pretrain", out) from None
    print(f"{'split':8s} {'':12s} " + "  ".join(f"{m:>22s}" for m in ("knn_accuracy", "linear_probe_accuracy")))
    for which in ("initial", "pretrained"):
        for split, metrics in result["mean_over_seeds"][which].items():
            print(f"{split:8s} {which:12s} " + "  ".join(f"{metrics[m]:22.4f}" for m in ("knn_accuracy", "linear_probe_accuracy")))
    print(f"run directory: {result['out_dir']} (fine-tune with hetmem train --init-from {result['out_dir']})")
    return 0


def _add_pretrain(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="self-supervised pretraining of a backbone (MaSSL), scored by k-NN and a linear probe")
    p.add_argument("--method", choices=["massl"], default="massl")
    p.add_argument("--task", help="an image task, e.g. mnist or digits (labels are not used)")
    p.add_argument("--backbone", help="cnn or vit (any image backbone)")
    p.add_argument("--seeds", type=_seeds)
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--devices", type=int)
    p.add_argument("--data-root")
    p.add_argument("--config", help="YAML file of config fields")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="e.g. massl.block_sampling=contiguous or massl.memory_size=8192")
    p.add_argument("--out", help="run directory (default runs/pretrain/TASK-BACKBONE-METHOD)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--overwrite", action="store_true", help="replace the hetmem run in --out")
    group.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    p.set_defaults(func=_pretrain, extras=("train",))


def _demo(args: argparse.Namespace) -> int:
    from hetmem.train.config import resolve_config
    from hetmem.train.defaults import DEMO_CONFIGS
    from hetmem.train.rundir import check_replaceable
    from hetmem.train.runner import train
    from hetmem.train.table import summary_table

    configs = [resolve_config(layer, {"epochs": args.epochs} if args.epochs else {}) for layer in DEMO_CONFIGS]
    for cfg in configs:  # only earlier demo runs are replaced, and nothing is trained unless all can be
        check_replaceable(Path(args.out) / cfg.variant)
    runs = []
    for cfg in configs:
        log.info("demo: %s / %s / %s, seeds %s, %d epochs", cfg.task, cfg.backbone, cfg.variant, cfg.seeds, cfg.epochs)
        runs.append(train(cfg, Path(args.out) / cfg.variant, overwrite=True))
    print()
    print("Colored MNIST (IRM protocol, 5,000 real digits), MLP backbone: baseline vs HMA")
    print(summary_table(runs))
    print(f"runs in {args.out}/ (numbers above come from these runs)")
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="Colored MNIST with the MLP backbone, baseline vs HMA (what make demo runs)")
    p.add_argument("--out", default="runs/demo",
                   help="where the demo's runs go: OUT/none and OUT/hma, replaced on every demo (anything else there is refused)")
    p.add_argument("--epochs", type=int, help="override the task's default epochs")
    p.set_defaults(func=_demo, extras=("train",))


# ----- experiment / report ------------------------------------------------------------------
def _experiment(args: argparse.Namespace) -> int:
    from hetmem.experiments import EXPERIMENTS, pending_runs, run_experiment

    if args.list or not args.names:
        for exp in EXPERIMENTS.values():
            print(f"{exp.name:15s} {exp.title}\n{'':15s} scale: {exp.scale}")
        return 0
    if args.plan:
        for name in args.names:
            todo, skipped = pending_runs(name, seeds=args.seeds, store=args.store, tiny=args.tiny,
                                         where=dict(args.where or []))
            for run in todo:
                print(f"{name}: {run.params} seed {run.seed}")
            print(f"{name}: {len(todo)} runs to do, {skipped} already in the store")
        return 0
    for name in args.names:
        run = run_experiment(name, seeds=args.seeds, store=args.store, work_dir=args.work_dir, tiny=args.tiny,
                             where=dict(args.where or []), device=args.device)
        print(f"{name}: {len(run.added)} runs added, {run.skipped} already in the store")
    return 0


def _add_experiment(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="run named experiment grids into the results store (resumable)")
    p.add_argument("names", nargs="*", help="experiment names (see --list)")
    p.add_argument("--list", action="store_true", help="list the experiments and their CPU scale")
    p.add_argument("--seeds", type=_seeds, help="override the experiment's seeds")
    p.add_argument("--store", help="results file (default results/store.jsonl)")
    p.add_argument("--work-dir", help="run directories (default results/runs)")
    p.add_argument("--tiny", action="store_true", help="two cells, one epoch: checks the pipeline, not a result")
    p.add_argument("--plan", action="store_true", help="list the runs the store lacks, run nothing")
    p.add_argument("--where", type=_key_value, action="append", metavar="KEY=VALUE",
                   help="run only the cells with this parameter value, e.g. task=digits (repeatable)")
    p.add_argument("--device", default=None, help="where the rich-* grids train: cpu, cuda (default: CUDA when there is one)")
    p.set_defaults(func=_experiment, extras=("train",))


def _report(args: argparse.Namespace) -> int:
    from hetmem.experiments import DEFAULT_STORE, build_report

    from hetmem.experiments.report import written_by_report

    store = Path(args.store or DEFAULT_STORE)
    if not store.is_file():
        raise ValueError(f"results store {str(store)!r} does not exist; run hetmem experiment NAME first")
    out = Path(args.out)
    if out.is_dir() or (out.exists() and not args.overwrite and not written_by_report(out)):
        raise ValueError(f"--out {str(out)!r} exists and was not written by hetmem report; pass --overwrite to replace it, "
                         "or choose another --out")
    build_report(store, out, args.figures, include_tiny=args.include_tiny)
    print(f"wrote {args.out} and figures in {args.figures}/")
    return 0


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="render RESULTS.md and docs/figures from the results store")
    p.add_argument("--store", help="results file (default results/store.jsonl)")
    p.add_argument("--out", default="RESULTS.md",
                   help="markdown file; an earlier report there is replaced, any other file only with --overwrite")
    p.add_argument("--overwrite", action="store_true", help="replace --out even if hetmem report did not write it")
    p.add_argument("--figures", default="docs/figures")
    p.add_argument("--include-tiny", action="store_true", help="include --tiny rows (tests only)")
    p.set_defaults(func=_report)


# ----- entry point -----------------------------------------------------------------------
COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_train,
    _add_evaluate,
    _add_predict,
    _add_generate,
    _add_pretrain,
    _add_demo,
    _add_experiment,
    _add_report,
    _add_bench,
]


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors in one line (exit 2), like every other hetmem error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hetmem", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def _one_line(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:  # "[Errno 30] Read-only file system: 'x'" -> the path first
        return f"{err.filename!r}: {err.strerror}" if err.filename else err.strerror
    return " ".join(str(err).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``hetmem ARGV``; returns the exit code (0 ok, 2 bad input, 3 run failed, 130 Ctrl-C).

    User-caused errors (HetmemError, ValueError, OSError such as a read-only or missing path)
    are one line on stderr; anything else is a bug and keeps its traceback. ``HETMEM_DEBUG=1``
    shows the traceback of every error.
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    try:
        require_extras(getattr(args, "extras", ()), f"hetmem {args.command}")
        try:
            return args.func(args)
        except ModuleNotFoundError as err:  # an optional dependency a task or figure imports late
            raise missing_extra(err, f"hetmem {args.command}") or err
    except KeyboardInterrupt as err:
        print(f"\nhetmem: interrupted{'; ' + str(err) if str(err) else ''}", file=sys.stderr)
        return 130
    except (HetmemError, ValueError, OSError) as err:
        if os.environ.get("HETMEM_DEBUG"):
            raise
        print(f"hetmem: error: {_one_line(err)}", file=sys.stderr)
        return getattr(err, "exit_code", 2)


if __name__ == "__main__":
    sys.exit(main())
