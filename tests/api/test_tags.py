"""Exact-check tags through the API: computed at upload, counted in the dataset summary, listed
by GET /methods/tags, filtered by `tag=` in the pairs list, the bulk actions and the export;
the contamination check against an evaluation dataset; HH-RLHF's own files upload whole."""

from __future__ import annotations

import gzip
import json

from backend.ingest.parsing import split_transcripts
from tests.factories import API, HH_DIR, jsonl_bytes, upload
from worker.influence.tags import TAG_NAMES


def _pairs(n: int) -> list[dict]:
    return [
        {
            "prompt": f"question {k} about topic {k * 7}",
            "chosen": f"good {k}",
            "rejected": f"bad {k}",
        }
        for k in range(n)
    ]


def _planted() -> tuple[list[dict], dict[str, set[int]]]:
    """60 pairs with known tags; the 1-based file rows of each."""
    records = _pairs(60)
    records[10] = dict(records[10], rejected=records[10]["chosen"])  # identical
    records[11] = dict(records[11], chosen="")  # empty
    records[20] = dict(records[3])  # duplicate of row 4
    records[21] = dict(records[3])
    records[30] = dict(records[5], chosen=records[5]["rejected"], rejected=records[5]["chosen"])
    records[40] = dict(records[40], chosen="I'm sorry, but I can't help with that.")
    rows = {
        "identical": {11},
        "empty_response": {12},
        "duplicate": {21, 22},
        "contradiction": {6, 31},
        "refusal": {41},
    }
    return records, rows


def _rows(client, auth, ds: int, query: str) -> set[int]:
    page = client.get(f"{API}/datasets/{ds}/pairs?limit=1000&{query}", headers=auth)
    assert page.status_code == 200, page.text
    return {item["row"] for item in page.json()["items"]}


def test_upload_tags_filter_bulk_and_export(client, auth) -> None:
    records, rows = _planted()
    response = upload(client, auth, jsonl_bytes(records), "planted.jsonl")
    assert response.status_code == 201, response.text
    ds = response.json()["id"]
    counts = response.json()["tag_counts"]
    assert set(counts) == set(TAG_NAMES)
    for tag, expected in rows.items():
        assert counts[tag] == len(expected), tag
        assert _rows(client, auth, ds, f"tag={tag}") == expected, tag
    assert counts["near_contradiction"] == counts["contamination"] == 0
    summary = client.get(f"{API}/datasets/{ds}", headers=auth).json()
    assert summary["tag_counts"] == counts
    listed = client.get(f"{API}/datasets", headers=auth).json()["items"]
    assert next(d for d in listed if d["id"] == ds)["tag_counts"] == counts
    # Several tags: any of them. `not_tag`: none of them (and both together).
    assert _rows(client, auth, ds, "tag=identical&tag=refusal") == {11, 41}
    everything = set(range(1, 61))
    assert _rows(client, auth, ds, "not_tag=duplicate&not_tag=refusal") == everything - {
        21,
        22,
        41,
    }
    assert _rows(client, auth, ds, "tag=contradiction&not_tag=duplicate") == {6, 31}
    bad = client.get(f"{API}/datasets/{ds}/pairs?not_tag=nonsense", headers=auth)
    assert bad.status_code in (400, 422) and "nonsense" in bad.text
    # Bulk: flag the duplicates; the cleaned export leaves exactly them out.
    bulk = client.post(
        f"{API}/datasets/{ds}/review",
        headers=auth,
        json={"action": "flag", "filter": {"tags": ["duplicate"]}},
    )
    assert bulk.status_code == 200, bulk.text
    assert bulk.json()["changed"] == 2
    actions = client.get(f"{API}/datasets/{ds}/review/actions", headers=auth).json()
    assert "tag duplicate" in actions[0]["description"]
    exported = client.get(f"{API}/datasets/{ds}/export", headers=auth).text.splitlines()
    assert len(exported) == 58
    # The export filter: only the refusals, and only the contradictions.
    only = client.get(f"{API}/datasets/{ds}/export?tag=refusal", headers=auth).text.splitlines()
    assert [json.loads(line)["chosen"] for line in only] == [records[40]["chosen"]]
    both = client.get(f"{API}/datasets/{ds}/export?tag=contradiction", headers=auth).text
    assert [json.loads(line)["prompt"] for line in both.splitlines()] == [records[5]["prompt"]] * 2
    bad = client.get(f"{API}/datasets/{ds}/pairs?tag=nonsense", headers=auth)
    assert bad.status_code in (400, 422) and "nonsense" in bad.text
    client.delete(f"{API}/datasets/{ds}", headers=auth)


def test_the_tag_registry_is_listed(client, auth) -> None:
    tags = client.get(f"{API}/methods/tags", headers=auth).json()
    assert [t["name"] for t in tags] == list(TAG_NAMES)
    assert all(t["label"] and t["description"] and t["stage"] for t in tags)
    assert client.get(f"{API}/methods/tags").status_code == 401


def test_contamination_against_an_uploaded_evaluation_set(client, auth, make_user) -> None:
    long = " ".join(f"word{k}" for k in range(30))
    records = _pairs(40)
    for k in (3, 17, 29):
        records[k] = dict(records[k], prompt=f"Please: {long.upper()}!")
    evaluation = [{"prompt": f"eval preface {long} end", "chosen": "a", "rejected": "b"}]
    ds = upload(client, auth, jsonl_bytes(records), "train.jsonl").json()["id"]
    ev = upload(client, auth, jsonl_bytes(evaluation), "eval.jsonl").json()["id"]
    url = f"{API}/datasets/{ds}/checks/contamination"
    result = client.post(url, headers=auth, json={"eval_dataset_id": ev})
    assert result.status_code == 200, result.text
    assert result.json()["tagged"] == 3 and result.json()["n"] == 13
    assert _rows(client, auth, ds, "tag=contamination") == {4, 18, 30}
    # A rerun replaces the tags; another user's dataset is not an evaluation set for you.
    again = client.post(url, headers=auth, json={"eval_dataset_id": ev, "n": 40})
    assert again.json()["tagged"] == 0
    assert (
        client.get(f"{API}/datasets/{ds}", headers=auth).json()["tag_counts"]["contamination"] == 0
    )
    stranger = make_user()["headers"]
    theirs = upload(client, stranger, jsonl_bytes(evaluation), "e.jsonl").json()["id"]
    refused = client.post(url, headers=auth, json={"eval_dataset_id": theirs})
    assert refused.status_code == 404 and f"dataset {theirs}" in refused.text
    assert client.post(url, json={"eval_dataset_id": ev}).status_code == 401


def _hh_empty_rows(name: str) -> set[int]:
    with gzip.open(HH_DIR / name, "rt", encoding="utf-8") as lines:
        out = set()
        for row, line in enumerate(lines, start=1):
            record = json.loads(line)
            _, chosen, rejected = split_transcripts(record["chosen"], record["rejected"])
            if not chosen.strip() or not rejected.strip():
                out.add(row)
    return out


def test_hh_helpful_base_uploads_whole_and_tags_its_empty_responses(client, auth) -> None:
    name = "helpful-base-test.jsonl.gz"
    data = (HH_DIR / name).read_bytes()
    response = upload(client, auth, data, name)  # on_bad_rows: reject (the default)
    assert response.status_code == 201, response.text
    body = response.json()
    with gzip.open(HH_DIR / name) as lines:
        assert body["n_pairs"] == sum(1 for _ in lines) == 2354
    assert body["n_skipped"] == 0
    empty = _hh_empty_rows(name)
    assert 121 in empty
    assert body["tag_counts"]["empty_response"] == len(empty)
    assert _rows(client, auth, body["id"], "tag=empty_response") == empty
    # The transcript is kept byte for byte: the export gives back the file's line 121.
    with gzip.open(HH_DIR / name, "rt", encoding="utf-8") as lines:
        original = [json.loads(line) for line in lines]
    exported = client.get(f"{API}/datasets/{body['id']}/export", headers=auth).text.splitlines()
    assert json.loads(exported[120]) == original[120]
    client.delete(f"{API}/datasets/{body['id']}", headers=auth)
