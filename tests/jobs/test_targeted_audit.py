"""A targeted audit end to end with a real worker: compose a target from reviewed pairs, audit
against it, read the pairs that push against it; two rule targets give opposed rankings."""

from __future__ import annotations

import numpy as np

from tests.factories import hh_records, jsonl_bytes, upload, wait_for_job

API = "/api/v1"
METHODS = ["loss", "gradient_similarity", "influence", "length"]


def _audit(client, headers, dataset_id: int, target_id: int | None) -> dict:
    body = {"model": "tiny", "mode": "head", "methods": METHODS, "default_method": "influence"}
    if target_id is not None:
        body["target_set_id"] = target_id
    created = client.post(f"{API}/datasets/{dataset_id}/jobs", headers=headers, json=body)
    assert created.status_code == 202, created.text
    job = wait_for_job(client, headers, created.json()["id"], timeout=600)
    assert job["status"] == "succeeded", job["error"]
    return job


def _ranked(client, headers, dataset_id: int, job_id: int, sort: str) -> list[dict]:
    page = client.get(
        f"{API}/datasets/{dataset_id}/pairs",
        headers=headers,
        params={"job_id": job_id, "sort": sort, "limit": 1000},
    ).json()
    return page["items"]


def test_targeted_audit_from_reviewed_pairs(client, make_user, celery_worker_process) -> None:
    headers = make_user()["headers"]
    dataset = upload(client, headers, jsonl_bytes(hh_records(200)), "hh-200.jsonl").json()
    pairs = client.get(
        f"{API}/datasets/{dataset['id']}/pairs", headers=headers, params={"limit": 1000}
    ).json()["items"]
    kept, swapped = pairs[:20], pairs[20:30]
    for pair, state in [(p, "kept") for p in kept] + [(p, "swapped") for p in swapped]:
        response = client.put(
            f"{API}/datasets/{dataset['id']}/pairs/{pair['id']}/review",
            headers=headers,
            json={"state": state, "note": None},
        )
        assert response.status_code == 200
    target = client.post(
        f"{API}/datasets/{dataset['id']}/target-sets",
        headers=headers,
        json={"name": "reviewed", "source": {"kind": "reviewed"}},
    ).json()
    assert target["n_pairs"] == 30

    plain = _audit(client, headers, dataset["id"], None)
    job = _audit(client, headers, dataset["id"], target["id"])
    summary = job["metrics"]["target"]
    assert summary["target_set_id"] == target["id"] and summary["name"] == "reviewed"
    assert summary["n_pairs"] == 30 and summary["source"] == "reviewed"
    assert set(summary["methods"]) == {"influence", "gradient_similarity"}
    assert "loss" in summary["training_loss_methods"]
    assert plain["metrics"].get("target") is None
    # The validation figures are the split's in both: the target never replaces them.
    assert job["metrics"]["val_accuracy"] == plain["metrics"]["val_accuracy"]

    pushing = _ranked(client, headers, dataset["id"], job["id"], "-harm_influence")
    harm = [p["scores"]["harm_influence"] for p in pushing]
    assert harm == sorted(harm, reverse=True) and len(pushing) == 180
    by_id = {p["id"]: p["scores"] for p in pushing}
    # A swapped pair is in training the other way round from its target copy: it pushes
    # against the target; a kept one trains towards it.
    swapped_harm = [by_id[p["id"]]["harm_influence"] for p in swapped if p["id"] in by_id]
    kept_harm = [by_id[p["id"]]["harm_influence"] for p in kept if p["id"] in by_id]
    assert len(swapped_harm) >= 5 and len(kept_harm) >= 10
    assert np.mean(swapped_harm) > np.mean(kept_harm)
    assert np.median(swapped_harm) > 0 > np.median(kept_harm)
    # The loss family does not read the target.
    plain_scores = {
        p["id"]: p["scores"] for p in _ranked(client, headers, dataset["id"], plain["id"], "index")
    }
    for pair_id, scores in by_id.items():
        assert scores["loss"] == plain_scores[pair_id]["loss"]
        assert scores["harm_length"] == plain_scores[pair_id]["harm_length"]


def test_opposite_rule_targets_give_opposite_rankings(
    client, make_user, celery_worker_process
) -> None:
    headers = make_user()["headers"]
    records = hh_records(200, split="harmless-base")
    dataset = upload(client, headers, jsonl_bytes(records), "hh-200.jsonl").json()
    jobs = {}
    for rule in ("shorter_preferred", "longer_preferred"):
        target = client.post(
            f"{API}/datasets/{dataset['id']}/target-sets",
            headers=headers,
            json={"source": {"kind": "rule", "rule": rule, "limit": 60}},
        ).json()
        assert target["n_pairs"] == 60, target
        jobs[rule] = _audit(client, headers, dataset["id"], target["id"])
    short, long = jobs["shorter_preferred"]["id"], jobs["longer_preferred"]["id"]
    compared = client.get(
        f"{API}/datasets/{dataset['id']}/target-comparison",
        headers=headers,
        params={"job_a": short, "job_b": long, "column": "harm_influence", "k": 20},
    )
    assert compared.status_code == 200, compared.text
    body = compared.json()
    assert body["spearman"] < -0.3, body["spearman"]
    assert body["overlap"] < 10 and len(body["top_a"]) == 20 and len(body["scatter"]) == 180
    assert "rule:shorter_preferred" in body["target_a"]
    same_loss = client.get(
        f"{API}/datasets/{dataset['id']}/target-comparison",
        headers=headers,
        params={"job_a": short, "job_b": long, "column": "harm_loss", "k": 20},
    ).json()
    assert same_loss["spearman"] > 0.999 and same_loss["overlap"] == 20
