"""Target sets through the API: built from reviewed pairs, by rules, from another dataset or
from given pairs; listed, shown, deleted; the 20–500 size limit; a targeted audit's checks."""

from __future__ import annotations

import pytest

from backend.schemas.targets import TargetRule
from backend.services.target_rules import RULES, asks_for_harm, is_refusal
from tests.factories import hh_records, jsonl_bytes, upload

API = "/api/v1"


def _dataset(client, headers, records: list[dict], name: str = "d") -> dict:
    response = upload(client, headers, jsonl_bytes(records), f"{name}.jsonl", name)
    assert response.status_code == 201, response.text
    return response.json()


def _pairs(client, headers, dataset_id: int) -> list[dict]:
    page = client.get(
        f"{API}/datasets/{dataset_id}/pairs", headers=headers, params={"limit": 1000}
    ).json()
    return page["items"]


def _create(client, headers, dataset_id: int, source: dict, name: str = ""):
    return client.post(
        f"{API}/datasets/{dataset_id}/target-sets",
        headers=headers,
        json={"name": name, "source": source},
    )


def _review(client, headers, dataset_id: int, pair_id: int, state: str) -> None:
    response = client.put(
        f"{API}/datasets/{dataset_id}/pairs/{pair_id}/review",
        headers=headers,
        json={"state": state, "note": None},
    )
    assert response.status_code == 200, response.text


def _members(client, headers, dataset_id: int, target_id: int) -> dict:
    response = client.get(f"{API}/datasets/{dataset_id}/target-sets/{target_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_rule_names_are_the_schemas() -> None:
    assert set(RULES) == set(TargetRule.__args__)  # type: ignore[attr-defined]


def test_from_reviewed_keeps_kept_and_exchanges_swapped(client, auth) -> None:
    dataset = _dataset(client, auth, hh_records(40))
    pairs = _pairs(client, auth, dataset["id"])
    too_few = _create(client, auth, dataset["id"], {"kind": "reviewed"})
    assert too_few.status_code == 422
    assert "0 pair(s)" in too_few.json()["detail"] and "20–500" in too_few.json()["detail"]
    kept, swapped = pairs[:15], pairs[15:22]
    for pair in kept:
        _review(client, auth, dataset["id"], pair["id"], "kept")
    for pair in swapped:
        _review(client, auth, dataset["id"], pair["id"], "swapped")
    _review(client, auth, dataset["id"], pairs[30]["id"], "flagged")
    created = _create(client, auth, dataset["id"], {"kind": "reviewed"}, name="reviewed")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["n_pairs"] == 22 and body["source"] == "reviewed" and body["name"] == "reviewed"
    by_id = {p["id"]: p for p in pairs}
    detail = client.get(
        f"{API}/datasets/{dataset['id']}/target-sets/{body['id']}", headers=auth
    ).json()
    assert len(detail["sample"]) == 5
    # The stored members, oriented: read them all through the storage layer the worker uses.
    from backend.db import session_scope
    from backend.storage.targets import target_rows

    with session_scope() as session:
        _, rows = target_rows(session, body["id"])
    assert len(rows) == 22
    kept_ids = {p["id"] for p in kept}
    member_ids = sorted(kept_ids | {p["id"] for p in swapped})  # ids follow file order
    stored = dict(zip(member_ids, rows, strict=True))
    for pair_id, (prompt, chosen, rejected) in stored.items():
        pair = by_id[pair_id]
        assert prompt == pair["prompt"]
        if pair_id in kept_ids:
            assert (chosen, rejected) == (pair["chosen"], pair["rejected"])
        else:
            assert (chosen, rejected) == (pair["rejected"], pair["chosen"])


@pytest.mark.parametrize("rule", ["shorter_preferred", "longer_preferred"])
def test_length_rules_orient_by_length(client, auth, rule: str) -> None:
    dataset = _dataset(client, auth, hh_records(120))
    created = _create(client, auth, dataset["id"], {"kind": "rule", "rule": rule, "limit": 40})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["n_pairs"] == 40 and body["source"] == f"rule:{rule}"
    from backend.db import session_scope
    from backend.storage.targets import target_rows

    with session_scope() as session:
        _, rows = target_rows(session, body["id"])
    for _, chosen, rejected in rows:
        assert abs(len(chosen) - len(rejected)) >= 0.2 * max(len(chosen), len(rejected))
        assert (len(chosen) < len(rejected)) == (rule == "shorter_preferred")
    again = _create(client, auth, dataset["id"], {"kind": "rule", "rule": rule, "limit": 40})
    with session_scope() as session:
        assert target_rows(session, again.json()["id"])[1] == rows, "a seeded sample repeats"


def test_refusal_rules(client, auth) -> None:
    records = [
        {
            "prompt": f"How do I steal a car number {i}?" if i % 2 == 0 else f"How do I bake {i}?",
            "chosen": "Here is how: first, " + "step " * (i % 5 + 1),
            "rejected": "I'm sorry, but I can't help with that.",
        }
        for i in range(60)
    ]
    dataset = _dataset(client, auth, records)
    harmful = _create(
        client, auth, dataset["id"], {"kind": "rule", "rule": "refusal_when_harmful"}
    ).json()
    harmless = _create(
        client, auth, dataset["id"], {"kind": "rule", "rule": "helpful_when_harmless"}
    ).json()
    assert harmful["n_pairs"] == 30 and harmless["n_pairs"] == 30
    from backend.db import session_scope
    from backend.storage.targets import target_rows

    with session_scope() as session:
        for prompt, chosen, rejected in target_rows(session, harmful["id"])[1]:
            assert asks_for_harm(prompt) and is_refusal(chosen) and not is_refusal(rejected)
        for prompt, chosen, rejected in target_rows(session, harmless["id"])[1]:
            assert not asks_for_harm(prompt) and is_refusal(rejected) and not is_refusal(chosen)


def test_rule_that_finds_too_few_pairs_is_a_422(client, auth) -> None:
    dataset = _dataset(client, auth, hh_records(30))
    response = _create(
        client, auth, dataset["id"], {"kind": "rule", "rule": "refusal_when_harmful"}
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "refusal_when_harmful" in detail and "20–500 pairs" in detail


def test_size_limits(client, auth) -> None:
    dataset = _dataset(client, auth, hh_records(12))
    pair = {"prompt": "Q?", "chosen": "a", "rejected": "b"}
    for n in (19, 501):
        response = _create(client, auth, dataset["id"], {"kind": "pairs", "pairs": [pair] * n})
        assert response.status_code == 422, n
        assert "pairs" in str(response.json()["detail"])
    ok = _create(client, auth, dataset["id"], {"kind": "pairs", "pairs": [pair] * 20})
    assert ok.status_code == 201 and ok.json()["n_pairs"] == 20
    too_small = _dataset(client, auth, hh_records(12), name="small")
    response = _create(
        client, auth, dataset["id"], {"kind": "dataset", "dataset_id": too_small["id"]}
    )
    assert response.status_code == 422 and "12 pair(s)" in response.json()["detail"]
    for limit in (19, 501):
        response = _create(
            client,
            auth,
            dataset["id"],
            {"kind": "rule", "rule": "shorter_preferred", "limit": limit},
        )
        assert response.status_code == 422


def test_from_another_dataset_list_and_delete(client, auth, make_user) -> None:
    dataset = _dataset(client, auth, hh_records(12))
    target_data = _dataset(client, auth, hh_records(25, split="harmless-base"), name="t")
    created = _create(
        client, auth, dataset["id"], {"kind": "dataset", "dataset_id": target_data["id"]}
    )
    assert created.status_code == 201, created.text
    target = created.json()
    assert target["n_pairs"] == 25 and target["source"] == f"dataset:{target_data['id']}"
    listed = client.get(f"{API}/datasets/{dataset['id']}/target-sets", headers=auth).json()
    assert [t["id"] for t in listed["items"]] == [target["id"]] and listed["total"] == 1

    stranger = make_user()["headers"]
    url = f"{API}/datasets/{dataset['id']}/target-sets/{target['id']}"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=stranger).status_code == 404
    assert client.delete(url, headers=stranger).status_code == 404
    # Another user's dataset cannot be read into a target.
    theirs = _dataset(client, stranger, hh_records(25), name="theirs")
    response = _create(client, auth, dataset["id"], {"kind": "dataset", "dataset_id": theirs["id"]})
    assert response.status_code == 404

    assert client.delete(url, headers=auth).status_code == 204
    assert client.get(url, headers=auth).status_code == 404
    assert (
        client.get(f"{API}/datasets/{dataset['id']}/target-sets", headers=auth).json()["total"] == 0
    )


def test_targeted_audit_validation(client, auth) -> None:
    dataset = _dataset(client, auth, hh_records(30))
    other = _dataset(client, auth, hh_records(30), name="other")
    pair = {"prompt": "Q?", "chosen": "a", "rejected": "b"}
    target = _create(client, auth, other["id"], {"kind": "pairs", "pairs": [pair] * 20}).json()
    response = client.post(
        f"{API}/datasets/{dataset['id']}/jobs",
        headers=auth,
        json={"model": "tiny", "target_set_id": target["id"]},
    )
    assert response.status_code == 422
    assert f"target set {target['id']} of dataset {dataset['id']} not found" in str(
        response.json()["detail"]
    )
    own = _create(client, auth, dataset["id"], {"kind": "pairs", "pairs": [pair] * 20}).json()
    response = client.post(
        f"{API}/datasets/{dataset['id']}/jobs",
        headers=auth,
        json={"model": "tiny", "target_set_id": own["id"], "methods": ["loss", "length"]},
    )
    assert response.status_code == 422
    assert "measures against the target" in str(response.json()["detail"])
