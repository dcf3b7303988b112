"""The per-job default ranking (worker/influence/canaries.py, worker/jobs/canary.py) through real
Postgres, Redis and a Celery worker on the tiny model: the job plants canaries, reports which
ranking it chose and why, fills `harm` with that ranking, and no canary reaches the stored
scores, the pairs list or the export, on the LoRA canvas, the head canvas and the one-task path."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import select

from tests.factories import hh_records, jsonl_bytes, wait_for_job
from worker.influence import canaries
from worker.influence.methods import harm_column

API = "/api/v1"
N_PAIRS = 260  # 234 training pairs: 20 canaries (the minimum; none under 200 training pairs)


def _split(dataset_id: int, config: dict) -> tuple[list[int], list[int]]:
    """(training, validation) pair ids of the job, as the job runner splits them."""
    from backend.db import session_scope
    from worker.jobs import store

    options = store.audit_options(config)
    with session_scope() as session:
        train, val, _ = store.split_ids(session, dataset_id, options, options.engine_config().seed)
    return train.tolist(), val.tolist()


def _rows(job_id: int) -> dict[str, set[int]]:
    from backend.db import session_scope
    from backend.models import Score

    with session_scope() as session:
        rows = session.execute(
            select(Score.pair_id, Score.split).where(Score.job_id == job_id)
        ).all()
    out: dict[str, set[int]] = {"train": set(), "val": set()}
    for pair_id, split in rows:
        out[split].add(pair_id)
    return out


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"model": "tiny"}, id="lora-canvas"),
        pytest.param({"model": "tiny", "mode": "head"}, id="head-canvas"),
        pytest.param({"model": "tiny", "methods": ["loss", "tracin", "length"]}, id="one-task"),
    ],
)
def test_the_job_chooses_its_default_and_hides_its_canaries(
    client, make_user, celery_worker_process, options: dict
) -> None:
    headers = make_user()["headers"]
    records = hh_records(N_PAIRS)
    dataset = client.post(
        f"{API}/datasets",
        headers=headers,
        files={"file": ("canaries.jsonl", jsonl_bytes(records))},
        data={"name": "canaries"},
    ).json()
    created = client.post(f"{API}/datasets/{dataset['id']}/jobs", headers=headers, json=options)
    assert created.status_code == 202, created.text
    job = wait_for_job(client, headers, created.json()["id"], timeout=900)
    assert job["status"] == "succeeded", job["error"]

    train_ids, val_ids = _split(dataset["id"], job["config"])
    planted = canaries.select_canaries(len(train_ids), job["config"]["seed"])
    held = {train_ids[i] for i in planted}
    assert len(held) == 20

    metrics = job["metrics"]
    choice = metrics["default_choice"]
    assert choice["canaries"] == 20 and choice["held_aside"] == 20
    assert choice["method"] == metrics["default_method"]
    assert choice["rule"] in ("learned", "model_free") and len(choice["reason"]) > 20
    assert "loss" in choice["rankings"] and "length" in choice["rankings"]
    expected = choice["rankings"][choice["method"]]
    assert choice["expected_auroc"] == expected["auroc"]
    assert choice["expected"].startswith(
        f"on 20 canaries this ranking put {expected['top10_hits']} in its top 10%"
    )
    assert 0 <= expected["top10_hits"] <= 20 and expected["top10_size"] == round(0.1 * 234)
    if not metrics["trust"]["is_evidence"]:  # the tiny model often learns nothing
        assert choice["method"] == "length" and "learned nothing" in choice["reason"]

    # Stored: the scored training pairs are exactly the non-canaries; the held-aside originals
    # are unscored rows beside the validation pairs.
    rows = _rows(job["id"])
    assert rows["train"] == set(train_ids) - held
    assert rows["val"] == set(val_ids) | held
    assert metrics["n_train"] == len(train_ids) - 20

    # The pairs list: harm is the chosen column, no held-aside pair among the ranked ones.
    page = client.get(
        f"{API}/datasets/{dataset['id']}/pairs",
        headers=headers,
        params={"job_id": job["id"], "sort": "-harm", "limit": 1000, "split": "train"},
    ).json()
    assert page["total"] == len(train_ids) - 20
    column = harm_column(choice["method"])
    for item in page["items"]:
        assert item["id"] not in held
        assert item["scores"]["harm"] == pytest.approx(item["scores"][column])
    harm = [item["scores"]["harm"] for item in page["items"]]
    assert all(np.isfinite(harm)) and harm == sorted(harm, reverse=True)

    # The export is the upload itself: every pair, none swapped.
    export = client.get(
        f"{API}/datasets/{dataset['id']}/export", headers=headers, params={"format": "jsonl"}
    )
    assert export.status_code == 200
    lines = [json.loads(line) for line in export.text.splitlines() if line.strip()]
    assert len(lines) == N_PAIRS
    assert [(r["chosen"], r["rejected"]) for r in lines] == [
        (r["chosen"], r["rejected"]) for r in records
    ]


def test_length_can_be_forced_and_auto_is_what_a_launch_without_one_gets(
    client, make_user, celery_worker_process
) -> None:
    """`default_method` 'length' forces the length heuristic (before 'auto' existed it meant
    'let the job choose'); a launch that names none is stored as 'auto'; a method the job does
    not compute is refused with a message naming the fix."""
    headers = make_user()["headers"]
    dataset = client.post(
        f"{API}/datasets",
        headers=headers,
        files={"file": ("forced.jsonl", jsonl_bytes(hh_records(N_PAIRS)))},
        data={"name": "forced"},
    ).json()
    jobs = f"{API}/datasets/{dataset['id']}/jobs"
    forced = {"model": "tiny", "methods": ["loss"], "default_method": "length"}
    refused = client.post(jobs, headers=headers, json=forced)
    assert refused.status_code == 422 and "leave it at 'auto'" in refused.text
    unknown = client.post(jobs, headers=headers, json={"model": "tiny", "default_method": "vibes"})
    assert unknown.status_code == 422

    options = {"model": "tiny", "mode": "head", "default_method": "length"}
    created = client.post(jobs, headers=headers, json=options)
    assert created.status_code == 202, created.text
    job = wait_for_job(client, headers, created.json()["id"], timeout=900)
    assert job["status"] == "succeeded", job["error"]
    assert job["config"]["default_method"] == "length"
    choice = job["metrics"]["default_choice"]
    assert choice["rule"] == "asked" and choice["method"] == "length"
    assert job["metrics"]["default_method"] == "length" and "asked for" in choice["reason"]
    assert choice["canaries"] == 20 and "loss" in choice["rankings"]  # still measured, reported
    page = client.get(
        f"{API}/datasets/{dataset['id']}/pairs",
        headers=headers,
        params={"job_id": job["id"], "sort": "-harm", "limit": 1000, "split": "train"},
    ).json()
    assert page["items"] and all(
        item["scores"]["harm"] == pytest.approx(item["scores"]["harm_length"])
        for item in page["items"]
    )

    plain = client.post(jobs, headers=headers, json={"model": "tiny", "mode": "head"})
    assert plain.status_code == 202, plain.text
    job = wait_for_job(client, headers, plain.json()["id"], timeout=900)
    assert job["status"] == "succeeded", job["error"]
    assert job["config"]["default_method"] == "auto"
    assert job["metrics"]["default_choice"]["rule"] in ("learned", "model_free")
