"""The benchmarks' stack: Postgres databases, worker processes, an API client or server, jobs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import create_engine, select, text

from bench.lib.hh import hh_jsonl
from bench.lib.paths import REPO

# backend and worker modules are imported inside the functions below: the Celery app and the
# settings read DATABASE_URL and BROKER_URL when first imported, after environment() sets them.


def environment() -> dict[str, str]:
    """The benchmark stack's settings (DATABASE_URL, BROKER_URL, a data folder), set in os.environ
    and returned for the worker processes."""
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


def create_database(url: str) -> None:
    """Creates the database of `url` if it is missing."""
    name = url.rsplit("/", 1)[1]
    admin = create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def reset_database(url: str) -> None:
    """An empty database at `url` (created if missing, its public schema dropped)."""
    create_database(url)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def api_server(env: dict[str, str]) -> Iterator[tuple[str, psutil.Process]]:
    """`prefaudit serve` on a free port, with os.environ and `env`: its API base URL and process
    (once it answers /health); terminated on leaving."""
    port = free_port()
    binary = Path(sys.executable).with_name("prefaudit")
    server = subprocess.Popen(
        [str(binary), "serve", "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{base}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        yield base, psutil.Process(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)


class Workers:
    """`count` worker processes; peak RSS of each (process tree) sampled in a thread."""

    def __init__(self, count: int, env: dict[str, str], threads: int = 1) -> None:
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
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            for k, process in enumerate(self.processes):
                try:
                    root = psutil.Process(process.pid)
                    tree = [root, *root.children(recursive=True)]
                    # The task runs in the prefork child: its RSS is the worker's working set.
                    rss = max(p.memory_info().rss for p in tree) / 2**20
                except psutil.Error:
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
    """Starts a job through the API and polls it until it ends; its final state."""
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
        self.env = environment()
        create_database(self.env["DATABASE_URL"])
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

    def upload(self, name: str, body: bytes) -> int:
        """Uploads `body` as `<name>.jsonl` named `name`; the new dataset's id."""
        response = self.client.post(
            "/api/v1/datasets",
            headers=self.headers,
            files={"file": (f"{name}.jsonl", body)},
            data={"name": name},
        )
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def dataset(self, n: int) -> int:
        """Uploads `n` HH-RLHF pairs (hh_jsonl) as `hh-<n>`."""
        started = time.perf_counter()
        dataset_id = self.upload(f"hh-{n}", hh_jsonl(n))
        print(f"  uploaded {n} pairs in {time.perf_counter() - started:.0f} s", flush=True)
        return dataset_id

    def audit(
        self, n_workers: int, dataset_id: int, body: dict, timeout: float, threads: int = 1
    ) -> dict:
        """One job on `n_workers` fresh workers: wall time, stage spans, the workers' peak RSS."""
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
