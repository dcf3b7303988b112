"""Budget pruning through the API and a real worker: a `group` audit, greedy flags, a pair's
interactions, and a verify job comparing greedy, top-K and random removal."""

from __future__ import annotations

import pytest

from tests.factories import hh_records, jsonl_bytes, wait_for_job

API = "/api/v1"


@pytest.fixture
def group_audit(client, make_user, celery_worker_process) -> dict:
    """60 HH pairs, three of them flipped and each present three times, audited in head mode."""
    headers = make_user()["headers"]
    records = hh_records(60)
    for i in (5, 20, 40):
        records[i] = {"chosen": records[i]["rejected"], "rejected": records[i]["chosen"]}
    records += [dict(records[i]) for i in (5, 20, 40) for _ in range(2)]
    dataset = client.post(
        f"{API}/datasets",
        headers=headers,
        files={"file": ("g.jsonl", jsonl_bytes(records))},
        data={"name": "group"},
    ).json()
    created = client.post(
        f"{API}/datasets/{dataset['id']}/jobs",
        headers=headers,
        json={
            "model": "tiny",
            "mode": "head",
            "methods": ["loss", "group"],
            "default_method": "group",
            "prune_budget": 6,
            "val_fraction": 0.2,
        },
    )
    assert created.status_code == 202, created.text
    audit = wait_for_job(client, headers, created.json()["id"], timeout=600)
    assert audit["status"] == "succeeded", audit["error"]
    return {"headers": headers, "dataset": dataset, "audit": audit}


def test_greedy_flags_interactions_and_verify(client, group_audit) -> None:
    headers, dataset, audit = group_audit["headers"], group_audit["dataset"], group_audit["audit"]
    base = f"{API}/datasets/{dataset['id']}"
    group = audit["metrics"]["group"]
    n_train = audit["metrics"]["n_train"]
    assert group["candidates"] == n_train and group["budget"] == 6
    assert group["interactions_kept"] > 0

    pairs = client.get(
        f"{base}/pairs",
        headers=headers,
        params={"job_id": audit["id"], "sort": "group_order", "limit": 200},
    ).json()["items"]
    ordered = [p for p in pairs if p["scores"]["group_order"] is not None]
    assert [p["scores"]["group_order"] for p in ordered] == list(range(1, n_train + 1))
    # The default ranking is the greedy order, and the first-order effects are filled too.
    assert ordered[0]["scores"]["harm"] == max(p["scores"]["harm"] for p in ordered)
    assert all(p["scores"]["removal_effect_influence"] is not None for p in ordered)

    flagged = client.post(
        f"{base}/flags", headers=headers, json={"job_id": audit["id"], "rule": "greedy"}
    )
    assert flagged.status_code == 200 and flagged.json()["flagged"] == 6, flagged.text
    listed = client.get(
        f"{base}/pairs", headers=headers, params={"flagged": True, "limit": 50}
    ).json()["items"]
    assert {p["id"] for p in listed} == {p["id"] for p in ordered[:6]}
    more = client.post(
        f"{base}/flags",
        headers=headers,
        json={"job_id": audit["id"], "rule": "greedy", "budget": 0.2},
    )
    assert more.json()["flagged"] == round(0.2 * n_train) - 6  # round(0.2 n) in all
    too_many = client.post(
        f"{base}/flags",
        headers=headers,
        json={"job_id": audit["id"], "rule": "greedy", "budget": 10_000},
    )
    assert too_many.status_code == 422 and "exceeds" in too_many.text

    first = ordered[0]
    links = client.get(
        f"{base}/pairs/{first['id']}/interactions",
        headers=headers,
        params={"job_id": audit["id"]},
    )
    assert links.status_code == 200, links.text
    items = links.json()["items"]
    assert 0 < len(items) <= 10
    magnitudes = [abs(i["kappa"]) for i in items]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert all(i["kind"] == ("redundant" if i["kappa"] > 0 else "complementary") for i in items)
    assert all(i["pair_id"] != first["id"] for i in items)
    missing = client.get(
        f"{base}/pairs/{first['id']}/interactions", headers=headers, params={"job_id": 10**9}
    )
    assert missing.status_code == 404

    created = client.post(
        f"{base}/jobs",
        headers=headers,
        json={
            "kind": "verify",
            "audit_job_id": audit["id"],
            "rule": "greedy",
            "budget": 6,
            "seeds": 2,
        },
    )
    assert created.status_code == 202, created.text
    job = wait_for_job(client, headers, created.json()["id"], timeout=600)
    assert job["status"] == "succeeded", job["error"]
    metrics = job["metrics"]
    assert metrics["n_removed"] == 6 and metrics["rule"] == "greedy group selection of 6 pairs"
    assert {r["arm"] for r in metrics["runs"]} == {"full", "pruned", "random", "top_k"}
    assert {r["n_train"] for r in metrics["runs"] if r["arm"] in ("pruned", "top_k")} == {
        n_train - 6
    }
    for key in ("pruned_minus_top_k", "top_k_minus_random", "pruned_minus_random"):
        diff = metrics["differences"][key]["accuracy"]
        assert diff["n"] == 2 and diff["ci_low"] <= diff["mean"] <= diff["ci_high"]
    assert 0 <= metrics["overlap"]["top_k"] <= 6


def test_greedy_needs_a_group_audit(client, make_user, celery_worker_process) -> None:
    headers = make_user()["headers"]
    dataset = client.post(
        f"{API}/datasets",
        headers=headers,
        files={"file": ("p.jsonl", jsonl_bytes(hh_records(30)))},
        data={"name": "plain"},
    ).json()
    created = client.post(
        f"{API}/datasets/{dataset['id']}/jobs",
        headers=headers,
        json={"model": "tiny", "mode": "head", "methods": ["loss"], "default_method": "loss"},
    ).json()
    audit = wait_for_job(client, headers, created["id"], timeout=600)
    assert audit["status"] == "succeeded", audit["error"]
    base = f"{API}/datasets/{dataset['id']}"
    response = client.post(
        f"{base}/flags", headers=headers, json={"job_id": audit["id"], "rule": "greedy"}
    )
    assert response.status_code == 422 and "'group'" in response.text
    response = client.post(
        f"{base}/jobs",
        headers=headers,
        json={"kind": "verify", "audit_job_id": audit["id"], "rule": "greedy"},
    )
    assert response.status_code == 422 and "'group'" in response.text, response.text
    bad = client.post(
        f"{base}/jobs",
        headers=headers,
        json={"model": "tiny", "methods": ["group"], "default_method": "group", "prune_budget": 0},
    )
    assert bad.status_code == 422 and "prune_budget" in bad.text
