"""A dataset's pairs: the filtered, sorted list, one pair, its review history and its
interactions in a group audit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from backend.deps import DatasetDep, PathId, SessionDep, SettingsDep
from backend.filters import FilterDep
from backend.schemas import (
    DB_ID_MAX,
    DB_OFFSET_MAX,
    Interactions,
    PairPublic,
    PairsPage,
    ReviewEventPublic,
)
from backend.services import interactions, review

router = APIRouter(prefix="/datasets", tags=["datasets"])


@router.get("/{dataset_id}/pairs", response_model=PairsPage)
def list_pairs(
    dataset: DatasetDep,
    session: SessionDep,
    settings: SettingsDep,
    where: FilterDep,
    sort: Annotated[
        str,
        Query(
            description="'index' (file order), 'length' (total characters) or a score column "
            "of `job_id`; a leading '-' sorts descending",
            max_length=64,
        ),
    ] = "index",
    cursor: Annotated[
        str | None,
        Query(max_length=512, description="`next_cursor` of the previous page (keyset paging)"),
    ] = None,
    offset: Annotated[int, Query(ge=0, le=DB_OFFSET_MAX)] = 0,
    limit: Annotated[int, Query(ge=1)] = 50,
) -> PairsPage:
    """Pairs matching the filter, with their review state and, given `job_id`, that job's
    scores, percentiles and each pair's rank in the list. Page on with `cursor` (the previous
    page's `next_cursor`): every page then costs what the first does."""
    page = review.list_pairs(
        session,
        dataset,
        where,
        sort=sort,
        cursor=cursor,
        offset=offset,
        limit=min(limit, settings.max_page_size),
    )
    # Already a validated PairsPage: serialised once, not validated again against the model.
    return Response(page.model_dump_json(), media_type="application/json")  # type: ignore[return-value]


@router.get("/{dataset_id}/pairs/{pair_id}", response_model=PairPublic)
def read_pair(
    pair_id: PathId,
    dataset: DatasetDep,
    session: SessionDep,
    job_id: Annotated[int | None, Query(ge=1, le=DB_ID_MAX)] = None,
) -> PairPublic:
    """One pair with its review state and, given `job_id`, its scores and percentiles."""
    return review.read_pair(session, dataset, pair_id, job_id)


@router.get("/{dataset_id}/pairs/{pair_id}/history", response_model=list[ReviewEventPublic])
def pair_history(pair_id: PathId, dataset: DatasetDep, session: SessionDep) -> list:
    """Every change of the pair's review state or note, oldest first (undone ones marked)."""
    return review.pair_history(session, dataset, pair_id)


@router.get("/{dataset_id}/pairs/{pair_id}/interactions", response_model=Interactions)
def pair_interactions(
    pair_id: PathId,
    job_id: Annotated[int, Query(ge=1, le=DB_ID_MAX, description="A group audit's id")],
    dataset: DatasetDep,
    session: SessionDep,
) -> Interactions:
    """The pairs this one interacts with most in a `group` audit: κ > 0 redundant (removing both
    does less than the sum), κ < 0 complementary (more), strongest first."""
    return interactions.interactions(session, dataset, job_id, pair_id)
