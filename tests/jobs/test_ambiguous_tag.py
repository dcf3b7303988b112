"""The `ambiguous` tag (worker/influence/tags.py) through the API and a real Celery worker: an
audit naming two reward models tags exactly the pairs whose rm_ambiguous is 1; a judge job tags
exactly the pairs whose two orders disagree. Either way the tag is counted in the dataset's
summary, filters the pairs list (`tag=`, `not_tag=`), the bulk actions and the export, and the
soft-label export's ambiguous file is the same pairs.

The reward models are two random `tiny` backbones saved here (seeds 0 and 1: they disagree on
about half the pairs). The judge job's answers are planted in its answer cache (the cache is keyed
by the exact request, worker/influence/judge/client.py), so it runs without a server: the
planted verdicts decide which pairs split."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from backend.db import session_scope, upsert
from backend.ingest.parsing import split_transcripts
from backend.models import JudgeAnswer, Pair, UserSecret
from backend.schemas.judge import JudgeCreate
from backend.services.judge import options_of
from tests.factories import API, hh_records, jsonl_bytes, upload, wait_for_job
from worker.influence.judge import request_key

pytestmark = pytest.mark.usefixtures("celery_worker_process")

MAX_LENGTH = 64


def _dataset(client, auth, n: int) -> int:
    """n helpful-base pairs as prompt/chosen/rejected, each prompt made unique (the export
    checks go by prompt)."""
    records = []
    for k, record in enumerate(hh_records(n)):
        prompt, chosen, rejected = split_transcripts(record["chosen"], record["rejected"])
        records.append({"prompt": f"[{k}] {prompt}", "chosen": chosen, "rejected": rejected})
    response = upload(client, auth, jsonl_bytes(records), "hh.jsonl", name="ambiguous")
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _items(client, auth, ds: int, **params) -> list[dict]:
    page = client.get(f"{API}/datasets/{ds}/pairs", headers=auth, params={"limit": 1000, **params})
    assert page.status_code == 200, page.text
    return page.json()["items"]


def _export_rows(client, auth, ds: int, **params) -> set[str]:
    """The prompts of the exported records (unique in these datasets)."""
    response = client.get(f"{API}/datasets/{ds}/export", headers=auth, params=params)
    assert response.status_code == 200, response.text
    return {json.loads(line)["prompt"] for line in response.text.splitlines()}


def _check_everywhere(client, auth, ds: int, job_id: int, expected: set[int]) -> None:
    """`expected` (pair ids) is what the tag lists, counts, filters, bulk-counts and exports."""
    every = _items(client, auth, ds, job_id=job_id, split="all")
    tagged = _items(client, auth, ds, job_id=job_id, split="all", tag="ambiguous")
    assert {p["id"] for p in tagged} == expected
    untagged = _items(client, auth, ds, job_id=job_id, split="all", not_tag="ambiguous")
    assert {p["id"] for p in untagged} == {p["id"] for p in every} - expected
    summary = client.get(f"{API}/datasets/{ds}", headers=auth).json()
    assert summary["tag_counts"]["ambiguous"] == len(expected)
    dry = client.post(
        f"{API}/datasets/{ds}/review",
        headers=auth,
        json={
            "action": "flag",
            "dry_run": True,
            "filter": {"job_id": job_id, "split": "all", "tags": ["ambiguous"]},
        },
    )
    assert dry.status_code == 200, dry.text
    assert dry.json()["matched"] == len(expected)
    prompts = {p["id"]: p["prompt"] for p in every}
    wanted = {prompts[i] for i in expected}
    filtered = _export_rows(client, auth, ds, tag="ambiguous", job_id=job_id, split="all")
    assert filtered == wanted
    # The soft-label export's ambiguous file is the same pairs, and the rest is the complement.
    only = _export_rows(client, auth, ds, soft_labels_job=job_id, ambiguous="only")
    rest = _export_rows(client, auth, ds, soft_labels_job=job_id, ambiguous="exclude")
    assert only == wanted and rest == set(prompts.values()) - wanted


def test_two_reward_models_tag_the_pairs_they_split_on(client, auth, tmp_path) -> None:
    from worker.influence.model import _tiny_backbone

    paths = []
    for seed in (0, 1):
        model, tokenizer = _tiny_backbone(seed)
        model.save_pretrained(tmp_path / f"rm{seed}")
        tokenizer.save_pretrained(tmp_path / f"rm{seed}")
        paths.append(str(tmp_path / f"rm{seed}"))
    ds = _dataset(client, auth, 40)
    body = {
        "model": "tiny",
        "epochs": 1,
        "batch_size": 8,
        "max_length": MAX_LENGTH,
        "device": "cpu",
        "hessian": "exact",
        "methods": ["loss"],
        "reward_models": paths,
    }
    created = client.post(f"{API}/datasets/{ds}/jobs", headers=auth, json=body)
    assert created.status_code == 202, created.text
    job = wait_for_job(client, auth, created.json()["id"], timeout=600)
    assert job["status"] == "succeeded", job["error"]
    scored = _items(client, auth, ds, job_id=job["id"], split="train")
    split = {p["id"] for p in scored if p["scores"]["rm_ambiguous"] == 1}
    margins = [(p["scores"]["rm_margin_1"], p["scores"]["rm_margin_2"]) for p in scored]
    disagree = {p["id"] for p, (a, b) in zip(scored, margins, strict=True) if (a < 0) != (b < 0)}
    assert split == disagree  # two models: ambiguous is exactly "they disagree in sign"
    assert 0 < len(split) < len(scored), "random models should split on some pairs, not all"
    assert job["metrics"]["reward_models"]["ambiguous"] == len(split)
    _check_everywhere(client, auth, ds, job["id"], split)


# Verdicts planted per pair: (chosen shown first, chosen shown second) → the letter answered.
SPLIT_BY_POSITION = ("A", "A")  # picks whatever is shown first: the orders disagree
AGREE_CHOSEN = ("A", "B")
AGREE_REJECTED = ("B", "A")


def _plant_answers(ds: int, body: dict, plan: list[tuple[str, str]]) -> None:
    options = options_of(JudgeCreate(**body))
    params = options.params()
    rows = []
    with session_scope() as session:
        pairs = session.execute(
            select(Pair.prompt, Pair.chosen, Pair.rejected)
            .where(Pair.dataset_id == ds)
            .order_by(Pair.source_index)
        ).all()
        for (prompt, chosen, rejected), letters in zip(pairs, plan, strict=True):
            orders = ((chosen, rejected), (rejected, chosen))
            for (a, b), letter in zip(orders, letters, strict=True):
                messages = options.template.messages(prompt, a, b)
                key = request_key(options.base_url, options.model, messages, params)
                rows.append({"key": key, "model": options.model, "content": letter})
        for row in rows:
            session.execute(upsert(session, JudgeAnswer, row, ["key"]))
        session.commit()


def test_a_judge_tags_the_pairs_whose_orders_disagree(client, auth) -> None:
    n = 12
    ds = _dataset(client, auth, n)
    plan = [(SPLIT_BY_POSITION, AGREE_CHOSEN, AGREE_REJECTED)[k % 3] for k in range(n)]
    # Port 9 (discard) answers nothing: every request must come from the planted cache.
    body = {"base_url": "http://127.0.0.1:9/v1", "model": "planted", "logprobs": False}
    _plant_answers(ds, body, plan)
    launched = client.post(f"{API}/datasets/{ds}/judge", headers=auth, json=body)
    assert launched.status_code == 202, launched.text
    job = wait_for_job(client, auth, launched.json()["id"], timeout=300)
    assert job["status"] == "succeeded", job["error"]
    assert job["metrics"]["requests"] == 0 and job["metrics"]["cache_hits"] == 2 * n
    every = _items(client, auth, ds, job_id=job["id"], split="all")
    by_row = {p["index"]: p["id"] for p in every}
    expected = {by_row[k] for k in range(n) if plan[k] == SPLIT_BY_POSITION}
    assert job["metrics"]["consistency"] == pytest.approx(1 - len(expected) / n, abs=1e-4)
    _check_everywhere(client, auth, ds, job["id"], expected)


def test_a_judge_job_reads_its_launchers_own_key(client, make_user) -> None:
    """The worker reads the launching user's secret (not the job's config): a stored key that
    no longer decrypts fails the job with a message that says what to do."""
    user = make_user()
    auth = user["headers"]
    ds = _dataset(client, auth, 2)
    body = {"base_url": "http://127.0.0.1:9/v1", "model": "planted", "logprobs": False}
    _plant_answers(ds, body, [AGREE_CHOSEN, AGREE_CHOSEN])
    assert client.put(
        f"{API}/me/secrets/judge-api-key", headers=auth, json={"value": "sk-own-1234"}
    ).is_success
    with session_scope() as session:
        row = session.scalars(select(UserSecret).order_by(UserSecret.id.desc())).first()
        assert row is not None
        row.ciphertext = "gAAAAAB-not-under-this-servers-key"
        session.commit()
    launched = client.post(f"{API}/datasets/{ds}/judge", headers=auth, json=body)
    job = wait_for_job(client, auth, launched.json()["id"], timeout=300)
    assert job["status"] == "failed"
    assert "secret_key" in job["error"] and "judge-api-key" in job["error"]
