"""Several outside reward models on one audit, through the API and real Celery workers: two `tiny`
audits save their models, a third audit names both; each model's margin column, the mean,
spread, votes and the ambiguous flag are checked against margins computed here by loading each
saved model directly. Also the launch's refusals (a missing directory, an audit that saved no
model, too many models)."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from tests.factories import API, hh_records, jsonl_bytes, upload, wait_for_job
from tests.jobs.saved_models import MAX_LENGTH, TINY, launch_audit, save_two_models
from worker.influence.data import Pair as EnginePair


def _train_items(client, headers: dict, dataset_id: int, job_id: int) -> list[dict]:
    page = client.get(
        f"{API}/datasets/{dataset_id}/pairs",
        headers=headers,
        params={"job_id": job_id, "limit": 1000, "split": "train"},
    )
    assert page.status_code == 200, page.text
    return [item for item in page.json()["items"] if item["scores"].get("loss") is not None]


def _expected(paths: list[str], items: list[dict]) -> np.ndarray:
    """Each saved model's margins on the items, loaded here (not by the worker)."""
    import torch

    from worker.influence.reward_models import score_pairs

    pairs = [EnginePair(i["prompt"], i["chosen"], i["rejected"]) for i in items]
    device = torch.device("cpu")
    return np.stack([score_pairs(p, pairs, MAX_LENGTH, device, batch_size=7) for p in paths])


def _check_columns(items: list[dict], margins: np.ndarray) -> None:
    k = len(margins)
    got = np.array([[item["scores"][f"rm_margin_{j + 1}"] for item in items] for j in range(k)])
    np.testing.assert_allclose(got, margins, rtol=1e-4, atol=1e-5)
    for j in range(k, 4):
        assert all(item["scores"][f"rm_margin_{j + 1}"] is None for item in items)
    mean, spread = margins.mean(axis=0), margins.std(axis=0)
    against = (margins < 0).sum(axis=0)
    column = {
        name: np.array([item["scores"][name] for item in items], dtype=float)
        for name in ("rm_mean", "rm_spread", "rm_votes_against", "rm_ambiguous")
    }
    np.testing.assert_allclose(column["rm_mean"], mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(column["rm_spread"], spread, rtol=1e-4, atol=1e-5)
    assert np.array_equal(column["rm_votes_against"], against)
    # Two models: ambiguous is exactly "they disagree in sign" (see reward_models.py).
    assert np.array_equal(column["rm_ambiguous"] == 1, (against > 0) & (against < k))


@pytest.fixture(scope="module")
def saved(client, celery_worker_process) -> dict:
    """A dataset and two tiny LoRA audits of it that saved their models (seeds 0 and 1)."""
    from backend.db import session_scope
    from backend.services.users import create_user, issue_token

    with session_scope() as session:
        user = create_user(session, f"rm-{uuid.uuid4().hex[:8]}", "correct-horse")
        headers = {"Authorization": f"Bearer {issue_token(session, user, 'test')}"}
    dataset = upload(client, headers, jsonl_bytes(hh_records(90)), "hh-90.jsonl").json()
    jobs = save_two_models(client, headers, dataset["id"])
    return {"headers": headers, "dataset": dataset, "jobs": jobs}


def test_saved_models_are_listed(client, saved) -> None:
    listed = client.get(f"{API}/saved-models", headers=saved["headers"])
    assert listed.status_code == 200, listed.text
    refs = {m["ref"]: m for m in listed.json()}
    for job in saved["jobs"]:
        entry = refs[f"job:{job['id']}"]
        assert entry["path"] == job["metrics"]["model_dir"]
        assert entry["dataset_id"] == saved["dataset"]["id"] and entry["model"] == "tiny"
    assert client.get(f"{API}/saved-models").status_code == 401


@pytest.mark.parametrize(
    "flow",
    [
        pytest.param({"mode": "head", "shard_size": 32}, id="features-canvas"),
        pytest.param({"hessian": "exact"}, id="single-task"),
        # corrected_loss: finalize's canary step reads the `loss` column, which it loads only
        # where a finaliser reads it (methods=["loss"] alone fails there: KeyError 'loss').
        pytest.param({"shard_size": 32, "methods": ["loss", "corrected_loss"]}, id="lora-canvas"),
    ],
)
def test_two_reward_models_vote(client, saved, flow: dict) -> None:
    headers, dataset = saved["headers"], saved["dataset"]
    refs = [f"job:{job['id']}" for job in saved["jobs"]]
    paths = [job["metrics"]["model_dir"] for job in saved["jobs"]]
    options = {"methods": ["loss"], "reward_models": refs, **flow}
    job = launch_audit(client, headers, dataset["id"], **options)
    assert job["config"]["reward_models"] == paths  # job:<id> resolved at launch
    items = _train_items(client, headers, dataset["id"], job["id"])
    assert len(items) == job["metrics"]["n_train"]
    margins = _expected(paths, items)
    _check_columns(items, margins)
    summary = job["metrics"]["reward_models"]
    assert [m["model"] for m in summary["models"]] == paths
    assert [m["slot"] for m in summary["models"]] == ["rm_margin_1", "rm_margin_2"]
    against = (margins < 0).sum(axis=0)
    assert summary["votes_against"] == [int((against == v).sum()) for v in range(3)]
    assert summary["ambiguous"] == int(((against > 0) & (against < 2)).sum())
    for slot, model_margins in zip(summary["models"], margins, strict=True):
        assert slot["agreement"] == pytest.approx(float((model_margins > 0).mean()))
    # Every flow tags the same pairs `ambiguous` (the job's tags) as its rm_ambiguous column.
    tagged = client.get(
        f"{API}/datasets/{dataset['id']}/pairs",
        headers=headers,
        params={"job_id": job["id"], "tag": "ambiguous", "split": "all", "limit": 1000},
    ).json()["items"]
    split = {item["id"] for item in items if item["scores"]["rm_ambiguous"] == 1}
    assert {item["id"] for item in tagged} == split and len(split) == summary["ambiguous"]
    if "shard_size" in flow:  # sharded: one rewards task per (model, block of 32 pairs)
        tasks = client.get(f"{API}/jobs/{job['id']}", headers=headers).json()
        assert tasks["metrics"]["engine"].startswith("sharded")
        from sqlalchemy import func, select

        from backend.db import session_scope
        from backend.models import JobTask

        with session_scope() as session:
            done = session.scalar(
                select(func.count()).where(
                    JobTask.job_id == job["id"],
                    JobTask.stage == "rewards",
                    JobTask.status == "succeeded",
                )
            )
        assert done == 2 * int(np.ceil(len(items) / 32))
    # The columns rank and filter like any other: sorted by the models' mean margin.
    page = client.get(
        f"{API}/datasets/{dataset['id']}/pairs",
        headers=headers,
        params={"job_id": job["id"], "sort": "rm_mean", "limit": 1000, "split": "train"},
    ).json()
    means = [i["scores"]["rm_mean"] for i in page["items"] if i["scores"]["rm_mean"] is not None]
    assert len(means) == len(items) and means == sorted(means)


def test_launch_refuses_bad_reward_models(client, saved, tmp_path) -> None:
    headers, dataset = saved["headers"], saved["dataset"]
    url = f"{API}/datasets/{dataset['id']}/jobs"
    missing = tmp_path / "no-such-model"
    refused = client.post(url, headers=headers, json={**TINY, "reward_models": [str(missing)]})
    assert refused.status_code == 422
    assert str(missing) in refused.text and "reward_models[0]" in refused.text

    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    refused = client.post(
        url, headers=headers, json={**TINY, "reward_models": ["job:999999", str(not_a_model)]}
    )
    assert refused.status_code == 422  # no audit of this user
    assert "reward_models[0]" in refused.text

    refused = client.post(url, headers=headers, json={**TINY, "reward_models": [str(not_a_model)]})
    assert refused.status_code == 422 and "config.json" in refused.text

    nothing_saved = client.post(url, headers=headers, json={**TINY, "methods": ["loss"]})
    assert nothing_saved.status_code == 202
    job_id = nothing_saved.json()["id"]
    wait_for_job(client, headers, job_id)
    refused = client.post(url, headers=headers, json={**TINY, "reward_models": [f"job:{job_id}"]})
    assert refused.status_code == 422 and "saved no model" in refused.text

    five = [f"job:{job['id']}" for job in saved["jobs"]] + ["a/b", "c/d", "e/f"]
    refused = client.post(url, headers=headers, json={**TINY, "reward_models": five})
    assert refused.status_code == 422 and "reward_models" in refused.text
    twice = [f"job:{saved['jobs'][0]['id']}"] * 2
    refused = client.post(url, headers=headers, json={**TINY, "reward_models": twice})
    assert refused.status_code == 422 and "twice" in refused.text
