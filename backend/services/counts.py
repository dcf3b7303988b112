"""The pairs list's totals: from the statistics when unfiltered, exact on SQLite, and on Postgres
exact up to EXACT_COUNT_LIMIT, exact above it when counting fits `exact_count_ms`, else an
estimate (labelled) from a sample of the matches. Filtered totals are cached, and follow the
review actions from their events (a decision on one pair moves a total by looking that pair up).

The estimate counts the filter in SAMPLE_WINDOWS random ranges of pair ids covering about
SAMPLE_ROWS of the list's rows, and scales by the share of the list those ranges hold (both
counted in the same ranges, read through the id's index): unlike the planner's estimate it does
not depend on table statistics (stale after a bulk action when autovacuum is late or off) nor on
the filters being independent. About 50,000 sampled rows put a total above 10,000 of 1,000,000
within a few percent.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, Integer, Select, func, literal, or_, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from backend.models import Pair, Score
from backend.services.query import Query, ensure_stats
from backend.services.review_states import review_changes, review_generation
from backend.settings import get_settings

EXACT_COUNT_LIMIT = 10_000
"""Filtered counts are exact up to this; above it they may be an estimate."""
SAMPLE_ROWS = 50_000
"""Rows of the list an estimate counts the filter in."""
SAMPLE_WINDOWS = 64
"""Random id ranges those rows are read from."""


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
    # The filter as given names the count where the conditions are its own (compiling the
    # statement with its values only to look the count up took ~1.7 ms of every page).
    named = query.signature if query.signature is not None else _compiled(session, statement)
    key = _count_key(session, query, named)
    # Only the review states change once a list's rows are written, and only through actions.
    generation = None if query.review is None else review_generation(session, query.dataset.id)
    cached = _COUNT_CACHE.get(key)
    if cached is not None:
        then, result = cached
        if then == generation:
            return result
        moved = _moved(session, query, then, generation)
        # An estimate stays one only above the exact counts' limit.
        if moved is not None and (not result[1] or result[0] + moved > EXACT_COUNT_LIMIT):
            result = (result[0] + moved, result[1])
            _COUNT_CACHE[key] = (generation, result)
            return result
    result = _postgres_count(session, query, statement, _compiled(session, statement))
    if len(_COUNT_CACHE) >= 4096:
        _COUNT_CACHE.clear()
    _COUNT_CACHE[key] = (generation, result)
    return result


_COUNT_CACHE: dict[tuple[Any, ...], tuple[int | None, tuple[int, bool]]] = {}
"""Per process: filtered totals by (database, dataset, job and its finish, the filter's SQL),
with the review generation they are true at (None for a filter without review states: texts,
scores and search rows do not change once written)."""
COUNT_STEP_MAX = 5_000
"""A cached total follows the review actions since it was counted where they changed at most
this many pairs; else it is counted again."""


def _moved(session: Session, query: Query, since: int | None, now: int | None) -> int | None:
    """How much the total of `query` moved with the review actions after generation `since` up
    to `now`: over the pairs they changed that pass the filter's other conditions, those that
    pass its review states now less those that did before. A reviewer's decision on one pair
    then costs a lookup of that pair, not a count of the list (0.6 s at a million pairs). None
    where the actions changed more than COUNT_STEP_MAX pairs."""
    review = query.review
    assert review is not None
    changes = review_changes(session, query.dataset.id, since, now, COUNT_STEP_MAX)
    if changes is None:
        return None
    moving = {
        pair: int(review.matches(new)) - int(review.matches(old))
        for pair, (old, new) in changes.items()
    }
    moving = {pair: step for pair, step in moving.items() if step}
    if not moving:
        return 0
    others = [c for c in query.conditions if not any(c is r for r in review.conditions)]
    static = replace(query, conditions=others, review=None, signature=None)
    ids = literal(list(moving), ARRAY(Integer))
    among = static.select(static.ident, lean=True).where(static.ident == func.any(ids))
    passing = session.scalars(among)
    return sum(moving[int(pair)] for pair in passing)


def _compiled(session: Session, statement: Select) -> str:
    return str(statement.compile(session.get_bind(), compile_kwargs={"literal_binds": True}))


def _count_key(session: Session, query: Query, compiled: str) -> tuple[Any, ...]:
    job = query.job
    return (
        str(session.get_bind().engine.url),
        query.dataset.id,
        None if job is None else (job.id, str(job.finished_at)),
        compiled,
    )


def _postgres_count(
    session: Session, query: Query, statement: Select, compiled: str
) -> tuple[int, bool]:
    """Exact up to EXACT_COUNT_LIMIT (a capped count); above it exact when the whole count fits
    the time budget, else a sampled estimate, labelled (the planner's estimate, whose
    independence assumption can be far off, only where the list is too small to sample)."""
    capped = statement.limit(EXACT_COUNT_LIMIT + 1).subquery()
    n = session.scalar(select(func.count()).select_from(capped)) or 0
    if n <= EXACT_COUNT_LIMIT:
        return n, False
    budget_ms = get_settings().exact_count_ms
    if budget_ms > 0:
        exact = _count_within(session, statement, budget_ms)
        if exact is not None:
            return exact, False
    sampled = _sampled_count(session, query, statement)
    if sampled is not None:
        return max(sampled, EXACT_COUNT_LIMIT + 1), True
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


_ID_RANGES: dict[tuple[str, str, int], tuple[int, int]] = {}
"""Per process: the smallest and largest pair id of a dataset or job (they never change)."""


def _id_range(session: Session, query: Query) -> tuple[int, int] | None:
    job = query.job
    key = (
        str(session.get_bind().engine.url),
        "job" if job else "dataset",
        (job or query.dataset).id,
    )
    if key not in _ID_RANGES:
        if job is not None:
            bounds = select(func.min(Score.pair_id), func.max(Score.pair_id)).where(
                Score.job_id == job.id
            )
        else:
            bounds = select(func.min(Pair.id), func.max(Pair.id)).where(
                Pair.dataset_id == query.dataset.id
            )
        lo, hi = session.execute(bounds).one()
        if lo is None:
            return None
        _ID_RANGES[key] = (int(lo), int(hi))
    return _ID_RANGES[key]


def _sampled_count(session: Session, query: Query, statement: Select) -> int | None:
    """The filter's matches estimated from SAMPLE_WINDOWS random id ranges holding about
    SAMPLE_ROWS of the list's rows: matches in them × (rows of the list / rows in them). None
    when the list is too small to sample (counting it whole did not fit the budget)."""
    listed, _ = count(session, _unfiltered(query))
    bounds = _id_range(session, query)
    if bounds is None or listed <= SAMPLE_ROWS:
        return None
    lo, hi = bounds
    width = max(1, (hi - lo + 1) * SAMPLE_ROWS // listed // SAMPLE_WINDOWS)
    rng = random.Random(f"{query.dataset.id}:{listed}")  # the same ranges on every call
    starts = [rng.randint(lo, max(lo, hi - width + 1)) for _ in range(SAMPLE_WINDOWS)]

    def within(ident: Any) -> ColumnElement[bool]:
        return or_(*(ident.between(a, a + width - 1) for a in starts))

    windows = [within(query.ident)]
    if query.job is None or query.uses_pairs:
        windows.append(within(Pair.id))  # the pairs' own index, where the query reads pairs
    matched = session.scalar(select(func.count()).select_from(statement.where(*windows).subquery()))
    base = _unfiltered(query).select(query.ident, lean=True).where(within(query.ident))
    seen = session.scalar(select(func.count()).select_from(base.subquery()))
    if not seen:
        return None
    return round((matched or 0) * listed / seen)


def _unfiltered(query: Query) -> Query:
    """The same list without its filters: the dataset, or the job's rows of the split."""
    split = [Score.split == query.split] if query.job is not None and query.split != "all" else []
    return Query(query.dataset, query.job, split, False, query.split, uses_pairs=False)
