"""Scale-out and memory of the sharded engine, through the API, with real worker processes.

    python -m bench.scale scale-out --pairs 2000          # 1 worker vs 2 on the same job
    python -m bench.scale memory --sizes 10000 100000     # worker peak RSS at two sizes
    python -m bench.scale epoch-ratio                      # scoring ÷ one epoch, hh-flip10 size

Needs Postgres and Redis: DATABASE_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/bench,
created if missing) and BROKER_URL (default redis://127.0.0.1:6379/11). Pairs are HH-RLHF test
pairs from ../shared/data (helpful-base then harmless-base), repeated with a " [copy k]" suffix
on the response to reach the size. Each run starts its own workers (one torch thread each),
samples their resident memory (worker process and its children) every 0.25 s, and reports what
it measured; results go to bench/results/scale/<name>.json and a line in scale.md.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from bench.lib.paths import RESULTS as RESULTS_ROOT
from bench.lib.stack import Session

RESULTS = RESULTS_ROOT / "scale"


def _save(name: str, result: dict, line: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    with (RESULTS / "scale.md").open("a") as handle:
        handle.write(line + "\n")
    print(line)


def scale_out(args: argparse.Namespace) -> None:
    session = Session()
    dataset_id = session.dataset(args.pairs)
    body = {"model": args.model, "shard_size": args.shard_size, "epochs": 1, "seed": 0}
    runs = []
    for k, count in enumerate((1, 2)):
        # A different seed per run: the same configuration would reuse the first run's artifacts.
        runs.append(session.audit(count, dataset_id, {**body, "seed": k}, args.timeout))
        print(f"  {count} worker(s): {runs[-1]['spans']}", flush=True)
    one, two = (r["spans"]["scoring_stages"] for r in runs)
    ratio = one / two
    result = {"pairs": args.pairs, "model": args.model, "runs": runs, "speedup": ratio}
    _save(
        f"scale-out-{args.model}-{args.pairs}",
        result,
        f"- scale-out, {args.model} LoRA, {args.pairs} pairs ({runs[0]['shards']} shards of "
        f"{args.shard_size}): scoring stages {one:.1f} s on 1 worker, {two:.1f} s on 2 → "
        f"**{ratio:.2f}×** (target ≥ 1.7×; one torch thread per worker, {time.strftime('%F')})",
    )


def memory(args: argparse.Namespace) -> None:
    session = Session()
    runs = []
    for n in args.sizes:
        dataset_id = session.dataset(n)
        body = {
            "model": args.model,
            "shard_size": args.shard_size,
            "epochs": 1,
            "max_length": args.max_length,
            "seed": 0,
        }
        run = session.audit(2, dataset_id, body, args.timeout)
        run["pairs"] = n
        scoring = run["spans"].get("scoring_stages", float("nan"))
        run["pairs_per_second_per_worker"] = run["n_train"] / scoring / 2
        runs.append(run)
        print(f"  {n} pairs: peak RSS {run['worker_peak_rss_mb']}, spans {run['spans']}")
    small, large = runs[0], runs[-1]
    growth = max(large["worker_peak_rss_mb"]) - max(small["worker_peak_rss_mb"])
    _save(
        f"memory-{args.model}",
        {"model": args.model, "runs": runs, "rss_growth_mb": growth},
        f"- memory, {args.model} LoRA, 2 workers, max_length {args.max_length}: worker peak RSS "
        + ", ".join(f"{max(r['worker_peak_rss_mb']):.0f} MB at {r['pairs']:,} pairs" for r in runs)
        + f" → growth **{growth:.0f} MB** (target < 1024); scoring "
        + ", ".join(
            f"{r['pairs_per_second_per_worker']:.0f} pairs/s/worker at {r['pairs']:,}" for r in runs
        )
        + f" ({time.strftime('%F')})",
    )


def epoch_ratio(args: argparse.Namespace) -> None:
    session = Session()
    dataset_id = session.dataset(args.pairs)
    body = {
        "model": args.model,
        "shard_size": args.shard_size,
        "epochs": 1,
        "seed": 0,
        "val_fraction": 0.1,
    }
    if args.projection_dim:
        body["projection_dim"] = args.projection_dim
    run = session.audit(1, dataset_id, body, args.timeout)
    epoch = run["epoch_seconds"][0]
    scoring = run["spans"]["scoring_stages"]
    _save(
        f"epoch-ratio-{args.model}-{args.pairs}",
        {**run, "ratio": scoring / epoch},
        f"- scoring ÷ one epoch, {args.model} LoRA, {run['n_train']} training pairs, 1 worker"
        f"{', projection ' + str(args.projection_dim) if args.projection_dim else ''}: "
        f"{scoring:.1f} s ÷ {epoch:.1f} s = **{scoring / epoch:.2f}** (target ≤ 0.9; "
        f"{time.strftime('%F')})",
    )


def audit(args: argparse.Namespace) -> None:
    """One audit through the API: time, stage spans and worker peak RSS (README figures)."""
    session = Session()
    dataset_id = session.dataset(args.pairs)
    body: dict[str, Any] = {
        "model": args.model,
        "mode": args.mode,
        "shard_size": args.shard_size,
        "epochs": args.epochs,
        "max_length": args.max_length,
        "seed": 0,
    }
    if args.projection_dim:
        body["projection_dim"] = args.projection_dim
    run = session.audit(args.workers, dataset_id, body, args.timeout, args.torch_threads)
    run["torch_threads"] = args.torch_threads
    from backend.db import session_scope
    from backend.models import Job

    with session_scope() as db:
        metrics = db.get(Job, run["job_id"]).metrics or {}
    run["gradient_space"] = metrics.get("gradient_space") or metrics.get("engine", "single task")
    run["val_accuracy"] = metrics.get("val_accuracy")
    what = f"{args.model} {args.mode}" + (
        f" (projection {args.projection_dim})" if args.projection_dim else ""
    )
    _save(
        f"audit-{args.model}-{args.mode}-{args.pairs}",
        {**run, "body": body},
        f"- {what} audit of {args.pairs:,} pairs through the API on {args.workers} worker(s) "
        f"of {args.torch_threads} torch thread(s), "
        f"{args.epochs} epoch(s), max_length {args.max_length}: **{run['wall_seconds'] / 60:.1f} "
        f"min**, worker peak RSS {max(run['worker_peak_rss_mb']):.0f} MB, gradient space "
        f"{run['gradient_space']}, spans "
        + ", ".join(f"{k} {v:.0f} s" for k, v in run["spans"].items())
        + f" ({time.strftime('%F')})",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    commands = (
        ("scale-out", scale_out),
        ("memory", memory),
        ("epoch-ratio", epoch_ratio),
        ("audit", audit),
    )
    for name, func in commands:
        command = sub.add_parser(name)
        command.set_defaults(func=func)
        command.add_argument("--model", default="tiny")
        command.add_argument("--shard-size", type=int, default=1024)
        command.add_argument("--max-length", type=int, default=128)
        command.add_argument("--timeout", type=float, default=6 * 3600)
        command.add_argument("--pairs", type=int, default=2000)
        command.add_argument("--projection-dim", type=int, default=0)
        command.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
        command.add_argument("--mode", default="lora")
        command.add_argument("--epochs", type=int, default=1)
        command.add_argument("--workers", type=int, default=2)
        command.add_argument("--torch-threads", type=int, default=1)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
