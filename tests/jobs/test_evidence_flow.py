"""Evidence from outside the audited pairs, end to end through the API, a real Celery worker and
the real llama.cpp judge server (behind the counting proxy): two `tiny` audits save their reward
models; an audit of another dataset names both (`job:<id>`); on that dataset the judge's estimate
comes before its launch, a judge job fills its columns beside the reward models' ones, the exact
checks' tags filter both jobs' lists, a second judge job cancelled mid-judging stops asking the
server within 5 s, and a rerun of the finished job's config asks the server nothing."""

from __future__ import annotations

import copy
import json
import time
import uuid

import pytest
from sqlalchemy import select

from backend.db import session_scope
from backend.models import Score
from tests.factories import API, hh_records, jsonl_bytes, upload, wait_for_job
from tests.jobs.saved_models import launch_audit, save_two_models
from tests.judge.pairs import FAST
from tests.judge.servers import MODEL, CountingProxy

pytestmark = pytest.mark.usefixtures("celery_worker_process")

RM_COLUMNS = ("rm_margin_1", "rm_margin_2", "rm_mean", "rm_spread", "rm_votes_against")
JUDGED_COLUMNS = ("judge_p_chosen", "judge_against", "judge_failed_orders")


def _evidence_records() -> tuple[list[dict], dict[str, set[int]]]:
    """14 real HH pairs not used for saving the models, and three planted rows: a copy of row 0
    (duplicate), row 1 with its label reversed (both contradictions) and row 2's chosen answer as
    its rejected one too (identical). Returns the records and the rows each tag must find."""
    records = hh_records(54)[40:]
    first, second, third = records[0], records[1], records[2]
    planted = [
        dict(first),
        {"chosen": second["rejected"], "rejected": second["chosen"]},
        {"chosen": third["chosen"], "rejected": third["chosen"]},
    ]
    n = len(records)
    expected = {"duplicate": {n}, "contradiction": {1, n + 1}, "identical": {n + 2}}
    return records + planted, expected


@pytest.fixture(scope="module")
def evidence(client, celery_worker_process) -> dict:
    """Two tiny audits that saved their models (on a 40-pair dataset) and an audit of a second,
    17-pair dataset naming both as reward models (head mode: quick)."""
    from backend.services.users import create_user, issue_token

    with session_scope() as session:
        user = create_user(session, f"evidence-{uuid.uuid4().hex[:8]}", "correct-horse")
        headers = {"Authorization": f"Bearer {issue_token(session, user, 'test')}"}
    saving = upload(client, headers, jsonl_bytes(hh_records(40)), "hh-40.jsonl").json()
    saved = save_two_models(client, headers, saving["id"])
    records, expected = _evidence_records()
    response = upload(client, headers, jsonl_bytes(records), "evidence.jsonl", name="evidence")
    assert response.status_code == 201, response.text
    dataset = response.json()
    refs = [f"job:{job['id']}" for job in saved]
    audit = launch_audit(
        client, headers, dataset["id"], mode="head", methods=["loss"], reward_models=refs
    )
    return {"headers": headers, "dataset": dataset, "audit": audit, "expected": expected}


def _page(client, headers: dict, dataset_id: int, **params: object) -> list[dict]:
    page = client.get(
        f"{API}/datasets/{dataset_id}/pairs", headers=headers, params={"limit": 200, **params}
    )
    assert page.status_code == 200, page.text
    return page.json()["items"]


def _tag_rows(client, headers: dict, dataset_id: int, tag: str, **params: object) -> set[int]:
    """The file-order indices of the pairs the `tag=` filter lists."""
    return {item["index"] for item in _page(client, headers, dataset_id, tag=tag, **params)}


def test_reward_model_columns_and_exact_check_tags(client, evidence) -> None:
    headers, dataset, audit = evidence["headers"], evidence["dataset"], evidence["audit"]
    dataset_id, job_id = dataset["id"], audit["id"]
    assert [m["slot"] for m in audit["metrics"]["reward_models"]["models"]] == [
        "rm_margin_1",
        "rm_margin_2",
    ]
    items = _page(client, headers, dataset_id, job_id=job_id, sort="rm_mean")
    assert len(items) == audit["metrics"]["n_train"] >= 14
    for item in items:  # every training pair has every reward-model column
        assert all(isinstance(item["scores"][c], float | int) for c in RM_COLUMNS), item["scores"]
        assert item["scores"]["rm_margin_3"] is None
    means = [item["scores"]["rm_mean"] for item in items]
    assert means == sorted(means)
    votes = [
        i["scores"]["rm_votes_against"]
        for i in _page(client, headers, dataset_id, job_id=job_id, sort="-rm_votes_against")
    ]
    assert votes == sorted(votes, reverse=True) and set(votes) <= {0, 1, 2}

    # The upload's exact checks: each tag lists exactly its planted rows, with or without a job.
    summary = client.get(f"{API}/datasets/{dataset_id}", headers=headers).json()
    for tag, rows in evidence["expected"].items():
        assert summary["tag_counts"][tag] == len(rows), (tag, summary["tag_counts"])
        assert _tag_rows(client, headers, dataset_id, tag, split="all") == rows, tag
    # The audit's own check (its tokenizer): the identical pair is identical after truncation.
    truncated = _tag_rows(
        client, headers, dataset_id, "truncated_identical", job_id=job_id, split="all"
    )
    assert evidence["expected"]["identical"] <= truncated
    # The models' split is the audit's `ambiguous` tag.
    split = {i["index"] for i in items if i["scores"]["rm_ambiguous"] == 1}
    assert _tag_rows(client, headers, dataset_id, "ambiguous", job_id=job_id) == split


def _judge_body(proxy: CountingProxy, **changes: object) -> dict:
    body = {"base_url": proxy.base_url, "model": MODEL, "max_concurrency": 2, "shard_size": 4}
    return copy.deepcopy(body | FAST | changes)


def test_judge_estimate_columns_and_a_rerun_that_asks_nothing(
    client, evidence, proxy: CountingProxy
) -> None:
    headers, dataset = evidence["headers"], evidence["dataset"]
    dataset_id, n = dataset["id"], dataset["n_pairs"]
    body = _judge_body(proxy)

    # Before launch: requests, tokens and time (one probe request gives the rate).
    estimated = client.post(
        f"{API}/datasets/{dataset_id}/judge/estimate", json={**body, "probe": True}, headers=headers
    )
    assert estimated.status_code == 200, estimated.text
    estimate = estimated.json()
    assert estimate["pairs"] == n and estimate["requests"] == 2 * n
    assert estimate["cached_requests"] == 0
    assert estimate["prompt_tokens"] > 2 * n * 20 and estimate["completion_tokens"] == 2 * n
    assert estimate["seconds_per_request"] > 0 and estimate["seconds"] > 0
    assert proxy.faults.chat_requests == 2  # the probe: the first pair in both orders

    proxy.reset()
    launched = client.post(f"{API}/datasets/{dataset_id}/judge", json=body, headers=headers)
    assert launched.status_code == 202, launched.text
    job = wait_for_job(client, headers, launched.json()["id"], timeout=1200)
    assert job["status"] == "succeeded", job["error"]
    metrics = job["metrics"]
    assert metrics["requests"] == proxy.faults.chat_requests and metrics["pairs"] == n
    # A request asked before is answered from the cache: the copy of row 0 and row 1 reversed
    # repeat its requests from earlier shards (the identical pair's two orders are one request,
    # a hit unless both were in flight at once).
    assert metrics["requests"] + metrics["cache_hits"] == 2 * n and metrics["cache_hits"] >= 4

    # Every pair (training and validation pairs of the audit alike) has the judge's columns,
    # listed and sorted like any other score; the audit's reward-model columns are its own.
    judged = _page(client, headers, dataset_id, job_id=job["id"], sort="-judge_against")
    assert len(judged) == n
    for item in judged:
        scores = item["scores"]
        assert all(scores[c] is not None for c in JUDGED_COLUMNS), scores
        assert scores["rm_mean"] is None
    against = [item["scores"]["judge_against"] for item in judged]
    assert against == sorted(against, reverse=True) and set(against) <= {0, 1, 2}
    p_chosen = [
        item["scores"]["judge_p_chosen"]
        for item in _page(client, headers, dataset_id, job_id=job["id"], sort="judge_p_chosen")
    ]
    assert p_chosen == sorted(p_chosen) and all(0 <= p <= 1 for p in p_chosen)
    # Tags filter the judge's list too: an upload's, and the judge's own `ambiguous` (its two
    # orders picked different responses).
    identical = evidence["expected"]["identical"]
    assert _tag_rows(client, headers, dataset_id, "identical", job_id=job["id"]) == identical
    split = {
        item["index"]
        for item in judged
        if item["scores"]["judge_failed_orders"] == 0
        and item["scores"]["judge_agree_chosen_first"]
        != item["scores"]["judge_agree_chosen_second"]
    }
    assert _tag_rows(client, headers, dataset_id, "ambiguous", job_id=job["id"]) == split

    # The estimate now finds every answer cached, and a rerun asks the server nothing.
    again = client.post(
        f"{API}/datasets/{dataset_id}/judge/estimate", json=body, headers=headers
    ).json()
    assert again["cached_requests"] == 2 * n and again["seconds"] == 0
    proxy.reset()
    rerun = client.post(f"{API}/datasets/{dataset_id}/judge", json=body, headers=headers).json()
    final = wait_for_job(client, headers, rerun["id"], timeout=300)
    assert final["status"] == "succeeded", final["error"]
    assert proxy.faults.chat_requests == 0  # counted at the server's door
    assert final["metrics"]["requests"] == 0 and final["metrics"]["cache_hits"] == 2 * n
    first = {i["id"]: i["scores"]["judge_p_chosen"] for i in judged}
    rerun_items = _page(client, headers, dataset_id, job_id=final["id"])
    assert {i["id"]: i["scores"]["judge_p_chosen"] for i in rerun_items} == first


def test_cancel_mid_judging_stops_asking_within_5_s(client, evidence, proxy: CountingProxy) -> None:
    """A second judge job (another prompt: nothing cached) on the real server, cancelled after a
    few answers: no request reaches the server more than 5 s after the cancel."""
    headers, dataset_id = evidence["headers"], evidence["dataset"]["id"]
    template = {**FAST["template"], "system": "Judge strictly. Answer A or B."}  # type: ignore[dict-item]
    body = _judge_body(proxy, max_concurrency=1, shard_size=2, template=template)
    job = client.post(f"{API}/datasets/{dataset_id}/judge", json=body, headers=headers).json()
    proxy.wait_for_requests(5, timeout=300)
    cancelled = client.post(f"{API}/jobs/{job['id']}/cancel", headers=headers)
    assert cancelled.status_code == 200, cancelled.text
    at_cancel = time.monotonic()
    assert cancelled.json()["status"] == "cancelled"
    time.sleep(8.0)
    with proxy.faults.lock:
        times = [t for t, _ in proxy.faults.times]
    late = [round(t - at_cancel, 2) for t in times if t > at_cancel + 5.0]
    assert not late, f"requests went on after the cancel (seconds after it): {late}"
    assert len(times) < 2 * evidence["dataset"]["n_pairs"]  # it stopped mid-job
    final = client.get(f"{API}/jobs/{job['id']}", headers=headers).json()
    assert final["status"] == "cancelled", json.dumps(final)[:500]
    # A cancelled job's scores are not listed (422): read what it stored.
    with session_scope() as session:
        rows = list(session.scalars(select(Score).where(Score.job_id == job["id"])))
    assert len(rows) % 2 == 0  # whole shards only
    assert all(row.judge_failed_orders is not None for row in rows)
