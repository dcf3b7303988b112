"""Judge jobs through the API and a real Celery worker, against the real llama.cpp server: the
estimate before launch, the columns, a rerun that costs no request, cancel within 5 s, a server
killed mid-job, and the key that is never part of a job."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from backend.db import session_scope
from backend.models import Score
from tests.factories import API, DATA_DIR, hh_records, jsonl_bytes, upload, wait_for_job
from tests.judge.pairs import API_KEY, FAST
from tests.judge.servers import MODEL, CountingProxy, start_llama_server

pytestmark = pytest.mark.usefixtures("celery_worker_process")


def _dataset(client, headers: dict, n: int) -> int:
    response = upload(client, headers, jsonl_bytes(hh_records(n)), "hh.jsonl", name="judge")
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _rows(job_id: int) -> list:
    with session_scope() as session:
        return list(session.execute(select(Score).where(Score.job_id == job_id)).scalars())


def test_judge_job_estimate_columns_and_a_free_rerun(client, auth, proxy: CountingProxy) -> None:
    dataset_id = _dataset(client, auth, 3)
    body = {"base_url": proxy.base_url, "model": MODEL, "max_concurrency": 2, "shard_size": 2}
    body |= FAST

    defaults = client.get(f"{API}/judge/defaults", headers=auth).json()
    assert "{response_a}" in defaults["template"]["user"] and defaults["key_configured"] is True
    assert API_KEY not in str(defaults)
    before = client.post(f"{API}/datasets/{dataset_id}/judge/estimate", json=body, headers=auth)
    assert before.status_code == 200, before.text
    estimate = before.json()
    assert estimate["requests"] == 6 and estimate["cached_requests"] == 0
    assert estimate["prompt_tokens"] > 6 * 20 and estimate["completion_tokens"] == 6 * 1

    launched = client.post(f"{API}/datasets/{dataset_id}/judge", json=body, headers=auth)
    assert launched.status_code == 202, launched.text
    job = wait_for_job(client, auth, launched.json()["id"], timeout=1200)
    assert job["status"] == "succeeded", job
    metrics = job["metrics"]
    assert metrics["kind"] == "judge" and metrics["requests"] == 6 == proxy.faults.chat_requests
    assert metrics["pairs"] == 3 and metrics["first_position_rate"] is not None
    assert API_KEY not in str(job["config"])

    page = client.get(
        f"{API}/datasets/{dataset_id}/pairs",
        params={"job_id": job["id"], "sort": "-judge_against", "limit": 50},
        headers=auth,
    ).json()
    assert len(page["items"]) == 3
    scores = [item["scores"] for item in page["items"]]
    assert all(s["judge_failed_orders"] is not None for s in scores)
    judged = [s for s in scores if s["judge_failed_orders"] == 0]
    assert judged and all(s["judge_agree_chosen_first"] in (0, 1) for s in judged)
    against = [s["judge_against"] for s in scores if s["judge_against"] is not None]
    assert against == sorted(against, reverse=True)

    after = client.post(f"{API}/datasets/{dataset_id}/judge/estimate", json=body, headers=auth)
    assert after.json()["cached_requests"] == 6 and after.json()["seconds"] == 0
    assert after.json()["seconds_per_request"] > 0  # the job's measured rate

    proxy.reset()
    rerun = client.post(f"{API}/datasets/{dataset_id}/judge", json=body, headers=auth).json()
    again = wait_for_job(client, auth, rerun["id"], timeout=300)
    assert again["status"] == "succeeded", again
    assert proxy.faults.chat_requests == 0  # counted at the server's door: nothing was asked
    assert again["metrics"]["requests"] == 0 and again["metrics"]["cache_hits"] == 6
    for name in ("agreement", "position_bias", "consistency"):
        assert again["metrics"][name] == metrics[name]


def test_bad_options_and_a_key_in_the_body_are_refused(client, auth) -> None:
    dataset_id = _dataset(client, auth, 2)
    url = f"{API}/datasets/{dataset_id}/judge"
    base = {"base_url": "http://127.0.0.1:9/v1", "model": MODEL}
    cases = [
        ({**base, "api_key": "sk-secret"}, "api_key"),
        ({**base, "base_url": "ftp://host/v1"}, "base_url"),
        ({**base, "base_url": "http://user:pw@host/v1"}, "credentials"),
        ({**base, "template": {"user": "{prompt} {response_a}"}}, "{response_b}"),
        ({**base, "max_concurrency": 0}, "max_concurrency"),
    ]
    for body, named in cases:
        response = client.post(url, json=body, headers=auth)
        assert response.status_code == 422, (body, response.text)
        assert named in response.text
        assert "sk-secret" not in response.text and "pw@" not in response.text
    assert client.post(url, json=base).status_code == 401


def test_cancel_mid_judging_stops_requests_within_5_s(client, auth, proxy: CountingProxy) -> None:
    dataset_id = _dataset(client, auth, 40)
    proxy.faults.canned_seconds = 0.4
    body = {"base_url": proxy.base_url, "model": MODEL, "max_concurrency": 1, "shard_size": 4}
    job = client.post(f"{API}/datasets/{dataset_id}/judge", json=body, headers=auth).json()
    proxy.wait_for_requests(10, timeout=120)
    cancelled = client.post(f"{API}/jobs/{job['id']}/cancel", headers=auth)
    assert cancelled.json()["status"] == "cancelled"
    at_cancel = time.monotonic()
    time.sleep(5.0)
    settled = proxy.faults.chat_requests
    time.sleep(3.0)
    assert proxy.faults.chat_requests == settled, "requests went on more than 5 s after cancel"
    assert settled < 80 and time.monotonic() - at_cancel >= 5.0
    rows = _rows(job["id"])
    assert len(rows) % 4 == 0  # whole shards only
    assert all(r.judge_failed_orders is not None for r in rows)


def test_server_killed_mid_job_fails_it_clearly_and_keeps_whole_shards_only(client, auth) -> None:
    server = start_llama_server(DATA_DIR, api_key=API_KEY)
    try:
        dataset_id = _dataset(client, auth, 8)
        body = {
            "base_url": server.base_url,
            "model": MODEL,
            "max_concurrency": 2,
            "shard_size": 2,
            "max_retries": 1,
            **FAST,
        }
        job = client.post(f"{API}/datasets/{dataset_id}/judge", json=body, headers=auth).json()
        deadline = time.monotonic() + 900
        while not _rows(job["id"]):
            assert time.monotonic() < deadline, "no shard was written"
            time.sleep(0.2)
        server.process.kill()
        server.process.wait(timeout=30)
        final = wait_for_job(client, auth, job["id"], timeout=120)
    finally:
        server.stop()
    assert final["status"] == "failed", final
    assert "JudgeServerError during judging" in final["error"]
    assert "unreachable" in final["error"] and server.base_url in final["error"]
    rows = _rows(job["id"])
    assert 0 < len(rows) < 8 and len(rows) % 2 == 0  # whole shards, never a half-written one
    with session_scope() as session:
        incomplete = session.scalar(
            select(func.count()).where(
                Score.job_id == job["id"], Score.judge_failed_orders.is_(None)
            )
        )
    assert incomplete == 0
