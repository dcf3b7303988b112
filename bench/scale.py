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
import gzip
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
HH = REPO.parent / "shared" / "data" / "hh-rlhf"
RESULTS = REPO / "bench" / "results" / "scale"


def _environment() -> dict[str, str]:
    env = {
        "DATABASE_URL": os.environ.get(
            "DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/bench"
        ),
        "BROKER_URL": os.environ.get("BROKER_URL", "redis://127.0.0.1:6379/11"),
        "PREFAUDIT_DATA_DIR": os.environ.get(
            "PREFAUDIT_DATA_DIR", tempfile.mkdtemp(prefix="prefaudit-bench-")
        ),
        "PREFAUDIT_ENV": "test",
        "PREFAUDIT_REAPER_INTERVAL_SECONDS": "0",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    os.environ.update(env)
    return env


def _create_database(url: str) -> None:
    from sqlalchemy import create_engine, text

    name = url.rsplit("/", 1)[1]
    admin = create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def hh_jsonl(n: int) -> bytes:
    from worker.influence.io import split_transcripts

    base: list[dict] = []
    for split in ("helpful-base", "harmless-base"):
        with gzip.open(HH / f"{split}-test.jsonl.gz", "rt", encoding="utf-8") as lines:
            for line in lines:
                record = json.loads(line)
                # The few pairs with an empty final response are refused by uploads.
                _, chosen, rejected = split_transcripts(record["chosen"], record["rejected"])
                if chosen.strip() and rejected.strip():
                    base.append(record)
    out = []
    for k in range(n):
        record = dict(base[k % len(base)])
        copy = k // len(base)
        if copy:
            record["chosen"] += f" [copy {copy}]"
            record["rejected"] += f" [copy {copy}]"
        out.append(json.dumps(record))
    return ("\n".join(out) + "\n").encode()


class Workers:
    """`count` worker processes; peak RSS of each (process tree) sampled in a thread."""

    def __init__(self, count: int, env: dict[str, str], threads: int = 1) -> None:
        import psutil

        self.processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "backend.cli",
                    "worker",
                    "--torch-threads",
                    str(threads),
                    "--loglevel",
                    "warning",
                ],
                cwd=REPO,
                env={**os.environ, **env},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(count)
        ]
        self.peak_mb = [0.0] * count
        self._psutil = psutil
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            for k, process in enumerate(self.processes):
                try:
                    root = self._psutil.Process(process.pid)
                    tree = [root, *root.children(recursive=True)]
                    # The task runs in the prefork child: its RSS is the worker's working set.
                    rss = max(p.memory_info().rss for p in tree) / 2**20
                except self._psutil.Error:
                    continue
                self.peak_mb[k] = max(self.peak_mb[k], rss)

    def wait_ready(self) -> None:
        from worker.celery_app import celery_app

        deadline = time.monotonic() + 180
        while len(celery_app.control.ping(timeout=1.0) or []) < len(self.processes):
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not start")

    def stop(self) -> None:
        self._stop.set()
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


def run_job(client: Any, headers: dict, dataset_id: int, body: dict, timeout: float) -> dict:
    created = client.post(f"/api/v1/datasets/{dataset_id}/jobs", headers=headers, json=body)
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    deadline = time.monotonic() + timeout
    last = -1.0
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}", headers=headers).json()
        if job["progress"] - last >= 0.05:
            last = job["progress"]
            print(f"  job {job_id}: {job['stage']} {job['progress']:.0%}", flush=True)
        if job["status"] in ("succeeded", "failed", "cancelled"):
            if job["status"] != "succeeded":
                raise RuntimeError(f"job {job_id} {job['status']}: {job['error']}")
            return job
        time.sleep(1.0)
    raise TimeoutError(f"job {job_id} did not finish in {timeout} s")


def stage_spans(job_id: int) -> dict[str, float]:
    """Wall seconds from the first start to the last finish of each stage, and of the scoring
    stages together (gradients, reduce, scores)."""
    from sqlalchemy import select

    from backend.db import session_scope
    from backend.models import JobTask

    with session_scope() as session:
        rows = session.execute(
            select(JobTask.stage, JobTask.started_at, JobTask.finished_at, JobTask.pairs).where(
                JobTask.job_id == job_id
            )
        ).all()
    spans: dict[str, float] = {}
    bounds: dict[str, list] = {}
    for stage, started, finished, _ in rows:
        if started is None or finished is None:
            continue
        low, high = bounds.get(stage, [started, finished])
        bounds[stage] = [min(low, started), max(high, finished)]
    for stage, (low, high) in bounds.items():
        spans[stage] = (high - low).total_seconds()
    scoring = [bounds[s] for s in ("gradients", "reduce", "scores") if s in bounds]
    if scoring:
        spans["scoring_stages"] = (
            max(b[1] for b in scoring) - min(b[0] for b in scoring)
        ).total_seconds()
    return spans


class Session:
    """Migrated database, a user, an API client."""

    def __init__(self) -> None:
        self.env = _environment()
        _create_database(self.env["DATABASE_URL"])
        subprocess.run(
            [sys.executable, "-m", "backend.cli", "migrate"],
            cwd=REPO,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        from fastapi.testclient import TestClient

        from backend.db import session_scope
        from backend.main import create_app
        from backend.services.users import create_user, issue_token

        with session_scope() as session:
            user = create_user(session, f"bench-{uuid.uuid4().hex[:8]}", "bench-password")
            token = issue_token(session, user, "bench")
        self.headers = {"Authorization": f"Bearer {token}"}
        self.client = TestClient(create_app())
        from worker.celery_app import celery_app

        celery_app.control.purge()

    def dataset(self, n: int) -> int:
        started = time.perf_counter()
        response = self.client.post(
            "/api/v1/datasets",
            headers=self.headers,
            files={"file": (f"hh-{n}.jsonl", hh_jsonl(n))},
            data={"name": f"hh-{n}"},
        )
        assert response.status_code == 201, response.text
        print(f"  uploaded {n} pairs in {time.perf_counter() - started:.0f} s", flush=True)
        return int(response.json()["id"])

    def audit(
        self, n_workers: int, dataset_id: int, body: dict, timeout: float, threads: int = 1
    ) -> dict:
        workers = Workers(n_workers, self.env, threads)
        try:
            workers.wait_ready()
            started = time.perf_counter()
            job = run_job(self.client, self.headers, dataset_id, body, timeout)
            wall = time.perf_counter() - started
        finally:
            workers.stop()
        return {
            "workers": n_workers,
            "job_id": job["id"],
            "wall_seconds": wall,
            "spans": stage_spans(job["id"]),
            "worker_peak_rss_mb": workers.peak_mb,
            "n_train": job["metrics"]["n_train"],
            "shards": job["metrics"].get("shards"),
            "epoch_seconds": job["metrics"].get("epoch_seconds"),
        }


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
