"""Property-based requests over the whole OpenAPI schema against the real app on Postgres: no
request, however malformed, gets a server error (schemathesis, bounded examples per operation).

A longer run: `python -m bench.fuzz` (200 examples per operation; bench/RESULTS.md and
bench/results/fuzz.json report one)."""

from __future__ import annotations

import os

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))


def _app():
    # conftest has pointed DATABASE_URL and BROKER_URL at the test services by now; the schema
    # itself needs no database, the requests use the migrated one (the `database` fixture).
    from backend.main import create_app

    return create_app()


schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", _app())


@pytest.fixture(scope="module")
def owner(database):
    """A user with a dataset, so ids in generated requests sometimes hit real rows."""
    from fastapi.testclient import TestClient

    from backend.db import session_scope
    from backend.main import create_app
    from backend.services.users import create_user, issue_token
    from tests.factories import jsonl_bytes

    with session_scope() as session:
        user = create_user(session, f"fuzz-{os.getpid()}", "fuzz-password")
        token = issue_token(session, user, "fuzz")
    headers = {"Authorization": f"Bearer {token}"}
    client = TestClient(create_app())
    rows = [{"prompt": f"q{i}", "chosen": "a", "rejected": "b"} for i in range(5)]
    response = client.post(
        "/api/v1/datasets", headers=headers, files={"file": ("f.jsonl", jsonl_bytes(rows))}
    )
    assert response.status_code == 201, response.text
    yield {"headers": headers, "dataset_id": response.json()["id"], "user_id": user.id}
    # Jobs the fuzzer created must not reach a worker of a later test: a finished job is skipped.
    from sqlalchemy import update

    from backend.models import Job

    with session_scope() as session:
        session.execute(
            update(Job)
            .where(Job.owner_id == user.id, Job.status.in_(("queued", "running")))
            .values(status="cancelled")
        )
        session.commit()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_request_is_a_server_error(case, owner) -> None:
    # Authenticated, so requests reach the routes' own validation, not only the token check;
    # half the generated dataset ids point at the caller's real dataset, so routes get past 404.
    headers = {**(case.headers or {}), **owner["headers"]}
    params = case.path_parameters or {}
    if isinstance(params.get("dataset_id"), int) and params["dataset_id"] % 2 == 0:
        params["dataset_id"] = owner["dataset_id"]
    response = case.call(headers=headers)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} → {response.status_code}: {response.text[:500]}"
    )
    content_type = response.headers.get("content-type") or [""]
    if isinstance(content_type, list):
        content_type = content_type[0]
    if response.status_code >= 400 and content_type.startswith("application/json"):
        assert "detail" in response.json(), response.text[:300]
