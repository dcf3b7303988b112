"""The reaper: no job stays queued or running forever.

Celery redelivers a task whose prefork child died (`acks_late` + `reject_on_worker_lost`), and
Redis redelivers what a dead machine never acknowledged after the visibility timeout. The reaper
covers the rest, from the database, in one pass every `reaper_interval_seconds` (a thread of the
API process; `prefaudit reap` runs one pass):

* a running job with a task whose heartbeat is stale (its worker died), or with no live task and
  no activity for `stale_seconds` (a lost message, a chord whose count the broker lost), is
  re-dispatched: its entry task goes out again with `resume=True`, the canvas is sent again, and
  every task whose work exists returns at once while the lost ones run again;
* when the broker lost its data (Redis restarted empty: the marker key this module keeps there is
  gone), every queued job is sent again and every running job re-dispatched;
* a job re-dispatched `max_resumes` times is failed with a message saying why.

Re-sending is always safe: the entry task and every stage claim their work in the database
(worker/jobs/claims.py), so a duplicate finds it done, or running under a live owner, and gives way.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from backend.db import get_sessionmaker
from backend.job_states import FAILED, QUEUED, RUNNING
from backend.models import Job, JobTask, LoginFailure, as_utc, utcnow
from backend.services import search
from backend.services.jobs import send as send_job
from backend.settings import Settings, get_settings
from worker.influence.results import read_metrics, stored_json, with_fields

log = logging.getLogger(__name__)

EPOCH_KEY = "prefaudit:broker-epoch"


def broker_state(settings: Settings | None = None) -> str:
    """'ok' when the broker answers, else 'error: <why>' (for /health)."""
    settings = settings or get_settings()
    try:
        if settings.uses_filesystem_broker:
            folder = settings.broker_folder / "queue"
            if not folder.is_dir():
                return f"error: {folder} is missing"
            return "ok"
        client = _redis(settings)
        client.ping()
        return "ok"
    except Exception as exc:
        return f"error: {type(exc).__name__}: {exc}"


def _redis(settings: Settings) -> Any:
    import redis

    return redis.Redis.from_url(settings.broker_url, socket_timeout=2, socket_connect_timeout=2)


def broker_lost_data(settings: Settings | None = None) -> bool:
    """True when the broker's marker is gone (first pass after a restart that lost its data, or
    the first pass ever: re-sending then is harmless). Sets a fresh marker."""
    settings = settings or get_settings()
    if settings.uses_filesystem_broker:
        marker = Path(settings.broker_folder) / "epoch"
        if marker.exists():
            return False
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(uuid.uuid4().hex)
        return True
    if not settings.broker_url.startswith(("redis://", "rediss://")):
        return False
    client = _redis(settings)
    return bool(client.set(EPOCH_KEY, uuid.uuid4().hex, nx=True))


def reap_once(
    factory: Callable[[], Session] | None = None,
    settings: Settings | None = None,
    send: Callable[[int, bool], Any] | None = None,
) -> dict[str, int]:
    """One pass; returns how many jobs were re-sent, re-dispatched and failed."""
    factory = factory or get_sessionmaker()
    settings = settings or get_settings()
    send = send or (lambda job_id, resume: send_job(job_id, resume=resume))
    counts = {"requeued": 0, "resumed": 0, "failed": 0}
    try:
        lost = broker_lost_data(settings)
    except Exception as exc:
        log.warning("the broker is unreachable (%s); the reaper waits for it", exc)
        return counts
    now = utcnow()
    stale = timedelta(seconds=settings.stale_seconds)
    cutoff = now - stale
    with factory() as session:
        jobs = session.scalars(select(Job).where(Job.status.in_((QUEUED, RUNNING)))).all()
        for job in jobs:
            if job.status == QUEUED:
                # Lost with the broker's data, or (rarely) with a worker that consumed the entry
                # message and died before claiming the job: send it again.
                waited = as_utc(_mark(job, "requeued_at")) or as_utc(job.created_at)
                if lost or (waited is not None and waited < now - 10 * stale):
                    _stamp(job, requeued_at=now.isoformat())
                    session.commit()
                    send(job.id, False)
                    counts["requeued"] += 1
                continue
            if not (lost or _stalled(session, job, cutoff)):
                continue
            resumed_at = as_utc(_mark(job, "resumed_at"))
            if resumed_at is not None and resumed_at > cutoff and not lost:
                continue  # the last re-dispatch is still being picked up
            if job.resumes >= settings.max_resumes:
                session.execute(
                    update(Job)
                    .where(Job.id == job.id, Job.status == RUNNING)
                    .values(
                        status=FAILED,
                        finished_at=now,
                        error=(
                            f"the job's tasks were lost {job.resumes} times (dead workers or a "
                            "broker that lost its data); retry it when the workers are healthy"
                        ),
                    )
                )
                counts["failed"] += 1
                continue
            job.resumes += 1
            _stamp(job, resumed_at=now.isoformat())
            session.commit()
            send(job.id, True)
            counts["resumed"] += 1
        # Failed-login records of any username, kept a day: an attacker's made-up names must
        # not grow the table for ever.
        session.execute(
            delete(LoginFailure).where(
                LoginFailure.last_failure_at < now - timedelta(days=1),
                or_(LoginFailure.locked_until.is_(None), LoginFailure.locked_until < now),
            )
        )
        session.commit()
    if any(counts.values()):
        log.warning("reaper: %s", counts)
    return counts


def _stamp(job: Job, **marks: str) -> None:
    """Record a re-send in the job's metrics (typed: worker/influence/results.py)."""
    stored = read_metrics(job.kind, job.metrics or {})
    job.metrics = stored_json(with_fields(stored, **marks))


def _mark(job: Job, name: str) -> datetime | None:
    value = (job.metrics or {}).get(name)
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _stalled(session: Session, job: Job, cutoff: datetime) -> bool:
    """A task of the job is running with a stale heartbeat, or nothing of it has moved lately."""
    rows = session.execute(
        select(JobTask.status, JobTask.heartbeat_at, JobTask.finished_at).where(
            JobTask.job_id == job.id
        )
    ).all()
    last = as_utc(job.started_at) or as_utc(job.created_at)
    live = False
    for status, beat, finished in rows:
        beat, finished = as_utc(beat), as_utc(finished)
        if status == RUNNING:
            if beat is None or beat < cutoff:
                return True
            live = True
        for moment in (beat, finished):
            if moment is not None and (last is None or moment > last):
                last = moment
    return not live and last is not None and last < cutoff


class Reaper:
    """`reap_once` every `reaper_interval_seconds` on a daemon thread."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.settings.reaper_interval_seconds <= 0 or self._thread is not None:
            return
        # The first pass runs now, before the API takes requests: it sets the broker's marker
        # on a first start, and catches what a broker restart lost while the API was down. Run
        # only after the first interval, it found the marker missing while a job queued since
        # the start was running, and re-dispatched that live job (seen in every embedded run).
        try:
            reap_once(settings=self.settings)
        except Exception:
            log.exception("reaper pass failed")
        self._thread = threading.Thread(target=self._loop, daemon=True, name="reaper")
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.reaper_interval_seconds):
            try:
                reap_once(settings=self.settings)
                search.catch_up()  # search indexes a restart interrupted
            except Exception:
                log.exception("reaper pass failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
