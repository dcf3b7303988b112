"""Claims and heartbeats: a task owns its `job_tasks` row while it runs, beats to keep it, and
notices a cancelled job; `run_stage` wraps a stage in that claim and records the outcome.

Every task is idempotent and claims its row before it works: a redelivered task whose work is
done returns at once, one whose previous owner died takes over, one that finds a live owner waits
for it. The reaper (backend/services/reaper.py) re-dispatches a job whose tasks stopped beating.
"""

from __future__ import annotations

import logging
import math
import os
import resource
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.db import get_sessionmaker
from backend.job_states import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED
from backend.models import Job, JobTask, as_utc, utcnow
from backend.settings import get_settings
from backend.storage import eta
from worker.influence.train import Cancelled
from worker.jobs import stages, store
from worker.jobs.context import JobContext, load_context
from worker.jobs.reporter import start_timing

log = logging.getLogger(__name__)


_WARM: set[str] = set()
"""Stages this process has run: the first run of a stage in a process pays one-time costs (the
model read from disk, lazy imports) that its later runs do not, so its job's timing is marked
cold and recent warm jobs' rates are preferred (backend.storage.eta.stage_rates)."""


class Busy(Exception):
    """Another live process runs this task; this delivery gives way."""


def owner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_alive(owner: str | None) -> bool:
    """False only when the owner ran on this host and its process is gone."""
    if not owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class TaskRun:
    """The claim on one `job_tasks` row, its heartbeat thread, and the job's cancel flag."""

    def __init__(
        self,
        factory: Callable[[], Session],
        job_id: int,
        stage: str,
        shard: int = 0,
        celery_id: str | None = None,
    ) -> None:
        self.factory = factory
        self.job_id, self.stage, self.shard = job_id, stage, shard
        self.celery_id = celery_id
        self.owner = f"{owner_name()}:{uuid.uuid4().hex[:6]}"
        self.settings = get_settings()
        self.fraction = 0.0
        self.pairs = 0
        self.cold = False
        self._cancelled = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.perf_counter()
        self.row_id: int | None = None
        self.label = stages.label(stage)  # named in a failure's message

    # The owner is host:pid:nonce; liveness looks at host:pid.
    def _alive(self, owner: str | None) -> bool:
        return _owner_alive(owner.rsplit(":", 1)[0] if owner and owner.count(":") >= 2 else owner)

    def claim(self) -> str:
        """'run' (this process owns the task now), 'done' (its work exists) or 'stop' (the job
        is finished or cancelled). Waits while a live owner runs it, up to the stale time."""
        deadline = time.monotonic() + self.settings.stale_seconds + self.settings.heartbeat_seconds
        while True:
            outcome = self._try_claim()
            if outcome != "busy":
                if outcome == "run":
                    self.cold = self.stage not in _WARM
                    _WARM.add(self.stage)
                    self._start_heartbeat()
                return outcome
            if time.monotonic() > deadline:
                raise Busy(f"{self.stage}[{self.shard}] of job {self.job_id} is still running")
            time.sleep(min(1.0, self.settings.heartbeat_seconds))

    def _row(self, session: Session) -> JobTask:
        row = session.scalar(
            select(JobTask).where(
                JobTask.job_id == self.job_id,
                JobTask.stage == self.stage,
                JobTask.shard == self.shard,
            )
        )
        if row is not None:
            return row
        row = JobTask(job_id=self.job_id, stage=self.stage, shard=self.shard, status=QUEUED)
        session.add(row)
        try:
            session.commit()
        except IntegrityError:  # another delivery created it first
            session.rollback()
            return self._row(session)
        return row

    def _try_claim(self) -> str:
        with self.factory() as session:
            job_status = session.scalar(select(Job.status).where(Job.id == self.job_id))
            if job_status is None or job_status in (CANCELLED, FAILED):
                return "stop"
            row = self._row(session)
            self.row_id = row.id
            if row.status == SUCCEEDED:
                return "done"
            if job_status == SUCCEEDED:
                return "stop"
            now = utcnow()
            cutoff = now - timedelta(seconds=self.settings.stale_seconds)
            beat = as_utc(row.heartbeat_at)
            live = row.status == RUNNING and beat is not None and beat > cutoff
            if live and self._alive(row.owner):
                return "busy"
            # Compare-and-set on what was read: two takers never both win.
            taken = session.execute(
                update(JobTask)
                .where(
                    JobTask.id == row.id,
                    JobTask.status == row.status,
                    (JobTask.owner == row.owner)
                    if row.owner is not None
                    else JobTask.owner.is_(None),
                )
                .values(
                    status=RUNNING,
                    owner=self.owner,
                    celery_id=self.celery_id or row.celery_id,
                    attempts=JobTask.attempts + 1,
                    started_at=now,
                    heartbeat_at=now,
                    progress=0.0,
                    error=None,
                )
            ).rowcount  # type: ignore[attr-defined]
            session.commit()
            return "run" if taken else "busy"

    def _start_heartbeat(self) -> None:
        self._started = time.perf_counter()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="heartbeat")
        self._thread.start()

    def _beat(self) -> None:
        interval = self.settings.heartbeat_seconds
        while not self._stop.wait(interval):
            try:
                self.write_heartbeat()
            except Exception:  # a database hiccup must not kill the task; the next beat retries
                log.exception(
                    "heartbeat of job %s %s[%s] failed", self.job_id, self.stage, self.shard
                )

    def write_heartbeat(self) -> None:
        with self.factory() as session:
            session.execute(
                update(JobTask)
                .where(JobTask.id == self.row_id, JobTask.owner == self.owner)
                .values(heartbeat_at=utcnow(), progress=self.fraction, pairs=self.pairs)
            )
            status = session.scalar(select(Job.status).where(Job.id == self.job_id))
            if status != RUNNING:
                self._cancelled.set()
            elif self.stage in stages.CANVAS_STAGES:
                update_job_progress(session, self.job_id, cold=self.cold)
            session.commit()

    def progress(self, fraction: float, message: str | None = None) -> None:
        if not math.isnan(fraction):
            self.fraction = max(0.0, min(1.0, fraction))

    def should_cancel(self) -> bool:
        return self._cancelled.is_set()

    def finish(self, status: str, error: str | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self.factory() as session:
            session.execute(
                update(JobTask)
                .where(JobTask.id == self.row_id, JobTask.owner == self.owner)
                .values(
                    status=status,
                    progress=1.0 if status == SUCCEEDED else self.fraction,
                    finished_at=utcnow(),
                    heartbeat_at=utcnow(),
                    seconds=time.perf_counter() - self._started,
                    peak_rss_mb=peak_rss_mb(),
                    pairs=self.pairs,
                    error=error,
                )
            )
            if status == SUCCEEDED and self.stage in stages.CANVAS_STAGES:
                update_job_progress(session, self.job_id, cold=self.cold)
            elif status == SUCCEEDED and self.stage == "job":
                _end_timing(session, self.job_id)
            session.commit()


def _end_timing(session: Session, job_id: int) -> None:
    """End the last stage of a single-task job's timing: it finished now."""
    timing = session.scalar(select(Job.timing).where(Job.id == job_id))
    if timing:
        ended = eta.finish(dict(timing), time.time())
        session.execute(update(Job).where(Job.id == job_id).values(timing=ended))


def _work_done(rows: Sequence[Any], total: float | None) -> float:
    """The fraction of a stage's work done: its tasks' fractions weighted by their pairs, over
    the stage's `total` pairs while some task has not said its size (without a total, such a
    task counts as the mean size of the others): a small last shard, the validation block, is
    not half the stage."""
    fractions = [1.0 if r.status == SUCCEEDED else r.progress or 0.0 for r in rows]
    known = [r.pairs for r in rows if r.pairs]
    if not known:
        return sum(fractions) / len(fractions)
    done = sum(f * (r.pairs or 0) for f, r in zip(fractions, rows, strict=True))
    if len(known) == len(rows):
        return done / sum(known)
    unknown = (len(rows) - len(known)) * sum(known) / len(known)
    return min(1.0, done / (max(total, sum(known)) if total else sum(known) + unknown))


def update_job_progress(session: Session, job_id: int, cold: bool = False) -> None:
    """The job's one progress figure, stage and timing, from its task rows (weighted by stage);
    `cold`: the calling task is its process's first run of its stage."""
    rows = session.execute(
        select(
            JobTask.stage,
            JobTask.status,
            JobTask.progress,
            JobTask.pairs,
            JobTask.started_at,
            JobTask.finished_at,
        ).where(JobTask.job_id == job_id)
    ).all()
    if not rows:
        return
    flow = "features" if any(r.stage == "features" for r in rows) else "lora"
    timing = session.scalar(select(Job.timing).where(Job.id == job_id))
    timing = dict(timing) if timing else start_timing(session, job_id, flow)
    units = timing["units"] if timing else {}
    per_stage: dict[str, float] = {
        stage: _work_done([r for r in rows if r.stage == stage], units.get(stage))
        for stage in {r.stage for r in rows}
    }
    total = 0.0
    current = None
    weights = stages.weights(flow)
    for stage, weight in weights.items():
        done = per_stage.get(stage, 0.0)
        total += weight * done
        if current is None and done < 1.0:
            current = stage
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == RUNNING)
        .values(progress=min(0.999, total), stage=stages.label(current or list(weights)[-1]))
    )
    if timing is not None:
        timing["cold"] = bool(timing.get("cold")) or cold
        _canvas_timing(session, job_id, timing, flow, current, per_stage, rows)


def _canvas_timing(
    session: Session,
    job_id: int,
    timing: eta.Timing,
    flow: str,
    current: str | None,
    per_stage: dict[str, float],
    rows: Sequence[Any],
) -> None:
    """The canvas job's timing: the current stage's work done over its tasks now, its start
    the first of its tasks' starts, a finished stage's end the last of its tasks' ends."""
    stage = current or list(stages.weights(flow))[-1]
    eta.record(timing, stage, per_stage.get(stage, 0.0), time.time())

    def moment(value: Any) -> float | None:
        return as_utc(value).timestamp() if value is not None else None  # type: ignore[union-attr]

    for name, entry in timing["stages"].items():
        starts = [moment(r.started_at) for r in rows if r.stage == name and r.started_at]
        ends = [moment(r.finished_at) for r in rows if r.stage == name]
        if starts:
            entry["start"] = min(s for s in starts if s is not None)
        if (name != stage or current is None) and ends and None not in ends:
            entry["end"] = max(e for e in ends if e is not None)
    session.execute(update(Job).where(Job.id == job_id).values(timing=timing))


def run_stage(
    job_id: int,
    stage: str,
    shard: int,
    work: Callable[[JobContext, TaskRun], None],
    celery_id: str | None = None,
    factory: Callable[[], Session] | None = None,
) -> str:
    """Claim the task, run `work`, record the outcome. Returns 'done', 'ran' or 'stopped'.

    A failure of the work fails the job (with the stage in the message) and returns 'stopped':
    the task itself succeeds, so Celery does not retry a deterministic error.
    """
    factory = factory or get_sessionmaker()
    run = TaskRun(factory, job_id, stage, shard, celery_id)
    outcome = run.claim()
    if outcome == "done":
        return "done"
    if outcome == "stop":
        return "stopped"
    try:
        context = load_context(factory, job_id)
        work(context, run)
    except Cancelled:
        run.finish(CANCELLED)
        return "stopped"
    except Exception as exc:
        log.exception("job %s: %s[%s] failed", job_id, stage, shard)
        message = f"{type(exc).__name__} during {run.label}: {exc}"
        run.finish(FAILED, message)
        store.finish_job(
            factory, job_id, status=FAILED, error=message, details=traceback.format_exc()
        )
        return "stopped"
    run.finish(SUCCEEDED)
    return "ran"


def await_stage(run: TaskRun, stage: str, count: int, timeout: float | None = None) -> None:
    """Wait until all `count` tasks of `stage` succeeded.

    A chord fires its body when its count of finished members reaches the group's size; a
    member delivered twice (a redelivery after its worker died mid-acknowledgement) can count
    twice and fire it early, so the body checks the database before it reads any artifact. A
    member that died is run again by the reaper's re-dispatch while this waits.
    """
    settings = get_settings()
    deadline = time.monotonic() + (timeout or 40 * settings.stale_seconds)
    while True:
        with run.factory() as session:
            done = session.scalar(
                select(func.count()).where(
                    JobTask.job_id == run.job_id,
                    JobTask.stage == stage,
                    JobTask.status == SUCCEEDED,
                )
            )
        if done is not None and done >= count:
            return
        if run.should_cancel():
            raise Cancelled("cancelled by request")
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done} of {count} {stage} tasks finished in time")
        time.sleep(min(1.0, settings.heartbeat_seconds))
