"""The pairs list's totals: from the statistics when unfiltered, exact on SQLite, and on Postgres
exact up to EXACT_COUNT_LIMIT, exact above it when counting fits `exact_count_ms`, else the
planner's estimate (labelled); filtered totals cached per review generation."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Select, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from backend.models import ReviewAction
from backend.services.query import Query, ensure_stats
from backend.settings import get_settings

EXACT_COUNT_LIMIT = 10_000
"""Filtered counts are exact up to this; above it they may be the planner's estimate."""


def count(session: Session, query: Query) -> tuple[int, bool]:
    """(total, is_estimate): from the statistics for an unfiltered list; exact on SQLite; on
    Postgres exact whenever counting fits `exact_count_ms`, else the planner's estimate (above
    EXACT_COUNT_LIMIT, labelled). Filtered totals are cached per review generation: the pages
    after the first, and a reload, cost no count until a review action changes the states."""
    if not query.narrowed:
        if query.job is None:
            return query.dataset.n_pairs, False
        stats = ensure_stats(session, query.job)
        splits = ("train", "val") if query.split == "all" else (query.split,)
        return sum(stats[f"rows:{s}"].n for s in splits if f"rows:{s}" in stats), False
    statement = query.select(query.ident, lean=True)  # no texts, no reviewer join
    if session.get_bind().dialect.name != "postgresql":
        return session.scalar(select(func.count()).select_from(statement.subquery())) or 0, False
    compiled = str(statement.compile(session.get_bind(), compile_kwargs={"literal_binds": True}))
    key = _count_key(session, query, compiled)
    cached = _COUNT_CACHE.get(key)
    if cached is not None:
        return cached
    result = _postgres_count(session, statement, compiled)
    if len(_COUNT_CACHE) >= 4096:
        _COUNT_CACHE.clear()
    _COUNT_CACHE[key] = result
    return result


_COUNT_CACHE: dict[tuple[Any, ...], tuple[int, bool]] = {}
"""Per process: filtered totals by (database, dataset, job and its finish, the filter's SQL, the
dataset's latest review action). Texts, scores and search rows do not change once written;
review states change only through actions, and each one moves the generation on."""


def _count_key(session: Session, query: Query, compiled: str) -> tuple[Any, ...]:
    generation = session.scalar(
        select(func.max(ReviewAction.id)).where(ReviewAction.dataset_id == query.dataset.id)
    )
    job = query.job
    return (
        str(session.get_bind().engine.url),
        query.dataset.id,
        None if job is None else (job.id, str(job.finished_at)),
        compiled,
        generation,
    )


def _postgres_count(session: Session, statement: Select, compiled: str) -> tuple[int, bool]:
    """Exact up to EXACT_COUNT_LIMIT (a capped count); above it exact when the whole count fits
    the time budget, else the planner's estimate, labelled (its independence assumption can be
    far off for correlated filters, so it is the fallback, not the first answer)."""
    capped = statement.limit(EXACT_COUNT_LIMIT + 1).subquery()
    n = session.scalar(select(func.count()).select_from(capped)) or 0
    if n <= EXACT_COUNT_LIMIT:
        return n, False
    budget_ms = get_settings().exact_count_ms
    if budget_ms > 0:
        exact = _count_within(session, statement, budget_ms)
        if exact is not None:
            return exact, False
    plan = session.execute(text(f"EXPLAIN (FORMAT JSON) {compiled}")).scalar_one()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    estimate = int(plan[0]["Plan"]["Plan Rows"])
    return max(estimate, EXACT_COUNT_LIMIT + 1), True


def _count_within(session: Session, statement: Select, budget_ms: int) -> int | None:
    """count(*) of `statement`, or None when it takes longer than `budget_ms` (Postgres cancels
    it; the savepoint keeps the request's transaction usable)."""
    savepoint = session.begin_nested()
    try:
        session.execute(text(f"SET LOCAL statement_timeout = {int(budget_ms)}"))
        n = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    except OperationalError as exc:
        savepoint.rollback()  # also undoes the SET LOCAL
        if "statement timeout" in str(exc.orig) or "canceling statement" in str(exc.orig):
            return None
        raise
    savepoint.rollback()  # nothing was written; undoes the SET LOCAL
    return int(n)
