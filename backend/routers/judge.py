"""The LLM judge: its defaults, the estimate before launch, and launching a judge job."""

from __future__ import annotations

from fastapi import APIRouter, status

from backend.deps import CurrentUser, OwnedDataset, SessionDep
from backend.schemas import JobPublic
from backend.schemas.judge import JudgeCreate, JudgeDefaults, JudgeEstimate, JudgeEstimateCreate
from backend.services import judge
from backend.services.disclosure import public_job

router = APIRouter(tags=["judge"])


@router.get("/judge/defaults", response_model=JudgeDefaults)
def judge_defaults(user: CurrentUser) -> JudgeDefaults:
    """The default prompt template and the columns a judge job fills; whether the server has a
    judge key (the key itself is never shown)."""
    return judge.defaults()


@router.post("/datasets/{dataset_id}/judge/estimate", response_model=JudgeEstimate)
def estimate_judge(
    body: JudgeEstimateCreate, dataset: OwnedDataset, session: SessionDep, user: CurrentUser
) -> JudgeEstimate:
    """Requests (both orders), tokens and time of judging every pair, before launch; `probe`
    times one real request to the server."""
    return judge.estimate(session, dataset, user, body)


@router.post(
    "/datasets/{dataset_id}/judge", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED
)
def create_judge_job(
    body: JudgeCreate, dataset: OwnedDataset, session: SessionDep, user: CurrentUser
) -> JobPublic:
    """Queue a judge job: every pair asked in both orders; the key is the server's setting."""
    job = judge.create_judge_job(session, dataset, user, body)
    return public_job(session, user, job)
