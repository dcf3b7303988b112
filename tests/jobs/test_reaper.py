"""The reaper's rules on real Postgres, with the broker's marker in real Redis; what it sends is
recorded instead of enqueued (tests/jobs/test_faults.py runs it against real dead workers)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.factories import hh_records, jsonl_bytes


@pytest.fixture
def job_factory(client, make_user):
    from sqlalchemy import select

    from backend.db import session_scope
    from backend.models import Job, User

    user = make_user()
    dataset = client.post(
        "/api/v1/datasets",
        headers=user["headers"],
        files={"file": ("hh.jsonl", jsonl_bytes(hh_records(20)))},
        data={"name": "hh"},
    ).json()
    with session_scope() as session:
        owner = session.scalar(select(User.id).where(User.username == user["username"]))

    made: list[int] = []

    def make(status: str, **fields) -> int:
        with session_scope() as session:
            job = Job(
                dataset_id=dataset["id"],
                owner_id=owner,
                kind="audit",
                config={"model": "tiny"},
                status=status,
                **fields,
            )
            session.add(job)
            session.flush()
            made.append(job.id)
            return job.id

    yield make
    # Leave nothing for another test's reaper (and real workers) to pick up.
    with session_scope() as session:
        for job_id in made:
            session.get(Job, job_id).status = "cancelled"


def _task(job_id: int, status: str, beat_ago: float, stage: str = "gradients") -> None:
    from backend.db import session_scope
    from backend.models import JobTask, utcnow

    with session_scope() as session:
        session.add(
            JobTask(
                job_id=job_id,
                stage=stage,
                shard=0,
                status=status,
                heartbeat_at=utcnow() - timedelta(seconds=beat_ago),
                finished_at=utcnow() - timedelta(seconds=beat_ago) if status != "running" else None,
            )
        )


def _reap(settings_update: dict | None = None) -> tuple[dict, list]:
    from backend.services.reaper import reap_once
    from backend.settings import get_settings

    sent: list = []
    settings = get_settings().model_copy(update={"stale_seconds": 30.0, **(settings_update or {})})
    counts = reap_once(settings=settings, send=lambda job_id, resume: sent.append((job_id, resume)))
    return counts, sent


def test_stale_heartbeats_are_resumed_and_live_ones_left_alone(job_factory) -> None:
    from backend.db import session_scope
    from backend.models import Job, utcnow

    _reap()  # the first pass may find the broker's marker missing; from here on it is set
    started = utcnow() - timedelta(minutes=5)
    dead, alive, quiet = (job_factory("running", started_at=started) for _ in range(3))
    _task(dead, "running", beat_ago=120)  # its worker died two minutes ago
    _task(alive, "running", beat_ago=1)
    _task(quiet, "succeeded", beat_ago=120)  # a chord that never fired its body
    counts, sent = _reap()
    resumed = {job_id for job_id, resume in sent if resume}
    assert dead in resumed and quiet in resumed and alive not in resumed
    assert counts["resumed"] >= 2
    with session_scope() as session:
        assert session.get(Job, dead).resumes == 1
    # Just re-dispatched: not again on the next pass while the new delivery is picked up.
    _, sent = _reap()
    assert dead not in {job_id for job_id, _ in sent}


def test_a_job_lost_too_often_fails_with_a_reason(job_factory) -> None:
    from backend.db import session_scope
    from backend.models import Job, utcnow

    _reap()
    job_id = job_factory("running", started_at=utcnow() - timedelta(minutes=5), resumes=5)
    _task(job_id, "running", beat_ago=120)
    counts, sent = _reap({"max_resumes": 5})
    assert job_id not in {j for j, _ in sent}
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job.status == "failed" and "lost 5 times" in job.error


def test_queued_jobs_are_sent_again_when_the_broker_lost_its_data(job_factory) -> None:
    import redis

    from backend.services.reaper import EPOCH_KEY
    from backend.settings import get_settings

    _reap()
    job_id = job_factory("queued")
    _, sent = _reap()
    assert (job_id, False) not in sent  # the broker still has its message
    redis.Redis.from_url(get_settings().broker_url).delete(EPOCH_KEY)  # Redis came back empty
    _, sent = _reap()
    assert (job_id, False) in sent


def test_the_first_pass_runs_at_start_so_a_new_job_is_not_taken_for_lost(
    job_factory, tmp_path
) -> None:
    """Embedded mode (filesystem broker): the marker exists as soon as the reaper starts, so a
    job that starts running right after is left alone by the next pass (it used to be resumed:
    the first pass, after the interval, found no marker and took the broker for emptied)."""
    from backend.services.reaper import Reaper, broker_lost_data
    from backend.settings import get_settings

    settings = get_settings().model_copy(
        update={
            "broker_url": "filesystem://",
            "data_dir": tmp_path,
            "reaper_interval_seconds": 3600.0,
            "stale_seconds": 30.0,
        }
    )
    assert settings.uses_filesystem_broker
    (settings.broker_folder / "queue").mkdir(parents=True, exist_ok=True)
    reaper = Reaper(settings)
    reaper.start()
    try:
        assert (settings.broker_folder / "epoch").exists()
        job_id = job_factory("running", started_at=None)
        _task(job_id, "running", beat_ago=1)  # a live worker
        assert broker_lost_data(settings) is False
        counts, sent = _reap({"broker_url": "filesystem://", "data_dir": tmp_path})
        assert counts["resumed"] == 0 and (job_id, True) not in sent
    finally:
        reaper.stop()
