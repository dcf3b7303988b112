"""A user's own judge key, against the real llama.cpp server (which requires the session's key,
PREFAUDIT_JUDGE_API_KEY): a job launched by a user whose own key is wrong fails with the server's
401 (so the worker sent the user's key, not the server's), and so does the estimate's probe; once
the user clears it, the same job runs on the server's key. tests/api/test_secrets.py covers the
storage and that the key is never echoed nor stored in a job."""

from __future__ import annotations

import uuid

import pytest

from tests.factories import API, hh_records, jsonl_bytes, upload, wait_for_job
from tests.judge.pairs import API_KEY, FAST
from tests.judge.servers import MODEL, CountingProxy

pytestmark = pytest.mark.usefixtures("celery_worker_process")

KEY_PATH = f"{API}/me/secrets/judge-api-key"


def test_the_launchers_own_key_is_sent_and_clearing_it_falls_back(
    client, make_user, proxy: CountingProxy
) -> None:
    auth = make_user()["headers"]
    dataset = upload(client, auth, jsonl_bytes(hh_records(1)), "hh.jsonl").json()["id"]
    # A system message of its own: no answer of another test's cache can serve these requests.
    template = {**FAST["template"], "system": f"Judge fairly. ({uuid.uuid4().hex})"}
    body = {**FAST, "base_url": proxy.base_url, "model": MODEL, "template": template}
    body |= {"max_concurrency": 1, "max_retries": 0}

    wrong = "not-the-" + API_KEY
    assert client.put(KEY_PATH, headers=auth, json={"value": wrong}).status_code == 200
    probe = client.post(
        f"{API}/datasets/{dataset}/judge/estimate", headers=auth, json={**body, "probe": True}
    )
    assert probe.status_code == 422 and "401" in probe.text, probe.text
    launched = client.post(f"{API}/datasets/{dataset}/judge", headers=auth, json=body)
    assert launched.status_code == 202, launched.text
    failed = wait_for_job(client, auth, launched.json()["id"], timeout=600)
    assert failed["status"] == "failed" and "401" in failed["error"], failed["error"]
    assert wrong not in str(failed) and proxy.faults.chat_requests >= 2

    assert client.delete(KEY_PATH, headers=auth).status_code == 204
    again = client.post(f"{API}/datasets/{dataset}/judge", headers=auth, json=body)
    job = wait_for_job(client, auth, again.json()["id"], timeout=900)
    assert job["status"] == "succeeded", job["error"]
    assert job["metrics"]["requests"] == 2 and job["metrics"]["failed_orders"] == 0
