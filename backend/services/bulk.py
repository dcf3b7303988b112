"""Bulk review actions: one state set on everything a filter matches, their undo, and the
history rows (`review_actions`, `review_events`) every change is recorded in.

A bulk action is set-based: the action row, then on Postgres one statement that materialises the
filter's matches, writes one event per changed pair (state and note before and after) and upserts
the states from those events, counting as it goes; an undo replays the last action's events
backwards the same way. The planner's statistics of `flags` are refreshed after a large one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import DateTime, Select, and_, func, literal, or_, select, true
from sqlalchemy.orm import Session

from backend.db import refresh_planner_stats
from backend.errors import Forbidden
from backend.models import Dataset, Flag, ReviewAction, ReviewEvent, User, utcnow
from backend.schemas import BulkResult, PairFilter
from backend.services import query as q
from backend.services.query import ReviewError, scored_job
from backend.services.review_states import lock_reviews
from backend.storage.ranking import greedy_query, most_harmful_query

BULK_STATES = {"flag": "flagged", "keep": "kept", "swap": "swapped", "clear": "unreviewed"}


def new_action(
    session: Session, dataset: Dataset, user: User, kind: str, description: str, **fields: Any
) -> ReviewAction:
    """A new entry of the dataset's history (flushed: its id is known), under the dataset's
    review lock (review_states.lock_reviews) until the caller commits."""
    lock_reviews(session, dataset.id)
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
    session: Session,
    dataset: Dataset,
    user: User,
    action: ReviewAction,
    events: Select,
    counted: Sequence[Any] = (),
) -> list[int]:
    """Record the action's events (`events` selects their columns) and set every pair's state
    and note from them; `action.count` becomes the number of events. `counted`: scalar
    subqueries evaluated with the write (the bulk action's match counts), their values returned.

    On Postgres this is one statement: the events' INSERT … SELECT … RETURNING feeds the states'
    upsert, and the statement returns how many pairs it changed (with `counted`, which read the
    same materialised matches: the filter is evaluated once). SQLite has no data-modifying CTEs:
    the counts first, then two set-based statements, in the same transaction."""
    if session.get_bind().dialect.name == "postgresql":
        recorded = (
            _insert_from(session, ReviewEvent)
            .from_select(_EVENT_COLUMNS, events)
            .returning(ReviewEvent.pair_id, ReviewEvent.new_state, ReviewEvent.new_note)
            .cte("recorded")
        )
        source = select(recorded.c.pair_id, recorded.c.new_state, recorded.c.new_note)
        applied = _set_states(session, dataset, user, source).returning(Flag.pair_id).cte("applied")
        changed = select(func.count()).select_from(applied).scalar_subquery()
        row = session.execute(select(changed, *counted)).one()
        action.count = int(row[0] or 0)
        return [int(v or 0) for v in row[1:]]
    values = [int(v or 0) for v in session.execute(select(*counted)).one()] if counted else []
    session.execute(_insert_from(session, ReviewEvent).from_select(_EVENT_COLUMNS, events))
    action.count = (
        session.scalar(select(func.count()).where(ReviewEvent.action_id == action.id)) or 0
    )
    source = select(ReviewEvent.pair_id, ReviewEvent.new_state, ReviewEvent.new_note).where(
        ReviewEvent.action_id == action.id
    )
    session.execute(_set_states(session, dataset, user, source))
    return values


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


def _matches(query: q.Query, new_state: str, note: str | None, protect: bool) -> Select:
    """The filter's pairs with their state and note now, and whether the action changes each
    (not already in `new_state` with that note; not kept, when kept pairs are protected)."""
    current = func.coalesce(Flag.state, "unreviewed")
    differs = current != new_state
    if note is not None:
        differs = or_(differs, func.coalesce(Flag.note, "") != note)
    changes = and_(differs, current != "kept") if protect else differs
    return query.select(
        query.ident.label("pair_id"),
        current.label("state"),
        Flag.note.label("note"),
        changes.label("changes"),
        lean=True,
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
    `override_kept`; notes stay unless `note` is given. A dry run only counts.

    The filter is read once either way: a dry run counts the matches, the kept ones and those
    that would change in one scan; the action materialises the matches once and writes the
    events and states from them in the same statement that counts them."""
    new_state = BULK_STATES[kind]
    query = q.resolve(session, dataset, f)
    if within is not None:
        query.conditions.append(query.ident.in_(within))
        query.narrowed = True
        query.signature = None
    protect = new_state != "kept" and not override_kept
    if dry_run:
        sub = _matches(query, new_state, note, protect).subquery()
        counts = select(
            func.count(),
            func.count().filter(sub.c.state == "kept"),
            func.count().filter(sub.c.changes),
        )
        matched, kept, changed = session.execute(counts).one()
        return BulkResult(
            matched=matched or 0,
            changed=changed or 0,
            protected=(kept or 0) if protect else 0,
            dry_run=True,
        )
    action = new_action(
        session,
        dataset,
        user,
        "bulk",
        description or f"{kind} {describe(f)}",
        state=new_state,
        filter=f.model_dump(mode="json", exclude_defaults=True),
    )
    m = _matches(query, new_state, note, protect).cte("matched")
    new_note = m.c.note if note is None else literal(note)
    events = select(
        literal(action.id), m.c.pair_id, m.c.state, m.c.note, literal(new_state), new_note
    ).where(m.c.changes)
    matched, kept = _write_events(
        session,
        dataset,
        user,
        action,
        events,
        counted=[
            select(func.count()).select_from(m).scalar_subquery(),
            select(func.count()).select_from(m).where(m.c.state == "kept").scalar_subquery(),
        ],
    )
    session.commit()
    # Estimated totals come from these statistics (a stale table once showed "10,001~" for
    # 173,198 pairs): refreshed at once, whatever autovacuum does.
    refresh_planner_stats(session, "flags", action.count, vacuum=True)
    return BulkResult(
        matched=matched,
        changed=action.count,
        protected=kept if protect else 0,
        action_id=action.id,
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
    lock_reviews(session, dataset.id)  # the last action is the last one committed
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
    action = new_action(session, dataset, user, "undo", f"undo: {last.description}", undoes=last.id)
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
    refresh_planner_stats(session, "flags", action.count, vacuum=True)
    return BulkResult(matched=action.count, changed=action.count, action_id=action.id)


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
