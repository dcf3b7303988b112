"""POST /datasets/{id}/jobs validation (refused before the worker), GET /jobs, cancel."""

from __future__ import annotations

import pytest

from tests.factories import hh_records, jsonl_bytes

API = "/api/v1"


@pytest.fixture
def dataset(client, auth) -> dict:
    response = client.post(
        f"{API}/datasets",
        headers=auth,
        files={"file": ("d.jsonl", jsonl_bytes(hh_records(12)))},
        data={"name": "d"},
    )
    return response.json()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"model": "tiny", "methods": ["loss", "vibes"]}, "'loss', 'gradient_similarity'"),
        ({"model": "tiny", "mode": "fast"}, "'lora', 'head' or 'pretrained'"),
        ({"model": "tiny", "damping": 0}, "damping"),
        ({"model": "tiny", "damping": -1.0}, "damping"),
        ({"model": "/no/such/model/dir"}, "no such directory"),
        ({"model": "tiny", "val_fraction": 0.01}, "validation set would be empty"),
        ({"model": "tiny", "val_dataset_id": 999999}, "validation dataset 999999 not found"),
        # Accepted with a 202 before, then failed (or ran for minutes) in the worker:
        ({"model": "tiny", "seed": -1}, "seed must be between 0"),
        ({"model": "tiny", "max_length": 1}, "max_length must be between 8"),
        ({"model": "tiny", "max_length": 100_000}, "max_length must be between 8"),
        ({"model": "/etc"}, "holds no config.json"),
        ({"model": "tiny", "learning_rate": 1e308}, "learning_rate must be between"),
        ({"model": "tiny", "lora_r": 4096}, "lora_r must be between 1 and 1024"),
        ({"model": "tiny", "target_modules": ["nope"]}, "not modules of a bert model"),
        ({"model": "minilm", "max_length": 4096}, "exceeds the 512 positions"),
        ({"model": "tiny", "projection_dim": 10**6}, "projection_dim must be between"),
    ],
)
def test_bad_configuration_fails_at_creation(client, auth, dataset, body, fragment) -> None:
    from sqlalchemy import func, select

    from backend.db import session_scope
    from backend.models import Job

    with session_scope() as session:
        before = session.scalar(select(func.count()).select_from(Job))
    response = client.post(f"{API}/datasets/{dataset['id']}/jobs", headers=auth, json=body)
    assert response.status_code == 422, response.text
    assert fragment in str(response.json()["detail"]), response.json()
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == before


def test_a_bad_choice_names_the_field_and_the_allowed_values(client, auth, dataset) -> None:
    response = client.post(
        f"{API}/datasets/{dataset['id']}/jobs",
        headers=auth,
        json={"model": "tiny", "methods": ["loss", "vibes"]},
    )
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["loc"][-2:] == ["methods", 1] and problem["input"] == "vibes"
    assert "'loss'" in problem["msg"] and "'ensemble'" in problem["msg"]


def test_unknown_option_is_refused(client, auth, dataset) -> None:
    response = client.post(
        f"{API}/datasets/{dataset['id']}/jobs", headers=auth, json={"model": "tiny", "epoch": 3}
    )
    assert response.status_code == 422 and "epoch" in response.text


def test_job_is_queued_with_defaults_and_can_be_cancelled(client, auth, dataset) -> None:
    # No worker consumes this queue in this test: the job stays queued until cancelled.
    response = client.post(f"{API}/datasets/{dataset['id']}/jobs", headers=auth, json={})
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "queued" and job["kind"] == "audit"
    assert job["config"]["model"] == "minilm" and job["config"]["val_fraction"] == 0.1
    listed = client.get(f"{API}/datasets/{dataset['id']}/jobs", headers=auth).json()
    assert [j["id"] for j in listed["items"]] == [job["id"]]
    cancelled = client.post(f"{API}/jobs/{job['id']}/cancel", headers=auth).json()
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]
    # A cancelled job never runs: the task, if delivered, sees its status and does nothing.
    from worker.jobs.single import run_job

    assert run_job(job["id"]) == "cancelled"


def test_sorting_by_score_needs_a_job(client, auth, dataset) -> None:
    response = client.get(f"{API}/datasets/{dataset['id']}/pairs?sort=-harm", headers=auth)
    assert response.status_code == 422 and "job_id" in response.json()["detail"]


def test_another_users_job_is_not_found(client, make_user, auth, dataset) -> None:
    job = client.post(f"{API}/datasets/{dataset['id']}/jobs", headers=auth, json={}).json()
    other = make_user()["headers"]
    assert client.get(f"{API}/jobs/{job['id']}", headers=other).status_code == 404
    client.post(f"{API}/jobs/{job['id']}/cancel", headers=auth)
