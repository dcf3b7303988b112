"""The whole path against real Postgres, Redis and a real Celery worker process:
upload 200 HH-RLHF pairs, audit with the tiny preset, read scores, flag the top 10%, export."""

from __future__ import annotations

import json

import numpy as np

from tests.factories import hh_records, jsonl_bytes, wait_for_job

API = "/api/v1"


def test_upload_audit_flag_export(client, make_user, celery_worker_process) -> None:
    headers = make_user()["headers"]
    records = hh_records(200)
    dataset = client.post(
        f"{API}/datasets",
        headers=headers,
        files={"file": ("helpful-200.jsonl", jsonl_bytes(records))},
        data={"name": "helpful-200"},
    ).json()
    assert dataset["n_pairs"] == 200

    created = client.post(
        f"{API}/datasets/{dataset['id']}/jobs", headers=headers, json={"model": "tiny"}
    )
    assert created.status_code == 202, created.text
    job = wait_for_job(client, headers, created.json()["id"], timeout=600)
    assert job["status"] == "succeeded", job["error"]
    assert job["progress"] == 1.0 and job["stage"] == "done"
    assert any(0 < p < 1 for p in job["_seen_progress"]), "no intermediate progress was seen"
    assert job["metrics"]["n_train"] == 180 and job["metrics"]["n_val"] == 20

    page = client.get(
        f"{API}/datasets/{dataset['id']}/pairs",
        headers=headers,
        params={"job_id": job["id"], "sort": "-harm", "limit": 1000},
    ).json()
    assert page["total"] == 180 and len(page["items"]) == 180
    harm = [p["scores"]["harm"] for p in page["items"]]
    assert all(h is not None and np.isfinite(h) for h in harm)
    assert harm == sorted(harm, reverse=True)
    for item in page["items"]:
        scores = item["scores"]
        assert scores["loss"] is not None and scores["harm_gradient_similarity"] is not None
        assert scores["harm_influence"] == -scores["removal_effect_influence"]

    histogram = client.get(
        f"{API}/jobs/{job['id']}/histogram", headers=headers, params={"bins": 12}
    ).json()
    assert histogram["n"] == 180 and sum(histogram["counts"]) == 180
    assert len(histogram["edges"]) == 13
    assert histogram["edges"][0] == min(harm) and histogram["edges"][-1] == max(harm)

    flagged = client.post(
        f"{API}/datasets/{dataset['id']}/flags",
        headers=headers,
        json={"job_id": job["id"], "top_fraction": 0.1},
    )
    assert flagged.json() == {"flagged": 18, "unflagged": 0, "protected": 0}
    top_ids = {p["id"] for p in page["items"][:18]}
    now_flagged = client.get(
        f"{API}/datasets/{dataset['id']}/pairs",
        headers=headers,
        params={"job_id": job["id"], "flagged": True, "limit": 1000},
    ).json()
    assert {p["id"] for p in now_flagged["items"]} == top_ids

    export = client.get(
        f"{API}/datasets/{dataset['id']}/export",
        headers=headers,
        params={"format": "jsonl", "exclude_flagged": True},
    )
    assert export.status_code == 200
    exported = [json.loads(line) for line in export.text.splitlines()]
    all_pairs = client.get(
        f"{API}/datasets/{dataset['id']}/pairs", headers=headers, params={"limit": 1000}
    ).json()["items"]
    flagged_indices = {p["index"] for p in all_pairs if p["id"] in top_ids}
    expected = [r for i, r in enumerate(records) if i not in flagged_indices]
    assert len(exported) == 182
    # Byte-for-byte the same text as uploaded.
    assert [(r["chosen"], r["rejected"]) for r in exported] == [
        (r["chosen"], r["rejected"]) for r in expected
    ]
    assert all(
        e["chosen"].encode() == x["chosen"].encode()
        for e, x in zip(exported, expected, strict=True)
    )


def test_failure_is_recorded_readably(client, make_user, celery_worker_process) -> None:
    headers = make_user()["headers"]
    dataset = client.post(
        f"{API}/datasets",
        headers=headers,
        files={"file": ("few.jsonl", jsonl_bytes(hh_records(10)))},
        data={"name": "few"},
    ).json()
    # A hub id passes validation (it may exist online) but cannot be fetched here: no internet.
    created = client.post(
        f"{API}/datasets/{dataset['id']}/jobs",
        headers=headers,
        json={"model": "prefaudit-test/no-such-model", "val_fraction": 0.3},
    ).json()
    job = wait_for_job(client, headers, created["id"], timeout=300)
    assert job["status"] == "failed"
    assert "no-such-model" in job["error"] and "loading_model" in job["error"]


def test_bring_your_own_reward_model_saved_by_an_audit(
    client, make_user, celery_worker_process
) -> None:
    """An audit saves its reward model; a second audit scores with it as it is (no training)."""
    from pathlib import Path

    headers = make_user()["headers"]
    dataset = client.post(
        f"{API}/datasets",
        headers=headers,
        files={"file": ("byo.jsonl", jsonl_bytes(hh_records(60)))},
        data={"name": "byo"},
    ).json()
    first = client.post(
        f"{API}/datasets/{dataset['id']}/jobs",
        headers=headers,
        json={"model": "tiny", "save_model": True, "methods": ["loss"], "default_method": "loss"},
    )
    assert first.status_code == 202, first.text
    trained = wait_for_job(client, headers, first.json()["id"], timeout=600)
    assert trained["status"] == "succeeded", trained["error"]
    model_dir = trained["metrics"]["model_dir"]
    assert (Path(model_dir) / "config.json").exists()

    second = client.post(
        f"{API}/datasets/{dataset['id']}/jobs",
        headers=headers,
        json={
            "model": model_dir,
            "mode": "pretrained",
            "methods": ["loss", "influence", "length"],
            "default_method": "loss",
        },
    )
    assert second.status_code == 202, second.text
    scored = wait_for_job(client, headers, second.json()["id"], timeout=600)
    assert scored["status"] == "succeeded", scored["error"]
    assert scored["metrics"]["history"][0]["pretrained"] is True
    assert {"trust", "mislabelled"} <= set(scored["metrics"])

    def margins(job_id: int) -> list[float]:
        page = client.get(
            f"{API}/datasets/{dataset['id']}/pairs",
            headers=headers,
            params={"job_id": job_id, "sort": "index", "limit": 1000},
        ).json()
        return [p["scores"]["margin"] for p in page["items"]]

    # Same validation split (same seed), same model: the same margins, pair by pair.
    np.testing.assert_allclose(margins(scored["id"]), margins(trained["id"]), atol=1e-4)
    bad = client.post(
        f"{API}/datasets/{dataset['id']}/jobs",
        headers=headers,
        json={"model": model_dir, "mode": "pretrained", "save_model": True},
    )
    assert bad.status_code == 422 and "save_model" in bad.text
    # The saved model lives with its dataset and goes when the dataset is deleted.
    assert client.delete(f"{API}/datasets/{dataset['id']}", headers=headers).status_code == 204
    assert not Path(model_dir).exists()
