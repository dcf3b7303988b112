"""The review-state conditions of a pairs filter (`states`, `flagged`) as SQL, for the pairs
list, the bulk actions and the export (backend/services/query.py), and the review generation
what is cached per review state is keyed by."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from backend.models import REVIEW_STATES, Dataset, Flag, ReviewAction
from backend.schemas import PairFilter

HASHED_EXCLUSION_MAX = 400_000
"""Postgres: a "no review state" filter whose dataset holds at most this many review rows in the
excluded states reads them once into a hash (at ~64 B a row, within the 64 MB a hash may take,
backend/db.py); above it, each walked row probes the index."""
_REVIEW_ROWS: dict[tuple[Any, ...], int] = {}
"""Per process: the dataset's review rows in some states, by (database, dataset, states, its
latest review action): review states change only through actions."""


def review_generation(session: Session, dataset_id: int) -> int | None:
    """The dataset's latest review action: review states change only through actions, so what
    is cached per generation (totals, review-row counts) stays true until the next one."""
    return session.scalar(
        select(func.max(ReviewAction.id)).where(ReviewAction.dataset_id == dataset_id)
    )


def _review_rows(session: Session, dataset: Dataset, states: Sequence[str]) -> int:
    generation = review_generation(session, dataset.id)
    key = (str(session.get_bind().engine.url), dataset.id, tuple(sorted(states)), generation)
    if key not in _REVIEW_ROWS:
        if len(_REVIEW_ROWS) >= 4096:
            _REVIEW_ROWS.clear()
        _REVIEW_ROWS[key] = (
            session.scalar(
                select(func.count())
                .select_from(Flag)
                .where(Flag.dataset_id == dataset.id, Flag.state.in_(states))
            )
            or 0
        )
    return _REVIEW_ROWS[key]


def _without_flag(
    session: Session, dataset: Dataset, ident: Any, states: Sequence[str]
) -> tuple[ColumnElement[bool], bool]:
    """The pair has no review row in one of `states`, and whether that is the hashed form.

    Reviewers flag the top of a ranking and then page through the rest of it, so the rows a
    page walks first are the reviewed ones: probing `flags` for each of them (an anti-join)
    cost 108 ms for a page after a bulk flag of 100,000 pairs (55,000 probes). On Postgres,
    where the dataset has at most HASHED_EXCLUSION_MAX such rows, the condition is `NOT IN`
    the dataset's review rows in `states`: a hashed subplan, read once per statement from
    ix_flags_dataset_state (index-only) and then a hash lookup per walked row (31 ms for the
    same page). The app's connections let a hash take 64 MB (backend/db.py: the planner hashes
    the subplan only when it fits; otherwise it would scan the whole list for each row). Above
    the cap, or on SQLite, an anti-join (`NOT EXISTS`), which the planner estimates from the
    flags' statistics (`flags.id IS NULL` after the outer join it took for almost no row)."""
    if (
        session.get_bind().dialect.name == "postgresql"
        and _review_rows(session, dataset, states) <= HASHED_EXCLUSION_MAX
    ):
        excluded = select(Flag.pair_id).where(Flag.dataset_id == dataset.id, Flag.state.in_(states))
        return ident.not_in(excluded), True
    other = aliased(Flag)
    return ~exists().where(other.pair_id == ident, other.state.in_(states)), False


def _state_condition(
    session: Session, dataset: Dataset, states: Sequence[str], ident: Any
) -> tuple[ColumnElement[bool], bool]:
    """Any of `states`, and whether it is only the hashed "unreviewed" condition."""
    parts: list[ColumnElement[bool]] = []
    named = [s for s in states if s != "unreviewed"]
    if named:
        parts.append(Flag.state.in_(named))
    hashed = False
    if "unreviewed" in states:
        decided = [s for s in REVIEW_STATES if s != "unreviewed"]
        without, hashed = _without_flag(session, dataset, ident, decided)
        parts.append(without)
    return or_(*parts), hashed and not named


def review_conditions(
    session: Session, dataset: Dataset, f: PairFilter, ident: Any
) -> tuple[list[ColumnElement[bool]], tuple[ColumnElement[bool], tuple[str, ...]] | None]:
    """The review-state conditions of `f` (states, flagged), and the hashed "no review row in
    these states" one among them, if any, with its states (Query.exclusion)."""
    conditions: list[ColumnElement[bool]] = []
    exclusion = None
    if f.states:
        condition, hashed = _state_condition(session, dataset, f.states, ident)
        conditions.append(condition)
        if hashed:
            exclusion = (condition, tuple(s for s in REVIEW_STATES if s != "unreviewed"))
    if f.flagged is True:
        conditions.append(Flag.state == "flagged")
    elif f.flagged is False:
        condition, hashed = _without_flag(session, dataset, ident, ["flagged"])
        conditions.append(condition)
        if hashed and exclusion is None:
            exclusion = (condition, ("flagged",))
    return conditions, exclusion
