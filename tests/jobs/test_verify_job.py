"""Verify jobs through the API and a real worker: retrain on all / pruned / random pairs."""

from __future__ import annotations

import pytest

from tests.factories import hh_records, jsonl_bytes, wait_for_job

API = "/api/v1"


@pytest.fixture
def audited(client, make_user, celery_worker_process) -> dict:
    """A dataset of 80 HH pairs with a succeeded tiny audit."""
    headers = make_user()["headers"]
    dataset = client.post(
        f"{API}/datasets",
        headers=headers,
        files={"file": ("h80.jsonl", jsonl_bytes(hh_records(80)))},
        data={"name": "h80"},
    ).json()
    created = client.post(
        f"{API}/datasets/{dataset['id']}/jobs", headers=headers, json={"model": "tiny"}
    ).json()
    audit = wait_for_job(client, headers, created["id"], timeout=600)
    assert audit["status"] == "succeeded", audit["error"]
    return {"headers": headers, "dataset": dataset, "audit": audit}


def test_verify_by_top_fraction(client, audited) -> None:
    headers, dataset, audit = audited["headers"], audited["dataset"], audited["audit"]
    created = client.post(
        f"{API}/datasets/{dataset['id']}/jobs",
        headers=headers,
        json={"kind": "verify", "audit_job_id": audit["id"], "fraction": 0.1, "seeds": 2},
    )
    assert created.status_code == 202, created.text
    assert created.json()["kind"] == "verify"
    job = wait_for_job(client, headers, created.json()["id"], timeout=600)
    assert job["status"] == "succeeded", job["error"]
    metrics = job["metrics"]
    assert metrics["n_train"] == 72 and metrics["n_removed"] == 8 and metrics["n_eval"] == 8
    assert metrics["rule"] == "top 10% by harm" and metrics["seeds"] == [0, 1]
    assert sorted((r["seed"], r["arm"]) for r in metrics["runs"]) == sorted(
        (s, a) for s in (0, 1) for a in ("full", "pruned", "random")
    )
    n_train = {r["arm"]: r["n_train"] for r in metrics["runs"]}
    assert n_train == {"full": 72, "pruned": 64, "random": 64}
    for arm in ("full", "pruned", "random"):
        assert len(metrics["arms"][arm]["accuracy"]["values"]) == 2
    for name in ("pruned_minus_full", "pruned_minus_random"):
        diff = metrics["differences"][name]["accuracy"]
        assert diff["n"] == 2 and diff["ci_low"] <= diff["mean"] <= diff["ci_high"]
    assert "95%" in metrics["summary"]


def test_verify_by_flags_and_bad_requests(client, audited) -> None:
    headers, dataset, audit = audited["headers"], audited["dataset"], audited["audit"]
    pairs = client.get(
        f"{API}/datasets/{dataset['id']}/pairs",
        headers=headers,
        params={"job_id": audit["id"], "sort": "-harm", "limit": 5},
    ).json()["items"]
    for pair in pairs[:5]:
        client.put(
            f"{API}/datasets/{dataset['id']}/pairs/{pair['id']}/flag",
            headers=headers,
            json={"flagged": True},
        )
    url = f"{API}/datasets/{dataset['id']}/jobs"
    bad = [
        ({"kind": "verify", "audit_job_id": 10**9}, "not a job of dataset"),
        ({"kind": "verify", "audit_job_id": audit["id"], "method": "vibes"}, "unknown method"),
        ({"kind": "verify", "audit_job_id": audit["id"], "seeds": 0}, "seeds"),
        ({"kind": "verify", "audit_job_id": audit["id"], "test_dataset_id": 10**9}, "not found"),
    ]
    for body, fragment in bad:
        response = client.post(url, headers=headers, json=body)
        assert response.status_code == 422 and fragment in response.text, (body, response.text)
    created = client.post(
        url,
        headers=headers,
        json={"kind": "verify", "audit_job_id": audit["id"], "use_flags": True, "seeds": 1},
    ).json()
    job = wait_for_job(client, headers, created["id"], timeout=600)
    assert job["status"] == "succeeded", job["error"]
    assert (
        job["metrics"]["n_removed"] == 5 and job["metrics"]["rule"] == "the dataset's flagged pairs"
    )
    # One seed gives no interval, and the result says so rather than inventing one.
    assert job["metrics"]["differences"]["pruned_minus_full"]["accuracy"]["ci_low"] is None
