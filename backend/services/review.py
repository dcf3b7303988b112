"""Review: browsing pairs through the filter model, each pair's review state and note, bulk
actions on everything a filter matches, and the append-only history they undo from.

Every change is an action (`review_actions`) with one event per changed pair (`review_events`:
state and note before and after). A bulk action is three set-based statements in one
transaction: the action row, its events selected from the filter, and an upsert of the states
from those events; an undo replays the last action's events backwards the same way.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sqlalchemy import DateTime, Select, func, literal, or_, select, true
from sqlalchemy.orm import Session

from backend.db import refresh_planner_stats, upsert
from backend.errors import Forbidden, NotFound
from backend.models import Dataset, Flag, Job, Pair, ReviewAction, ReviewEvent, Score, User, utcnow
from backend.schemas import (
    BulkResult,
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
from backend.services.query import ReviewError, scored_job
from backend.storage.ranking import greedy_query, most_harmful_query
from worker.influence.methods import HARM_COLUMNS, SCORE_COLUMNS

__all__ = ["HARM_COLUMNS", "ReviewError", "SORT_KEYS"]

SORT_KEYS = q.SORT_KEYS

BULK_STATES = {"flag": "flagged", "keep": "kept", "swap": "swapped", "clear": "unreviewed"}


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
    columns: list[Any] = [Pair, Flag, User.username]
    if query.job is not None:
        columns.append(Score)
    query.with_reviewer = True
    rows, start, next_cursor = q.page_rows(
        session,
        query,
        sort,
        columns,
        cursor=cursor,
        offset=offset,
        limit=limit,
    )
    stats = q.ensure_stats(session, query.job) if query.job is not None else None
    scores = [row[3] if query.job is not None else None for row in rows]
    per_pair = _page_percentiles(scores, stats or {})
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


def _page_percentiles(scores: list[Score | None], stats: dict[str, Any]) -> list[dict]:
    """Each training pair's percentile per score column, one vectorised lookup per column."""
    out: list[dict[str, float]] = [{} for _ in scores]
    train = [i for i, s in enumerate(scores) if s is not None and s.split == "train"]
    for column in SCORE_COLUMNS:
        stat = stats.get(column)
        if stat is None or not train:
            continue
        values = np.array(
            [getattr(scores[i], column) for i in train], dtype=np.float64
        )  # None → nan
        known = np.isfinite(values)
        if not known.any():
            continue
        found = q.percentiles(stat, values[known])
        for i, pct in zip(np.asarray(train)[known], found, strict=True):
            out[int(i)][column] = round(float(pct), 2)
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
    old = session.scalar(select(Flag).where(Flag.pair_id == pair.id))
    action = _new_action(
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


def _new_action(
    session: Session, dataset: Dataset, user: User, kind: str, description: str, **fields: Any
) -> ReviewAction:
    """A new entry of the dataset's history (flushed: its id is known)."""
    values: dict[str, Any] = {"state": None, "count": 0, **fields}
    action = ReviewAction(
        dataset_id=dataset.id,
        user_id=user.id,
        kind=kind,
        description=description,
        created_at=utcnow(),
        **values,
    )
    session.add(action)
    session.flush()
    return action


def _insert_from(session: Session, model: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    return insert(model)


_EVENT_COLUMNS = ["action_id", "pair_id", "old_state", "old_note", "new_state", "new_note"]


def _write_events(
    session: Session, dataset: Dataset, user: User, action: ReviewAction, events: Select
) -> None:
    """Record the action's events (`events` selects their columns) and set every pair's state
    and note from them; `action.count` becomes the number of events.

    On Postgres this is one statement: the events' INSERT … SELECT … RETURNING feeds the states'
    upsert, and the statement returns how many pairs it changed. SQLite has no data-modifying
    CTEs: two set-based statements and a count there, in the same transaction."""
    if session.get_bind().dialect.name == "postgresql":
        recorded = (
            _insert_from(session, ReviewEvent)
            .from_select(_EVENT_COLUMNS, events)
            .returning(ReviewEvent.pair_id, ReviewEvent.new_state, ReviewEvent.new_note)
            .cte("recorded")
        )
        source = select(recorded.c.pair_id, recorded.c.new_state, recorded.c.new_note)
        applied = _set_states(session, dataset, user, source).returning(Flag.pair_id).cte("applied")
        action.count = session.scalar(select(func.count()).select_from(applied)) or 0
        return
    session.execute(_insert_from(session, ReviewEvent).from_select(_EVENT_COLUMNS, events))
    action.count = (
        session.scalar(select(func.count()).where(ReviewEvent.action_id == action.id)) or 0
    )
    source = select(ReviewEvent.pair_id, ReviewEvent.new_state, ReviewEvent.new_note).where(
        ReviewEvent.action_id == action.id
    )
    session.execute(_set_states(session, dataset, user, source))


def _set_states(session: Session, dataset: Dataset, user: User, source: Select) -> Any:
    """Upsert (pair_id, state, note) rows of `source` into flags, stamped with who and when."""
    now = literal(utcnow(), DateTime(timezone=True))
    pair_id, state, note = source.subquery().c
    statement = _insert_from(session, Flag).from_select(
        ["pair_id", "dataset_id", "state", "note", "user_id", "updated_at"],
        # WHERE true: SQLite would read the ON CONFLICT after a bare FROM as a join's ON.
        select(pair_id, literal(dataset.id), state, note, literal(user.id), now).where(true()),
    )
    return statement.on_conflict_do_update(
        index_elements=["pair_id"],
        set_={
            "state": statement.excluded.state,
            "note": statement.excluded.note,
            "user_id": statement.excluded.user_id,
            "updated_at": statement.excluded.updated_at,
        },
    )


def bulk(
    session: Session,
    dataset: Dataset,
    user: User,
    kind: str,
    f: PairFilter,
    *,
    override_kept: bool = False,
    note: str | None = None,
    dry_run: bool = False,
    within: Select | None = None,
    description: str | None = None,
) -> BulkResult:
    """Set every pair matching `f` (and, given, whose id is in `within`) to `kind`'s state in
    one transaction. Pairs already in that state are left alone, and so are kept pairs unless
    `override_kept`; notes stay unless `note` is given. A dry run only counts."""
    new_state = BULK_STATES[kind]
    query = q.resolve(session, dataset, f)
    if within is not None:
        query.conditions.append(query.ident.in_(within))
        query.narrowed = True
    current = func.coalesce(Flag.state, "unreviewed")
    protect = new_state != "kept" and not override_kept
    counted = query.select(query.ident, Flag.state, lean=True).subquery()
    matched, kept = session.execute(
        select(func.count(), func.count().filter(counted.c.state == "kept")).select_from(counted)
    ).one()
    protected = kept if protect else 0
    differs = current != new_state
    if note is not None:
        differs = or_(differs, func.coalesce(Flag.note, "") != note)
    changing = [differs, current != "kept"] if protect else [differs]
    if dry_run:
        change = query.select(query.ident, lean=True).where(*changing)
        n = session.scalar(select(func.count()).select_from(change.subquery())) or 0
        return BulkResult(matched=matched or 0, changed=n, protected=protected, dry_run=True)
    action = _new_action(
        session,
        dataset,
        user,
        "bulk",
        description or f"{kind} {describe(f)}",
        state=new_state,
        filter=f.model_dump(mode="json", exclude_defaults=True),
    )
    new_note = Flag.note if note is None else literal(note)
    events = query.select(
        literal(action.id), query.ident, current, Flag.note, literal(new_state), new_note, lean=True
    ).where(*changing)
    _write_events(session, dataset, user, action, events)
    session.commit()
    # Estimated totals come from these statistics (a stale table once showed "10,001~" for
    # 173,198 pairs): refreshed at once, whatever autovacuum does.
    refresh_planner_stats(session, "flags", action.count)
    return BulkResult(
        matched=matched or 0, changed=action.count, protected=protected, action_id=action.id
    )


def describe(f: PairFilter) -> str:
    """A short human description of a filter, for the history."""
    parts = []
    if f.q:
        parts.append(f"matching {f.q!r}")
    if f.states:
        parts.append("state " + "/".join(f.states))
    if f.flagged is not None:
        parts.append("flagged" if f.flagged else "not flagged")
    for r in f.scores:
        parts.append(
            f"{r.min if r.min is not None else '…'} ≤ {r.column} ≤ "
            f"{r.max if r.max is not None else '…'}"
        )
    for r in f.percentiles:
        parts.append(f"{r.column} percentile {r.min or 0}–{r.max if r.max is not None else 100}")
    for n in f.lengths:
        parts.append(f"{n.field} length {n.min or 0}–{n.max if n.max is not None else '∞'}")
    for key, value in f.metadata.items():
        parts.append(f"{key} = {value!r}")
    if f.tags:
        parts.append("tag " + "/".join(f.tags))
    if f.exclude_tags:
        parts.append("no tag " + "/".join(f.exclude_tags))
    return "all pairs" if not parts else "pairs with " + ", ".join(parts)


class UndoForbidden(Forbidden):
    """A reviewer asked to undo someone else's action (403)."""


def undo(session: Session, dataset: Dataset, user: User) -> BulkResult:
    """Undo the dataset's last action not yet undone: every pair it changed gets back the exact
    state and note it had before. The undo is itself an action in the history. The owner undoes
    anyone's action; a reviewer only their own (UndoForbidden names whose it is)."""
    last = session.scalar(
        select(ReviewAction)
        .where(
            ReviewAction.dataset_id == dataset.id,
            ReviewAction.kind != "undo",
            ReviewAction.undone_at.is_(None),
        )
        .order_by(ReviewAction.id.desc())
        .limit(1)
        .with_for_update()
    )
    if last is None:
        raise ReviewError("nothing to undo: every review action of this dataset is undone")
    if dataset.owner_id != user.id and last.user_id != user.id:
        who = session.get(User, last.user_id) if last.user_id is not None else None
        raise UndoForbidden(
            f"the last review action ({last.description!r}) is "
            f"{who.username + chr(39) + 's' if who else 'another user' + chr(39) + 's'}; a "
            "reviewer undoes only their own actions (the owner undoes any)"
        )
    action = _new_action(
        session, dataset, user, "undo", f"undo: {last.description}", undoes=last.id
    )
    earlier = ReviewEvent.__table__.alias("earlier")
    events = (
        select(
            literal(action.id),
            earlier.c.pair_id,
            func.coalesce(Flag.state, "unreviewed"),
            Flag.note,
            earlier.c.old_state,
            earlier.c.old_note,
        )
        .select_from(earlier)
        .outerjoin(Flag, Flag.pair_id == earlier.c.pair_id)
        .where(earlier.c.action_id == last.id)
    )
    _write_events(session, dataset, user, action, events)
    last.undone_at = utcnow()
    session.commit()
    refresh_planner_stats(session, "flags", action.count)
    return BulkResult(matched=action.count, changed=action.count, action_id=action.id)


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


def flag_top(
    session: Session,
    dataset: Dataset,
    user: User,
    job_id: int,
    top_fraction: float,
    method: str,
    rule: str = "top",
    budget: float | None = None,
    override_kept: bool = False,
) -> BulkResult:
    """Flag the ceil(fraction × n) training pairs with the highest `method` score (rule 'top') or
    the first `budget` pairs of a group audit's greedy selection (rule 'greedy'), as one bulk
    action. Pairs already flagged stay flagged, kept pairs stay kept (unless `override_kept`),
    nothing is unflagged."""
    job = scored_job(session, dataset, job_id)
    if rule == "greedy":
        within, label = greedy_query(session, job, budget), "greedy group selection"
    else:
        within = most_harmful_query(session, job_id, top_fraction, method)
        label = f"top {100 * top_fraction:.3g}% by {method}"
    return bulk(
        session,
        dataset,
        user,
        "flag",
        PairFilter(),
        within=within,
        override_kept=override_kept,
        description=f"flag the {label} of job {job.id}",
    )


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


def clear_flags(session: Session, dataset: Dataset, user: User) -> int:
    """Return every flagged pair to unreviewed, as one undoable action; notes stay."""
    result = bulk(
        session,
        dataset,
        user,
        "clear",
        PairFilter(states=["flagged"]),
        description="clear all flags",
    )
    return result.changed
