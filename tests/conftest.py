"""Test setup: real Postgres and Redis (fail under CI=true if absent), a migrated schema, and a
real Celery worker process for tests that run jobs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlparse

import pytest
from sqlalchemy import event

from tests.factories import DATA_DIR, HH_DIR, REPO_ROOT

# The judge's llama.cpp server and counting proxy (session fixtures shared by tests/judge and
# tests/jobs/test_evidence_flow.py: one server per session).
pytest_plugins = ["tests.judge.fixtures"]

TEST_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TEST_BROKER_URL = os.environ.get("TEST_BROKER_URL", "redis://127.0.0.1:6379/15")

# Settings are read once, on first use: point them at the test services before anything imports.
os.environ.update(
    DATABASE_URL=TEST_DATABASE_URL,
    BROKER_URL=TEST_BROKER_URL,
    PREFAUDIT_DATA_DIR=str(DATA_DIR),
    PREFAUDIT_ENV="test",
    HF_HUB_OFFLINE="1",
    TRANSFORMERS_OFFLINE="1",
    # Dead workers are noticed in seconds, not the production half minute. The API under test
    # runs no reaper of its own: tests/jobs/test_faults.py runs one where it is the subject.
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


@pytest.fixture
def statements():
    """The SQL the app runs while the test does (their text)."""
    from backend.db import get_engine

    seen: list[str] = []

    def grab(conn, cursor, statement, params, context, many) -> None:
        seen.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", grab)
    yield seen
    event.remove(engine, "before_cursor_execute", grab)
