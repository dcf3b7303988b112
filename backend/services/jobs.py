"""Creating jobs (validate, write, commit, then enqueue) and cancelling them."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.errors import BadInput, Unavailable
from backend.job_states import FINISHED
from backend.models import Dataset, Job, JobTask, TargetSet, User, utcnow
from backend.schemas import AuditCreate, VerifyCreate
from backend.services import reward_models
from backend.storage import queue
from backend.storage.errors import ReviewError
from backend.storage.ranking import greedy_selection
from worker import tasknames
from worker.influence.data import validation_size
from worker.influence.methods import HARM_COLUMNS, TARGET_AWARE

log = logging.getLogger(__name__)

__all__ = ["FINISHED", "cancel_job", "create_job", "enqueue"]


class JobConfigError(BadInput):
    """The job cannot run as configured; raised before anything is written."""


class BrokerUnavailable(Unavailable, RuntimeError):
    """The broker did not take the job (503)."""


def validate_audit(session: Session, dataset: Dataset, user: User, body: AuditCreate) -> None:
    """Everything that can be checked before the worker sees the job."""
    try:
        body.engine_config().validate()
    except ValueError as exc:
        raise JobConfigError(str(exc)) from None
    if body.reward_models:  # job:<id> becomes that audit's saved directory, checked
        body.reward_models = reward_models.resolve(session, user, body.reward_models)
    if body.val_dataset_id is not None:
        val = _second_dataset(session, user, dataset, body.val_dataset_id, "validation")
        n_val, n_train = val.n_pairs, dataset.n_pairs
    else:
        n_val = validation_size(dataset.n_pairs, body.val_fraction)
        n_train = dataset.n_pairs - n_val
    if n_val < 1:
        raise JobConfigError(
            f"the validation set would be empty: {dataset.n_pairs} pairs × val_fraction "
            f"{body.val_fraction}; raise val_fraction or give val_dataset_id"
        )
    if n_train < 2:
        raise JobConfigError(f"only {n_train} training pairs would remain; need at least 2")
    if body.target_set_id is not None:
        _check_target(session, dataset, body)


def _check_target(session: Session, dataset: Dataset, body: AuditCreate) -> None:
    """A targeted audit names a target set of its own dataset and a method that reads it."""
    target = session.get(TargetSet, body.target_set_id)
    if target is None or target.dataset_id != dataset.id:
        raise JobConfigError(f"target set {body.target_set_id} of dataset {dataset.id} not found")
    if not set(body.engine_config().methods) & set(TARGET_AWARE):
        raise JobConfigError(
            "a targeted audit needs a method that measures against the target: add one of "
            + ", ".join(TARGET_AWARE)
            + " to methods"
        )


def validate_verify(session: Session, dataset: Dataset, user: User, body: VerifyCreate) -> None:
    audit = session.get(Job, body.audit_job_id)
    if audit is None or audit.owner_id != user.id or audit.dataset_id != dataset.id:
        raise JobConfigError(f"audit job {body.audit_job_id} is not a job of dataset {dataset.id}")
    if audit.kind != "audit":
        raise JobConfigError(f"job {audit.id} is a {audit.kind} job, not an audit")
    if audit.status != "succeeded":
        raise JobConfigError(f"audit job {audit.id} is {audit.status}; verify a succeeded audit")
    if not body.use_flags and body.method not in HARM_COLUMNS:
        raise JobConfigError(
            f"unknown method {body.method!r}; rank by one of {', '.join(HARM_COLUMNS)}"
        )
    if body.rule == "greedy" and not body.use_flags:
        try:
            greedy_selection(session, audit, body.budget)
        except ReviewError as exc:
            raise JobConfigError(str(exc)) from None
    if body.test_dataset_id is not None:
        _second_dataset(session, user, dataset, body.test_dataset_id, "test")


def _second_dataset(
    session: Session, user: User, dataset: Dataset, other_id: int, role: str
) -> Dataset:
    """A validation or test dataset: the user's own, and not the audited one."""
    other = session.get(Dataset, other_id)
    if other is None or other.owner_id != user.id:
        raise JobConfigError(f"{role} dataset {other_id} not found")
    if other.id == dataset.id:
        raise JobConfigError(f"the {role} dataset must differ from the audited dataset")
    return other


def create_job(
    session: Session, dataset: Dataset, user: User, body: AuditCreate | VerifyCreate
) -> Job:
    if isinstance(body, VerifyCreate):
        validate_verify(session, dataset, user, body)
    else:
        validate_audit(session, dataset, user, body)
    job = Job(
        dataset_id=dataset.id,
        owner_id=user.id,
        kind=body.kind,
        config=body.model_dump(mode="json"),
        status="queued",
        stage="queued",
        progress=0.0,
    )
    session.add(job)
    session.commit()  # the worker must never see a job that is not in the database
    enqueue(session, job)
    return job


def send(job_id: int, resume: bool = False) -> str:
    """Put the job's entry task on the broker, by name; returns the Celery task id."""
    return queue.send_task(tasknames.RUN_JOB, job_id, resume=resume)


def enqueue(session: Session, job: Job) -> None:
    try:
        job.task_id = send(job.id)
    except Exception as exc:  # the broker is down: the job must not hang in "queued"
        log.exception("could not enqueue job %s", job.id)
        job.status, job.error, job.finished_at = "failed", f"could not enqueue: {exc}", utcnow()
        session.commit()
        raise BrokerUnavailable(
            f"the job queue is unreachable ({exc}); job {job.id} was marked failed"
        ) from exc
    session.commit()


def cancel_job(session: Session, job: Job) -> Job:
    """Mark a job cancelled and revoke its queued tasks. Running tasks notice at their next
    heartbeat (a few seconds) and stop; queued ones that a worker already holds exit at once."""
    if job.status in FINISHED:
        return job
    job.status = "cancelled"
    job.finished_at = utcnow()
    session.commit()
    task_ids = [
        cid
        for cid in session.scalars(
            select(JobTask.celery_id).where(
                JobTask.job_id == job.id, JobTask.status.not_in(FINISHED)
            )
        )
        if cid
    ]
    if job.task_id:
        task_ids.append(job.task_id)
    _revoke(task_ids)
    return job


def _revoke(task_ids: list[str]) -> None:
    # Over the filesystem transport (no remote control) nothing is revoked: the tasks check the
    # database.
    try:
        queue.revoke(task_ids)
    except Exception:  # best effort: the database already says cancelled
        log.warning("could not revoke tasks %s", task_ids, exc_info=True)
