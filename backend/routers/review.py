"""Reviewing a dataset's pairs: one pair's state, bulk actions and their undo, flags."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend.deps import CurrentUser, DatasetDep, PathId, ReviewedDataset, SessionDep
from backend.schemas import (
    BulkAction,
    BulkResult,
    FlagCount,
    FlagTop,
    FlagUpdate,
    PairPublic,
    ReviewActionPublic,
    ReviewUpdate,
)
from backend.services import review

router = APIRouter(prefix="/datasets", tags=["datasets"])


@router.put("/{dataset_id}/pairs/{pair_id}/review", response_model=PairPublic)
def review_pair(
    pair_id: PathId,
    body: ReviewUpdate,
    dataset: ReviewedDataset,
    session: SessionDep,
    user: CurrentUser,
) -> PairPublic:
    """Set one pair's review state and note: 'flagged' leaves the export, 'swapped' exports it
    with chosen and rejected exchanged, 'kept' protects it from bulk actions."""
    return review.set_state(session, dataset, pair_id, user, body.state, body.note)


@router.post("/{dataset_id}/review", response_model=BulkResult)
def bulk_review(
    body: BulkAction, dataset: ReviewedDataset, session: SessionDep, user: CurrentUser
) -> BulkResult:
    """Flag, keep, swap or clear every pair matching `filter` (not just a page) in one
    transaction; kept pairs are skipped unless `override_kept`. `dry_run` counts first."""
    return review.bulk(
        session,
        dataset,
        user,
        body.action,
        body.filter,
        override_kept=body.override_kept,
        note=body.note,
        dry_run=body.dry_run,
    )


@router.post("/{dataset_id}/review/undo", response_model=BulkResult)
def undo_review(dataset: ReviewedDataset, session: SessionDep, user: CurrentUser) -> BulkResult:
    """Undo the last review action not yet undone: its pairs get back their exact earlier
    states and notes. Call again to undo the one before. A reviewer undoes only their own
    actions (403 otherwise); the owner undoes any."""
    return review.undo(session, dataset, user)


@router.get("/{dataset_id}/review/actions", response_model=list[ReviewActionPublic])
def review_actions(
    dataset: DatasetDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list:
    """The dataset's review actions, newest first."""
    return review.list_actions(session, dataset, limit)


@router.put("/{dataset_id}/pairs/{pair_id}/flag", response_model=PairPublic)
def flag_pair(
    pair_id: PathId,
    body: FlagUpdate,
    dataset: ReviewedDataset,
    session: SessionDep,
    user: CurrentUser,
) -> PairPublic:
    """Flag (exclude from export) or unflag (back to unreviewed) one pair, with an optional
    note. `PUT .../review` sets any state."""
    return review.set_flag(session, dataset, pair_id, user, body.flagged, body.note)


@router.post("/{dataset_id}/flags", response_model=FlagCount)
def flag_top(
    body: FlagTop, dataset: ReviewedDataset, session: SessionDep, user: CurrentUser
) -> FlagCount:
    """Flag the most harmful `top_fraction` of a job's scored pairs in one undoable action;
    kept pairs stay kept unless `override_kept`."""
    result = review.flag_top(
        session,
        dataset,
        user,
        body.job_id,
        body.top_fraction,
        body.method,
        body.rule,
        body.budget,
        override_kept=body.override_kept,
    )
    return FlagCount(flagged=result.changed, protected=result.protected)


@router.delete("/{dataset_id}/flags", response_model=FlagCount)
def clear_flags(dataset: ReviewedDataset, session: SessionDep, user: CurrentUser) -> FlagCount:
    """Return every flagged pair to unreviewed (one undoable action). Notes are kept."""
    return FlagCount(unflagged=review.clear_flags(session, dataset, user))
