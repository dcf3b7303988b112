"""The default preset on real data, through the API and a real worker: a MiniLM LoRA audit of 300
HH-RLHF pairs, then a 2-seed verify job on it. Minutes on a 2-core CPU; the README quotes the
times these tests print."""

from __future__ import annotations

import time

import pytest

from tests.factories import hh_records, jsonl_bytes, wait_for_job

API = "/api/v1"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm_audit(client, celery_worker_process) -> dict:
    from backend.db import session_scope
    from backend.services.users import create_user, issue_token

    with session_scope() as session:
        token = issue_token(session, create_user(session, "minilm-user", "long-password"), "t")
    headers = {"Authorization": f"Bearer {token}"}
    dataset = client.post(
        f"{API}/datasets",
        headers=headers,
        files={"file": ("helpful-300.jsonl", jsonl_bytes(hh_records(300)))},
        data={"name": "helpful-300"},
    ).json()
    started = time.monotonic()
    created = client.post(f"{API}/datasets/{dataset['id']}/jobs", headers=headers, json={})
    assert created.status_code == 202 and created.json()["config"]["model"] == "minilm"
    job = wait_for_job(client, headers, created.json()["id"], timeout=1800)
    return {
        "headers": headers,
        "dataset": dataset,
        "job": job,
        "seconds": time.monotonic() - started,
    }


def test_minilm_audit_of_300_real_pairs(client, minilm_audit) -> None:
    job, headers = minilm_audit["job"], minilm_audit["headers"]
    assert job["status"] == "succeeded", job["error"]
    metrics = job["metrics"]
    # 270 training pairs, 20 of them held aside for the job's canaries (scored: 250).
    assert metrics["n_train"] == 250 and metrics["n_val"] == 30
    assert metrics["default_choice"]["canaries"] == 20
    print(
        f"\nminilm audit of 300 pairs: {minilm_audit['seconds']:.0f} s wall; stages "
        f"{metrics['seconds']}; val accuracy {metrics['val_accuracy']:.3f}"
    )
    page = client.get(
        f"{API}/datasets/{minilm_audit['dataset']['id']}/pairs",
        headers=headers,
        params={"job_id": job["id"], "sort": "-harm", "limit": 5},
    ).json()
    assert page["total"] == 250
    assert all(p["scores"]["harm"] is not None for p in page["items"])


@pytest.mark.long  # six MiniLM retrains: about 15 minutes on a 2-core CPU
def test_minilm_verify_with_two_seeds(client, minilm_audit) -> None:
    headers, audit = minilm_audit["headers"], minilm_audit["job"]
    assert audit["status"] == "succeeded", audit["error"]
    started = time.monotonic()
    created = client.post(
        f"{API}/datasets/{minilm_audit['dataset']['id']}/jobs",
        headers=headers,
        json={"kind": "verify", "audit_job_id": audit["id"], "seeds": 2},
    )
    assert created.status_code == 202, created.text
    job = wait_for_job(client, headers, created.json()["id"], timeout=3000)
    assert job["status"] == "succeeded", job["error"]
    metrics = job["metrics"]
    assert {(r["seed"], r["arm"]) for r in metrics["runs"]} == {
        (s, a) for s in (0, 1) for a in ("full", "pruned", "random")
    }
    assert all(0 <= r["accuracy"] <= 1 for r in metrics["runs"])
    for name in ("pruned_minus_full", "pruned_minus_random"):
        assert metrics["differences"][name]["accuracy"]["ci_low"] is not None
    print(
        f"\nminilm verify, 2 seeds x 3 arms: {time.monotonic() - started:.0f} s wall; "
        f"{metrics['summary']}"
    )
