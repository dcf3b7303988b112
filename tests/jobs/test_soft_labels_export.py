"""An audit's tokenizer checks and the soft-label export (issue 24, items 3 and 4), through a
real worker: pairs identical after truncation at the job's max_length are tagged with the tokens
they differ in before it; the export's confidence columns come from the audit's margins, flip
with a swap, split into the ambiguous file and the rest, and load with HF `datasets` as the
columns TRL's DPOTrainer (prompt / chosen / rejected) and a reward trainer (margin) read."""

from __future__ import annotations

import io
import json
import math

import datasets
import pyarrow.parquet as pq
import pytest

from tests.factories import API, jsonl_bytes, upload, wait_for_job

TAIL = " ".join(f"detail{k}" for k in range(40))
TRUNCATED = {7, 19, 33, 48}  # 0-based positions whose responses differ only before the tail


def _records() -> list[dict]:
    records = [
        {"prompt": f"question {k}", "chosen": f"thank you {k}", "rejected": f"no way {k}"}
        for k in range(60)
    ]
    for k in TRUNCATED:
        records[k] = dict(records[k], chosen=f"yes {TAIL}", rejected=f"no {TAIL}")
    return records


def _export(client, auth, ds: int, **params) -> list[dict]:
    response = client.get(f"{API}/datasets/{ds}/export", headers=auth, params=params)
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]


def test_truncation_tags_and_soft_labels(client, auth, celery_worker_process, tmp_path) -> None:
    records = _records()
    ds = upload(client, auth, jsonl_bytes(records), "soft.jsonl").json()["id"]
    created = client.post(
        f"{API}/datasets/{ds}/jobs", headers=auth, json={"model": "tiny", "max_length": 16}
    )
    assert created.status_code == 202, created.text
    job = wait_for_job(client, auth, created.json()["id"], timeout=600)
    assert job["status"] == "succeeded", job["error"]

    # The tokenizer check: exactly the planted pairs, each differing in one token ("yes"/"no").
    page = client.get(
        f"{API}/datasets/{ds}/pairs",
        headers=auth,
        params={"tag": "truncated_identical", "split": "all", "limit": 100},
    ).json()
    assert {p["index"] for p in page["items"]} == TRUNCATED
    summary = client.get(f"{API}/datasets/{ds}", headers=auth).json()
    assert summary["tag_counts"]["truncated_identical"] == len(TRUNCATED)

    # Soft labels: σ(margin) of the audit's training pairs; nulls for its validation pairs.
    scored = client.get(
        f"{API}/datasets/{ds}/pairs",
        headers=auth,
        params={"job_id": job["id"], "limit": 100},
    ).json()["items"]
    margins = {p["index"]: p["scores"]["margin"] for p in scored}
    sources = {p["index"]: p["scores"].get("oof_margin") for p in scored}
    rows = _export(client, auth, ds, soft_labels_job=job["id"])
    assert len(rows) == 60
    for k, row in enumerate(rows):
        if k not in margins:
            assert row["confidence"] is None and row["confidence_source"] is None
            continue
        value = sources[k] if sources[k] is not None else margins[k]
        assert row["confidence_source"] == ("oof_margin" if sources[k] is not None else "margin")
        assert math.isclose(row["confidence"], 1 / (1 + math.exp(-value)), rel_tol=1e-9)
        assert math.isclose(row["label_smoothing"], min(0.5, 1 - row["confidence"]))
        assert row["margin"] == value

    # A swapped pair is written swapped, its confidence and margin flipped.
    first = min(margins)
    pair_id = next(p["id"] for p in scored if p["index"] == first)
    client.put(
        f"{API}/datasets/{ds}/pairs/{pair_id}/review", headers=auth, json={"state": "swapped"}
    )
    swapped = _export(client, auth, ds, soft_labels_job=job["id"])[first]
    assert swapped["chosen"] == records[first]["rejected"]
    assert math.isclose(swapped["confidence"], 1 - rows[first]["confidence"])
    assert swapped["margin"] == -rows[first]["margin"]

    # The ambiguous pairs' file and the rest: disjoint, together every pair.
    band = 0.02
    only = _export(
        client, auth, ds, soft_labels_job=job["id"], ambiguous="only", ambiguous_band=band
    )
    rest = _export(
        client, auth, ds, soft_labels_job=job["id"], ambiguous="exclude", ambiguous_band=band
    )
    assert len(only) + len(rest) == 60
    assert all(r["confidence"] is not None and abs(r["confidence"] - 0.5) < band for r in only)
    assert all(r["confidence"] is None or abs(r["confidence"] - 0.5) >= band for r in rest)
    refused = client.get(f"{API}/datasets/{ds}/export?ambiguous=only", headers=auth)
    assert refused.status_code == 422 and "soft_labels_job" in refused.text

    # HF datasets: JSONL and Parquet load, and make TRL's DPO columns plus the trainers' extras.
    path = tmp_path / "soft.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    loaded = datasets.load_dataset("json", data_files=str(path), split="train")
    parquet = client.get(
        f"{API}/datasets/{ds}/export",
        headers=auth,
        params={"format": "parquet", "soft_labels_job": job["id"]},
    )
    table = pq.read_table(io.BytesIO(parquet.content))
    assert str(table.schema.field("confidence").type) == "double"
    from_parquet = datasets.Dataset(table)
    for dataset in (loaded, from_parquet):
        dpo = dataset.filter(lambda r: r["confidence"] is not None).select_columns(
            ["prompt", "chosen", "rejected", "label_smoothing", "margin"]
        )
        assert dpo.column_names == ["prompt", "chosen", "rejected", "label_smoothing", "margin"]
        assert len(dpo) == len(margins)
        assert all(0 <= e <= 0.5 for e in dpo["label_smoothing"])
        assert all(isinstance(t, str) and t for t in dpo["prompt"])


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"mode": "head"}, id="head-canvas"),
        pytest.param({"hessian": "exact"}, id="single-task"),
    ],
)
def test_every_audit_flow_tags_truncation(client, auth, celery_worker_process, options) -> None:
    """The head canvas (its first feature shard) and the single-task flow tag the same pairs,
    each audit its own: with job_id in the filter, only that audit's tags count."""
    ds = upload(client, auth, jsonl_bytes(_records()), "flows.jsonl").json()["id"]
    jobs = []
    # At 400 tokens nothing is cut, so no pair is identical: once, on the faster head canvas.
    lengths = (16, 400) if options.get("mode") == "head" else (16,)
    for max_length in lengths:
        body = {"model": "tiny", "max_length": max_length, **options}
        created = client.post(f"{API}/datasets/{ds}/jobs", headers=auth, json=body)
        assert created.status_code == 202, created.text
        job = wait_for_job(client, auth, created.json()["id"], timeout=600)
        assert job["status"] == "succeeded", job["error"]
        jobs.append(job["id"])
    for job_id, expected in zip(jobs, (TRUNCATED, set()), strict=False):
        page = client.get(
            f"{API}/datasets/{ds}/pairs",
            headers=auth,
            params={"tag": "truncated_identical", "job_id": job_id, "split": "all", "limit": 100},
        ).json()
        assert {p["index"] for p in page["items"]} == expected
    # Without a job, any audit's tags count.
    listed = client.get(
        f"{API}/datasets/{ds}/pairs", headers=auth, params={"tag": "truncated_identical"}
    ).json()
    assert {p["index"] for p in listed["items"]} == TRUNCATED
