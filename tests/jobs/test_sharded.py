"""The sharded engine (worker/jobs/) against the single-task engine, on real Postgres.

The stages run here in order, in this process, exactly as the Celery tasks call them; the Celery
canvas itself, dead workers and cancels are tested in tests/jobs/test_faults.py."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select

from tests.factories import hh_records, jsonl_bytes

API = "/api/v1"

EXACT_METHODS = [
    "loss",
    "gradient_similarity",
    "influence",
    "self_influence",
    "corrected_loss",
    "datainf",
    "length",
]


def _dataset(client, headers, n: int) -> dict:
    response = client.post(
        f"{API}/datasets",
        headers=headers,
        files={"file": (f"hh-{n}.jsonl", jsonl_bytes(hh_records(n)))},
        data={"name": f"hh-{n}"},
    )
    assert response.status_code == 201, response.text
    return response.json()


def _job(dataset_id: int, owner_id: int, options: dict) -> int:
    """A running audit row, without sending it to the broker (the stages run inline)."""
    from backend.db import session_scope
    from backend.models import Job, utcnow
    from backend.schemas import AuditCreate

    body = AuditCreate.model_validate(options)
    with session_scope() as session:
        job = Job(
            dataset_id=dataset_id,
            owner_id=owner_id,
            kind="audit",
            config=body.model_dump(mode="json"),
            status="running",
            stage="queued",
            progress=0.0,
            started_at=utcnow(),
        )
        session.add(job)
        session.flush()
        return job.id


def run_inline(job_id: int) -> None:
    from backend.db import get_sessionmaker
    from worker.jobs import lora
    from worker.jobs.claims import run_stage
    from worker.jobs.context import artifact_store, load_context
    from worker.jobs.finalize import finalize

    assert run_stage(job_id, "train", 0, lora.train) == "ran"
    context = load_context(get_sessionmaker(), job_id)
    plan = artifact_store().get_arrays(context.key("plan.npz"))
    count = int(np.ceil(len(plan["order"]) / int(plan["shard_size"])))
    for s in range(count):
        run_stage(job_id, "gradients", s, lambda c, r, s=s: lora.gradients(c, r, s))
    run_stage(job_id, "reduce", 0, lora.reduce)
    for s in range(count):
        run_stage(job_id, "scores", s, lambda c, r, s=s: lora.scores(c, r, s))
    run_stage(job_id, "finalize", 0, finalize)


def _scores(job_id: int) -> dict[int, dict]:
    from backend.db import session_scope
    from backend.models import Score
    from worker.influence.columns import SCORE_COLUMNS

    with session_scope() as session:
        rows = session.scalars(
            select(Score).where(Score.job_id == job_id, Score.split == "train")
        ).all()
        return {r.pair_id: {c: getattr(r, c) for c in SCORE_COLUMNS} for r in rows}


def _user_id(username: str) -> int:
    from backend.db import session_scope
    from backend.models import User

    with session_scope() as session:
        return session.scalar(select(User.id).where(User.username == username))


def _reference(dataset_id: int, options: dict):
    """The single-task engine on the same split of the same pairs."""
    from backend.db import session_scope
    from backend.schemas import AuditCreate
    from worker.influence.audit import run_audit
    from worker.influence.data import split_validation
    from worker.jobs.store import load_pairs

    body = AuditCreate.model_validate(options)
    config = body.engine_config()
    with session_scope() as session:
        ids, pairs = load_pairs(session, dataset_id)
    train_pos, val_pos = split_validation(len(pairs), body.val_fraction, config.seed)
    result = run_audit([pairs[i] for i in train_pos], [pairs[i] for i in val_pos], config)
    return [ids[i] for i in train_pos], result


@pytest.mark.parametrize("shard_size", [32, 1024])
def test_sharded_scores_equal_the_single_task_engine(client, make_user, shard_size) -> None:
    user = make_user()
    dataset = _dataset(client, user["headers"], 160)
    options = {
        "model": "tiny",
        "methods": EXACT_METHODS,
        "default_method": "influence",
        "solver": "woodbury",
        "shard_size": shard_size,
    }
    job_id = _job(dataset["id"], _user_id(user["username"]), options)
    run_inline(job_id)
    job = client.get(f"{API}/jobs/{job_id}", headers=user["headers"]).json()
    assert job["status"] == "succeeded", job["error"]
    metrics = job["metrics"]
    assert metrics["engine"] == "sharded" and metrics["gradient_space"] == "exact"
    assert metrics["shards"] == (5 if shard_size == 32 else 1)

    train_ids, reference = _reference(dataset["id"], options)
    sharded = _scores(job_id)
    assert sorted(sharded) == sorted(train_ids)  # exactly one row per training pair
    for column, expected in reference.scores.items():
        got = np.array([sharded[pid][column] for pid in train_ids], dtype=np.float64)
        scale = max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6 * scale, err_msg=column)
    assert (
        metrics["default_method"] == reference.metrics.model_dump()["default_method"] == "influence"
    )
    assert metrics["val_loss"] == pytest.approx(
        reference.metrics.model_dump()["val_loss"], rel=1e-9
    )


def test_a_stage_that_runs_twice_writes_one_row_per_pair(client, make_user) -> None:
    from backend.db import session_scope
    from backend.models import JobTask, Score
    from worker.jobs import lora
    from worker.jobs.claims import run_stage

    user = make_user()
    dataset = _dataset(client, user["headers"], 80)
    job_id = _job(dataset["id"], _user_id(user["username"]), {"model": "tiny", "shard_size": 32})
    run_inline(job_id)
    before = _scores(job_id)
    with session_scope() as session:
        # Forget that scores shard 0 ran: a redelivery does it again.
        row = session.scalar(
            select(JobTask).where(
                JobTask.job_id == job_id, JobTask.stage == "scores", JobTask.shard == 0
            )
        )
        row.status = "queued"
    # The job is finished, so a late duplicate stops without writing...
    assert run_stage(job_id, "scores", 0, lambda c, r: lora.scores(c, r, 0)) == "stopped"
    with session_scope() as session:
        from backend.models import Job

        session.get(Job, job_id).status = "running"
    # ...and one that runs while the job runs upserts the same rows.
    assert run_stage(job_id, "scores", 0, lambda c, r: lora.scores(c, r, 0)) == "ran"
    with session_scope() as session:
        count = session.scalar(select(func.count()).where(Score.job_id == job_id))
    with session_scope() as session:
        session.get(Job, job_id).status = "succeeded"
    assert count == 80  # 72 train + 8 validation rows, no duplicates
    after = _scores(job_id)
    assert after.keys() == before.keys()
    for pid in before:
        assert after[pid]["loss"] == before[pid]["loss"]


def test_exact_gradients_too_many_for_a_dense_curvature_are_scored_in_memory(
    client, make_user
) -> None:
    """p > 8192 (LoRA rank 64 on the tiny model) without a projection: the reduction holds every
    exact gradient and scores them as the single-task engine does, with the same result."""
    user = make_user()
    dataset = _dataset(client, user["headers"], 100)
    options = {"model": "tiny", "lora_r": 64, "shard_size": 32, "solver": "woodbury"}
    job_id = _job(dataset["id"], _user_id(user["username"]), options)
    run_inline(job_id)
    job = client.get(f"{API}/jobs/{job_id}", headers=user["headers"]).json()
    assert job["status"] == "succeeded", job["error"]
    assert job["metrics"]["gradient_space"] == "in_memory"
    assert job["metrics"]["n_trainable_params"] > 8192
    train_ids, reference = _reference(dataset["id"], options)
    sharded = _scores(job_id)
    for column, expected in reference.scores.items():
        got = np.array([sharded[pid][column] for pid in train_ids], dtype=np.float64)
        scale = max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6 * scale, err_msg=column)


def test_projected_audit_runs_in_bounded_dimensions(client, make_user) -> None:
    user = make_user()
    dataset = _dataset(client, user["headers"], 100)
    options = {"model": "tiny", "projection_dim": 512, "shard_size": 32}
    job_id = _job(dataset["id"], _user_id(user["username"]), options)
    run_inline(job_id)
    job = client.get(f"{API}/jobs/{job_id}", headers=user["headers"]).json()
    assert job["status"] == "succeeded", job["error"]
    metrics = job["metrics"]
    assert metrics["gradient_space"] == "projected"
    projection = metrics["projection"]
    # About k: the head is kept whole and each factor split rounds its share.
    assert projection["kind"] == "kronecker" and 256 <= projection["dim"] <= 1.1 * 512
    assert projection["memory_bytes"] < projection["dense_memory_bytes"]
    assert metrics["influence"]["dimension"] == projection["dim"]
    # k = 512 is below the sketch size whose influence ranking was measured: the job says so.
    assert any("512-dimensional" in w and "rough ranking" in w for w in metrics["warnings"])
    assert metrics["influence"]["damping_reference"] == "top_eigenvalue"
    scores = _scores(job_id)
    assert len(scores) == 90
    assert all(
        np.isfinite(s["harm_influence"]) and s["harm_self_influence"] > 0 for s in scores.values()
    )


def test_head_mode_features_sharded_equal_the_single_task_engine(client, make_user) -> None:
    """Head mode as chord(features shards) → head: every score equals the single-task engine's
    (the features are the same numbers, stored in fp32), one row per training pair."""
    from backend.db import get_sessionmaker
    from worker.jobs import head
    from worker.jobs.canvas import canvas_kind
    from worker.jobs.claims import run_stage
    from worker.jobs.context import effective_shard_size, feature_blocks, load_context

    user = make_user()
    dataset = _dataset(client, user["headers"], 150)
    options = {
        "model": "tiny",
        "mode": "head",
        "methods": ["loss", "gradient_similarity", "influence", "self_influence", "length"],
        "default_method": "influence",
        "shard_size": 40,
    }
    job_id = _job(dataset["id"], _user_id(user["username"]), options)
    context = load_context(get_sessionmaker(), job_id)
    assert canvas_kind(context.config) == "features"
    blocks = feature_blocks(135, 15, effective_shard_size(context.config))
    assert [b[0] for b in blocks] == ["train"] * 3 + ["val"]  # blocks of 64 pairs (chunk 32)
    for s in range(len(blocks)):
        assert run_stage(job_id, "features", s, lambda c, r, s=s: head.features(c, r, s)) == "ran"
    assert run_stage(job_id, "head", 0, head.head) == "ran"
    job = client.get(f"{API}/jobs/{job_id}", headers=user["headers"]).json()
    assert job["status"] == "succeeded", job["error"]
    assert job["metrics"]["engine"] == "sharded features"
    assert job["metrics"]["shards"] == len(blocks)

    train_ids, reference = _reference(dataset["id"], options)
    sharded = _scores(job_id)
    assert sorted(sharded) == sorted(train_ids)
    for column, expected in reference.scores.items():
        got = np.array([sharded[pid][column] for pid in train_ids], dtype=np.float64)
        scale = max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6 * scale, err_msg=column)
    # A rerun of the head task reads the same feature artifacts; a done stage returns at once.
    assert run_stage(job_id, "features", 0, lambda c, r: head.features(c, r, 0)) == "done"


@pytest.mark.parametrize("kind", ["lora", "features"])
def test_the_canvas_names_every_task_before_it_is_sent(kind) -> None:
    """dispatch records a row per (stage, shard) from these ids: all of them must be known
    before the canvas goes out (a group built from a generator stays lazy)."""
    from worker.jobs.canvas import canvas

    _, ids = canvas(7, 20, kind)
    stages = [stage for stage, _ in ids]
    if kind == "features":
        assert stages.count("features") == 20 and stages.count("head") == 1
    else:
        assert stages.count("gradients") == stages.count("scores") == 20
        assert {"train", "reduce", "finalize"} <= set(stages)
    assert len(set(ids.values())) == len(ids)


@pytest.mark.parametrize(
    ("space", "extra"),
    [
        ("exact", {}),
        # Without influence, the influence columns are group's own first-order effects (damped
        # by `damping`, not `influence_damping`) on both engines.
        ("exact", {"methods": ["loss", "group"]}),
        ("in_memory", {"lora_r": 64}),
        ("projected", {}),
    ],
)
def test_group_method_on_the_sharded_engine(client, make_user, space, extra) -> None:
    """The greedy group selection over the shards equals the single-task engine's (exact and
    in-memory spaces; the projected one runs in k dimensions), interactions included."""
    from backend.db import session_scope
    from backend.models import Interaction

    user = make_user()
    dataset = _dataset(client, user["headers"], 100)
    options = {
        "model": "tiny",
        "methods": ["loss", "influence", "group"],
        "default_method": "group",
        "solver": "woodbury",
        "shard_size": 32,
        "prune_budget": 9,
        **extra,
    }
    if space == "projected":
        options["projection_dim"] = 256
    job_id = _job(dataset["id"], _user_id(user["username"]), options)
    run_inline(job_id)
    job = client.get(f"{API}/jobs/{job_id}", headers=user["headers"]).json()
    assert job["status"] == "succeeded", job["error"]
    metrics = job["metrics"]
    assert metrics["gradient_space"] == space
    assert metrics["group"]["candidates"] == 90 and metrics["group"]["budget"] == 9
    sharded = _scores(job_id)
    order = np.array([s["group_order"] for s in sharded.values()], dtype=np.float64)
    assert sorted(order) == list(range(1, 91))
    assert all(s["harm"] == s["harm_group"] for s in sharded.values())
    with session_scope() as session:
        links = {
            (r.pair_id, r.other_id): r.kappa
            for r in session.scalars(select(Interaction).where(Interaction.job_id == job_id))
        }
    assert len(links) == metrics["group"]["interactions_kept"] > 0
    if space == "projected":
        return
    train_ids, reference = _reference(dataset["id"], options)
    for column in ("group_order", "group_gain", "harm_group", "removal_effect_influence"):
        got = np.array([sharded[pid][column] for pid in train_ids], dtype=np.float64)
        expected = reference.scores[column]
        scale = max(1e-12, float(np.abs(expected).max()))
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6 * scale, err_msg=column)
    expected_links = {(train_ids[i], train_ids[j]): k for i, j, k in reference.interactions}
    assert links.keys() == expected_links.keys()
    for key, kappa in expected_links.items():
        assert links[key] == pytest.approx(kappa, rel=1e-6, abs=1e-12)
