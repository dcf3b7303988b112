"""Review: browsing pairs through the filter model, each pair's review state and note, and the
append-only history of changes. Bulk actions on everything a filter matches and their undo are
backend/services/bulk.py (re-exported here for the routers).

Every change is an action (`review_actions`) with one event per changed pair (`review_events`:
state and note before and after).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from backend.db import upsert
from backend.errors import NotFound
from backend.models import Dataset, Flag, Job, Pair, ReviewAction, ReviewEvent, Score, User, utcnow
from backend.schemas import (
    Histogram,
    PairFilter,
    PairPublic,
    PairScores,
    PairsPage,
    ReviewActionPublic,
    ReviewEventPublic,
)
from backend.services import counts
from backend.services import query as q
from backend.services.bulk import (
    BULK_STATES,
    UndoForbidden,
    bulk,
    clear_flags,
    describe,
    flag_top,
    new_action,
    undo,
)
from backend.services.query import ReviewError, scored_job
from backend.services.review_states import lock_reviews
from worker.influence.methods import HARM_COLUMNS, SCORE_COLUMNS

__all__ = [
    "BULK_STATES",
    "HARM_COLUMNS",
    "SORT_KEYS",
    "ReviewError",
    "UndoForbidden",
    "bulk",
    "clear_flags",
    "describe",
    "flag_top",
    "undo",
]

SORT_KEYS = q.SORT_KEYS


def _to_public(
    pair: Pair,
    flag: Flag | None,
    score: Score | None,
    *,
    reviewer: str | None = None,
    rank: int | None = None,
    stats: dict[str, Any] | None = None,
    percentiles: dict[str, float] | None = None,
) -> PairPublic:
    state = flag.state if flag is not None else "unreviewed"
    if percentiles is None:
        percentiles = {}
        if score is not None and stats and score.split == "train":
            for column in SCORE_COLUMNS:
                value = getattr(score, column)
                stat = stats.get(column)
                if value is not None and stat is not None and math.isfinite(value):
                    percentiles[column] = round(q.percentile(stat, value), 2)
    lengths = {
        "prompt": pair.prompt_chars if pair.prompt_chars is not None else len(pair.prompt),
        "chosen": pair.chosen_chars if pair.chosen_chars is not None else len(pair.chosen),
        "rejected": pair.rejected_chars if pair.rejected_chars is not None else len(pair.rejected),
    }
    return PairPublic(
        id=pair.id,
        index=pair.source_index,
        row=pair.file_row,
        prompt=pair.prompt,
        chosen=pair.chosen,
        rejected=pair.rejected,
        metadata=pair.meta or {},
        state=state,  # type: ignore[arg-type]
        flagged=state == "flagged",
        note=flag.note if flag else None,
        reviewed_by=reviewer,
        reviewed_at=flag.updated_at if flag is not None else None,
        lengths=lengths,
        rank=rank,
        percentiles=percentiles,
        scores=PairScores.model_validate(score) if score is not None else None,
    )


def list_pairs(
    session: Session,
    dataset: Dataset,
    f: PairFilter,
    *,
    sort: str,
    cursor: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> PairsPage:
    """One page of the pairs matching `f`, sorted by `sort` ('-' for descending), with each
    pair's rank in this list and, given a job, its scores and their percentiles."""
    query = q.resolve(session, dataset, f)
    keys, start, next_cursor = q.page_rows(
        session, query, sort, cursor=cursor, offset=offset, limit=limit
    )
    rows = _page_pairs(session, query.job, [int(k._id) for k in keys])
    scores = [row[3] for row in rows]
    per_pair = (
        [{} for _ in rows] if query.job is None else _page_percentiles(session, query.job, scores)
    )
    items = [
        _to_public(
            row[0],
            row[1],
            scores[i],
            reviewer=row[2],
            rank=start + i + 1,
            percentiles=per_pair[i],
        )
        for i, row in enumerate(rows)
    ]
    total, estimated = counts.count(session, query)
    return PairsPage(items=items, total=total, total_is_estimate=estimated, next_cursor=next_cursor)


def _page_pairs(
    session: Session, job: Job | None, ids: list[int]
) -> list[tuple[Pair, Flag | None, str | None, Score | None]]:
    """The page's pairs in `ids` order, each with its review state, who set it and the job's
    scores: one statement by primary keys, for the page's own rows only."""
    if not ids:
        return []
    columns: list[Any] = [Pair, Flag, User.username]
    statement = select(*columns, *([Score] if job is not None else [])).select_from(Pair)
    if job is not None:
        statement = statement.outerjoin(
            Score, and_(Score.job_id == job.id, Score.pair_id == Pair.id)
        )
    statement = (
        statement.outerjoin(Flag, Flag.pair_id == Pair.id)
        .outerjoin(User, User.id == Flag.user_id)
        .where(Pair.id.in_(ids))
    )
    found = {row[0].id: row for row in session.execute(statement)}
    return [(*found[i][:3], found[i][3] if job is not None else None) for i in ids]


def _page_percentiles(session: Session, job: Job, scores: list[Score | None]) -> list[dict]:
    """Each training pair's percentile per score column: the page's values as one matrix,
    looked up in the job's stacked quantiles (computed once per job and process)."""
    table = q.percentile_table(session, job)
    train = [i for i, s in enumerate(scores) if s is not None and s.split == "train"]
    out: list[dict[str, float]] = [{} for _ in scores]
    if not train or not table.columns:
        return out
    values = np.array(  # None → NaN
        [[getattr(scores[i], c) for c in table.columns] for i in train], dtype=np.float64
    )
    found = np.round(table.percentiles(values), 2).tolist()
    for i, row in zip(train, found, strict=True):
        out[i] = {c: v for c, v in zip(table.columns, row, strict=True) if math.isfinite(v)}
    return out


def get_pair(session: Session, dataset: Dataset, pair_id: int) -> Pair:
    pair = session.get(Pair, pair_id)
    if pair is None or pair.dataset_id != dataset.id:
        raise NotFound(f"pair {pair_id} is not in dataset {dataset.id}")
    return pair


def read_pair(session: Session, dataset: Dataset, pair_id: int, job_id: int | None) -> PairPublic:
    """One pair with its review state and, given a job, its scores and percentiles."""
    pair = get_pair(session, dataset, pair_id)
    flag = session.scalar(select(Flag).where(Flag.pair_id == pair.id))
    author = session.get(User, flag.user_id) if flag and flag.user_id else None
    reviewer = author.username if author is not None else None
    score = stats = None
    if job_id is not None:
        job = scored_job(session, dataset, job_id)
        score = session.scalar(
            select(Score).where(Score.job_id == job.id, Score.pair_id == pair.id)
        )
        stats = q.ensure_stats(session, job)
    return _to_public(pair, flag, score, reviewer=reviewer, stats=stats)


def set_state(
    session: Session,
    dataset: Dataset,
    pair_id: int,
    user: User,
    state: str,
    note: str | None,
) -> PairPublic:
    """Write one pair's whole review state (state and note) in one upsert, recorded as an
    action: concurrent writers never mix (one's state with another's note), and the first
    decision on a pair cannot race into a duplicate row."""
    pair = get_pair(session, dataset, pair_id)
    lock_reviews(session, dataset.id)  # the state read here is the one this action replaces
    old = session.scalar(select(Flag).where(Flag.pair_id == pair.id))
    action = new_action(
        session, dataset, user, "set", f"row {pair.file_row}: {state}", state=state, count=1
    )
    session.add(
        ReviewEvent(
            action_id=action.id,
            pair_id=pair.id,
            old_state=old.state if old is not None else "unreviewed",
            old_note=old.note if old is not None else None,
            new_state=state,
            new_note=note,
        )
    )
    row = {
        "pair_id": pair.id,
        "dataset_id": dataset.id,
        "state": state,
        "note": note,
        "user_id": user.id,
        "updated_at": utcnow(),
    }
    session.execute(upsert(session, Flag, row, ["pair_id"]))
    session.commit()
    written = Flag(**row)
    return _to_public(pair, written, None, reviewer=user.username)  # what this request wrote


def set_flag(
    session: Session, dataset: Dataset, pair_id: int, user: User, flagged: bool, note: str | None
) -> PairPublic:
    """The older flag call: flagged, or back to unreviewed."""
    return set_state(session, dataset, pair_id, user, "flagged" if flagged else "unreviewed", note)


def list_actions(session: Session, dataset: Dataset, limit: int) -> list[ReviewActionPublic]:
    rows = session.execute(
        select(ReviewAction, User.username)
        .outerjoin(User, User.id == ReviewAction.user_id)
        .where(ReviewAction.dataset_id == dataset.id)
        .order_by(ReviewAction.id.desc())
        .limit(limit)
    )
    out = []
    for action, username in rows:
        fields = {name: getattr(action, name) for name in ReviewActionPublic.model_fields}
        out.append(ReviewActionPublic(**{**fields, "user": username}))
    return out


def pair_history(session: Session, dataset: Dataset, pair_id: int) -> list[ReviewEventPublic]:
    """Every change of one pair's state or note, oldest first."""
    get_pair(session, dataset, pair_id)
    rows = session.execute(
        select(ReviewEvent, ReviewAction, User.username)
        .join(ReviewAction, ReviewAction.id == ReviewEvent.action_id)
        .outerjoin(User, User.id == ReviewAction.user_id)
        .where(ReviewEvent.pair_id == pair_id)
        .order_by(ReviewEvent.id)
    )
    return [
        ReviewEventPublic(
            action_id=action.id,
            kind=action.kind,
            description=action.description,
            user=username,
            at=action.created_at,
            old_state=event.old_state,
            old_note=event.old_note,
            new_state=event.new_state,
            new_note=event.new_note,
            undone=action.undone_at is not None,
        )
        for event, action, username in rows
    ]


EXACT_HISTOGRAM_ROWS = 20_000
"""Up to this many scores a histogram counts every value; above it, counts come from the 1,001
stored quantiles (each bin within 0.1% of n of the exact count) and say so."""


def histogram(session: Session, job: Job, column: str, bins: int) -> Histogram:
    """Equal-width histogram of a score column over the job's scored training pairs."""
    if column not in SCORE_COLUMNS:
        raise ReviewError(f"unknown score column {column!r}; use one of {', '.join(SCORE_COLUMNS)}")
    if job.kind != "audit" or job.status != "succeeded":
        raise ReviewError(f"job {job.id} is not a succeeded audit: it has no scores")
    stat = q.ensure_stats(session, job).get(column)
    if stat is None:
        raise ReviewError(f"job {job.id} has no {column!r} scores; pick a method it computed")
    quantiles = np.asarray(stat.quantiles, dtype=np.float64)
    estimated = stat.n > EXACT_HISTOGRAM_ROWS
    if estimated:
        lo, hi = float(quantiles[0]), float(quantiles[-1])
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, bins + 1)
        cdf = np.interp(edges, quantiles, np.linspace(0.0, 1.0, quantiles.size))
        counts = np.diff(np.round(cdf * stat.n)).astype(np.int64)
    else:
        values = np.array(
            session.scalars(
                select(getattr(Score, column)).where(
                    Score.job_id == job.id,
                    Score.split == "train",
                    getattr(Score, column).is_not(None),
                )
            ).all(),
            dtype=np.float64,
        )
        values = values[np.isfinite(values)]
        counts, edges = np.histogram(values, bins=bins)
    return Histogram(
        column=column,
        n=stat.n,
        edges=edges.tolist(),
        counts=counts.tolist(),
        quantiles={f"p{p}": q.value_at(stat, float(p)) for p in (10, 50, 90)},
        estimated=estimated,
    )
