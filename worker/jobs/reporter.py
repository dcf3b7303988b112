"""Progress and cancellation of a job that runs in one task: the stage and progress written to
the job row (throttled, weighted by the stage table) with the stage's measured timing (for the
ETA, backend/storage/eta.py), and "was I cancelled?"."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.job_states import RUNNING
from backend.models import Dataset, Job
from backend.storage import eta
from worker.jobs import stages

log = logging.getLogger(__name__)

_PROGRESS_INTERVAL_S = 0.5
_CANCEL_INTERVAL_S = 1.0


def start_timing(session: Session, job_id: int, flow: str) -> eta.Timing | None:
    """A job's timing before its first stage: its work plan and the rates its stages had in
    recent jobs of the same key (None when the job is gone)."""
    job = session.get(Job, job_id)
    if job is None:
        return None
    config: dict[str, Any] = dict(job.config or {})
    recipe = None
    if job.kind == "verify":
        audit = session.get(Job, config.get("audit_job_id"))
        recipe = dict(audit.config or {}) if audit is not None else {}
    n_pairs = session.scalar(select(Dataset.n_pairs).where(Dataset.id == job.dataset_id)) or 0
    plan = stages.work_plan(flow, config, n_pairs, recipe)
    return eta.new_timing(history=eta.stage_rates(session, job.kind, plan["key"]), **plan)


_WARM: set[str] = set()
"""Job kinds this process has run (see worker.jobs.claims._WARM: a first run is marked cold)."""


class JobReporter:
    """Writes stage and progress to the job row (throttled) and answers "was I cancelled?"."""

    def __init__(self, job_id: int, kind: str, session_factory: Callable[[], Session]):
        self.job_id = job_id
        self._weights = stages.weights(kind)
        self._session_factory = session_factory
        self._last_write = 0.0
        self._last_check = 0.0
        self._cancelled = False
        self._done: list[str] = []
        self._labels = {s.name: s.label for s in stages.FLOWS.get(kind, ())}
        with session_factory() as session:
            self._timing = start_timing(session, job_id, kind)
        if self._timing is not None:
            self._timing["cold"] = kind not in _WARM
        _WARM.add(kind)

    def overall(self, stage: str, fraction: float) -> float:
        before = sum(self._weights.get(s, 0.0) for s in self._done if s != stage)
        return min(0.999, before + self._weights.get(stage, 0.0) * max(0.0, min(1.0, fraction)))

    def progress(self, stage: str, fraction: float, message: str | None = None) -> None:
        if stage not in self._done:
            # Stages arrive in order; a new one means the previous ones are complete.
            self._done.append(stage)
            force = True
        else:
            force = fraction >= 1.0
        if self._timing is not None:
            eta.record(self._timing, stage, max(0.0, min(1.0, fraction)), time.time())
        now = time.monotonic()
        if not force and now - self._last_write < _PROGRESS_INTERVAL_S:
            return
        self._last_write = now
        with self._session_factory() as session:
            session.execute(
                update(Job)
                .where(Job.id == self.job_id, Job.status == RUNNING)
                .values(
                    stage=self._labels.get(stage, stage),
                    progress=self.overall(stage, fraction),
                    timing=self._timing,
                )
            )
            session.commit()
        if message:
            log.info("job %s %s: %s", self.job_id, stage, message)

    def should_cancel(self) -> bool:
        now = time.monotonic()
        if self._cancelled or now - self._last_check < _CANCEL_INTERVAL_S:
            return self._cancelled
        self._last_check = now
        with self._session_factory() as session:
            status = session.scalar(select(Job.status).where(Job.id == self.job_id))
        self._cancelled = status != RUNNING
        return self._cancelled
