"""The default preset on real data: a MiniLM LoRA audit of 300 HH-RLHF pairs through the worker.

Takes a few minutes on a 2-core CPU; the README quotes the time this test prints."""

from __future__ import annotations

import time

import pytest

from tests.conftest import hh_records, jsonl_bytes, wait_for_job

API = "/api/v1"


@pytest.mark.slow
def test_minilm_audit_of_300_real_pairs(client, make_user, celery_worker_process) -> None:
    headers = make_user()["headers"]
    dataset = client.post(
        f"{API}/datasets",
        headers=headers,
        files={"file": ("helpful-300.jsonl", jsonl_bytes(hh_records(300)))},
        data={"name": "helpful-300"},
    ).json()
    started = time.monotonic()
    created = client.post(f"{API}/datasets/{dataset['id']}/jobs", headers=headers, json={})
    assert created.status_code == 202 and created.json()["config"]["model"] == "minilm"
    job = wait_for_job(client, headers, created.json()["id"], timeout=1500)
    elapsed = time.monotonic() - started
    assert job["status"] == "succeeded", job["error"]
    metrics = job["metrics"]
    assert metrics["n_train"] == 270 and metrics["n_val"] == 30
    print(
        f"\nminilm audit of 300 pairs: {elapsed:.0f} s wall; metrics: "
        f"{ {k: v for k, v in metrics.items() if k != 'traceback'} }"
    )
    page = client.get(
        f"{API}/datasets/{dataset['id']}/pairs",
        headers=headers,
        params={"job_id": job["id"], "sort": "-harm", "limit": 5},
    ).json()
    assert page["total"] == 270
    assert all(p["scores"]["harm"] is not None for p in page["items"])
