"""Test setup: real Postgres and Redis (fail under CI=true if absent), a migrated schema, and a
real Celery worker process for tests that run jobs."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
HH_DIR = REPO_ROOT.parent / "shared" / "data" / "hh-rlhf"
TEST_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TEST_BROKER_URL = os.environ.get("TEST_BROKER_URL", "redis://127.0.0.1:6379/15")
DATA_DIR = Path(tempfile.mkdtemp(prefix="prefaudit-test-"))

# Settings are read once, on first use: point them at the test services before anything imports.
os.environ.update(
    DATABASE_URL=TEST_DATABASE_URL,
    BROKER_URL=TEST_BROKER_URL,
    PREFAUDIT_DATA_DIR=str(DATA_DIR),
    PREFAUDIT_ENV="test",
    HF_HUB_OFFLINE="1",
    TRANSFORMERS_OFFLINE="1",
    # Dead workers are noticed in seconds, not the production half minute. The API under test
    # runs no reaper of its own: tests/test_faults.py runs one where it is the subject.
    PREFAUDIT_HEARTBEAT_SECONDS="1",
    PREFAUDIT_STALE_SECONDS="6",
    PREFAUDIT_REAPER_INTERVAL_SECONDS="0",
)


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url.replace("+psycopg", ""))
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 2
        ):
            return True
    except OSError:
        return False


SERVICES_UP = _reachable(TEST_DATABASE_URL, 5432) and _reachable(TEST_BROKER_URL, 6379)


def pytest_configure(config: pytest.Config) -> None:
    if not SERVICES_UP and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        raise pytest.UsageError(
            f"CI=true but Postgres ({TEST_DATABASE_URL}) or Redis ({TEST_BROKER_URL}) is not "
            "reachable: the tests need the real services"
        )
    if not HH_DIR.is_dir():
        raise pytest.UsageError(f"{HH_DIR} is missing: clone the project with ../shared beside it")


def hh_records(n: int, split: str = "helpful-base") -> list[dict]:
    """The first n HH-RLHF test pairs of `split` that an upload accepts, in file order (a few
    have an empty final response, which uploads refuse; tests/api covers those)."""
    from backend.ingest.parsing import split_transcripts

    records = []
    with gzip.open(HH_DIR / f"{split}-test.jsonl.gz", "rt", encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            _, chosen, rejected = split_transcripts(record["chosen"], record["rejected"])
            if not (chosen.strip() and rejected.strip()):
                continue
            records.append(record)
            if len(records) == n:
                break
    return records


def jsonl_bytes(records: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    """A freshly migrated test database (dropped and rebuilt once per session)."""
    if not SERVICES_UP:
        pytest.skip("Postgres/Redis not reachable (set CI=true to make this an error)")
    from sqlalchemy import text

    from backend.db import alembic_config, get_engine

    engine = get_engine()
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    from alembic import command

    command.upgrade(alembic_config(), "head")
    yield TEST_DATABASE_URL


@pytest.fixture(scope="session")
def client(database: str) -> Iterator:
    from fastapi.testclient import TestClient

    from backend.main import create_app

    with TestClient(create_app()) as test_client:
        yield test_client


@pytest.fixture
def make_user(database: str) -> Callable[..., dict[str, str]]:
    """Create a user with a token; returns its username, password and auth headers."""
    from backend.db import session_scope
    from backend.services.users import create_user, issue_token

    def make(username: str | None = None, password: str = "correct-horse") -> dict:
        username = username or f"user-{uuid.uuid4().hex[:8]}"
        with session_scope() as session:
            user = create_user(session, username, password)
            token = issue_token(session, user, "test")
        return {
            "username": username,
            "password": password,
            "headers": {"Authorization": f"Bearer {token}"},
        }

    return make


@pytest.fixture
def auth(make_user: Callable[..., dict]) -> dict[str, str]:
    return make_user()["headers"]


@pytest.fixture(scope="session")
def celery_worker_process(database: str) -> Iterator[subprocess.Popen]:
    """A real `prefaudit worker` process on the test broker, started once per session."""
    from worker.celery_app import celery_app

    celery_app.control.purge()
    log_path = DATA_DIR / "worker.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "worker", "--loglevel=info"],
        cwd=REPO_ROOT,
        env=os.environ.copy(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while not celery_app.control.ping(timeout=1.0):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the worker did not start; its log:\n{log_path.read_text()}")
    yield process
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


def wait_for_job(client, headers: dict, job_id: int, timeout: float = 600) -> dict:
    """Poll GET /jobs/{id} until it finishes; return the final job."""
    deadline = time.monotonic() + timeout
    seen_progress = []
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}", headers=headers).json()
        seen_progress.append(job["progress"])
        if job["status"] in ("succeeded", "failed", "cancelled"):
            job["_seen_progress"] = seen_progress
            return job
        time.sleep(0.5)
    raise TimeoutError(f"job {job_id} did not finish in {timeout} s; last: {job}")
