"""Jobs: launch an audit on a dataset, follow it, cancel it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy import func, select

from backend.deps import CurrentUser, DatasetDep, JobDep, OwnedDataset, OwnedJob, SessionDep
from backend.models import Job
from backend.schemas import Histogram, JobCreate, JobPublic, JobsPage, SavedModel
from backend.services import jobs, review, reward_models
from backend.services.disclosure import public_job

router = APIRouter(tags=["jobs"])


@router.post(
    "/datasets/{dataset_id}/jobs",
    response_model=JobPublic,
    status_code=status.HTTP_202_ACCEPTED,
)
def create_job(
    body: JobCreate, dataset: OwnedDataset, session: SessionDep, user: CurrentUser
) -> JobPublic:
    """Queue an audit; bad options are refused here with a 422, never inside the worker."""
    job = jobs.create_job(session, dataset, user, body)
    return public_job(session, user, job)


@router.get("/datasets/{dataset_id}/jobs", response_model=JobsPage)
def list_jobs(dataset: DatasetDep, session: SessionDep, user: CurrentUser) -> JobsPage:
    """The dataset's jobs, newest first (references to datasets you cannot read withheld)."""
    query = select(Job).where(Job.dataset_id == dataset.id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Job.id.desc()))
    return JobsPage(items=[public_job(session, user, j) for j in rows], total=total)


@router.get("/saved-models", response_model=list[SavedModel])
def list_saved_models(session: SessionDep, user: CurrentUser) -> list[SavedModel]:
    """The reward models your earlier audits saved (save_model): an audit's `reward_models` can
    name each as `job:<id>`."""
    return reward_models.saved_models(session, user)


@router.get("/jobs/{job_id}", response_model=JobPublic)
def read_job(job: JobDep, session: SessionDep, user: CurrentUser) -> JobPublic:
    """Status, stage, progress (0–1), error and metrics of a job; what names a dataset you
    cannot read is withheld (listed in `redacted`)."""
    return public_job(session, user, job)


@router.post("/jobs/{job_id}/cancel", response_model=JobPublic)
def cancel_job(job: OwnedJob, session: SessionDep, user: CurrentUser) -> JobPublic:
    """Cancel a queued or running job; finished jobs are returned unchanged."""
    return public_job(session, user, jobs.cancel_job(session, job))


@router.get("/jobs/{job_id}/histogram", response_model=Histogram)
def score_histogram(
    job: JobDep,
    session: SessionDep,
    column: str = "harm",
    bins: Annotated[int, Query(ge=1, le=200)] = 40,
) -> Histogram:
    """Distribution of one score column over an audit's training pairs (cheap, no texts)."""
    return review.histogram(session, job, column, bins)
