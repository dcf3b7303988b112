"""The reviewer's queries: one filter model (`PairFilter`) turned into SQL for the pairs list,
the bulk actions and the export, and keyset pagination (the score statistics behind percentiles
and counts are backend/storage/stats.py).

Pages are keyset-paginated: a cursor carries the last row's sort value and pair id, so page
10,000 reads what page 1 does through the (job, split, column, pair) indexes. Pairs without a
value for the sort column come after the others, in pair order.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    func,
    literal,
    select,
    text,
    tuple_,
)
from sqlalchemy.orm import Session

from backend.errors import NotFound, Unavailable
from backend.models import Dataset, Flag, Job, Pair, Score, User
from backend.schemas import PairFilter
from backend.services import search_plan
from backend.services.review_states import ReviewFilter, review_conditions, reviewed_bits
from backend.storage.errors import ReviewError
from backend.storage.stats import (
    N_QUANTILES,
    ensure_stats,
    percentile,
    percentile_table,
    percentiles,
    refresh_stats,
    value_at,
)
from backend.storage.tags import tag_condition
from worker.influence.methods import SCORE_COLUMNS
from worker.influence.tags import TAG_NAMES

__all__ = [
    "N_QUANTILES",
    "ReviewError",
    "ensure_stats",
    "percentile",
    "percentile_table",
    "percentiles",
    "refresh_stats",
    "value_at",
]

SORT_KEYS: tuple[str, ...] = ("index", "length", *SCORE_COLUMNS)
"""What the pairs list sorts by: file order (the stored file row), total length, or any score
column."""


SCORING_KINDS: tuple[str, ...] = ("audit", "judge")
"""Job kinds that write per-pair scores (a judge job fills the judge's columns only)."""


def scored_job(session: Session, dataset: Dataset, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.dataset_id != dataset.id:
        raise NotFound(f"job {job_id} is not a job of dataset {dataset.id}")
    if job.kind not in SCORING_KINDS or job.status != "succeeded":
        raise ReviewError(
            f"job {job_id} is a {job.status} {job.kind} job; scores exist once an audit (or a "
            "judge job) has succeeded"
        )
    return job


# --- filters --------------------------------------------------------------------------------


def _words(q: str) -> list[str]:
    return [w for w in q.split() if w]


class SearchNotReady(Unavailable, ReviewError):
    """The dataset's search index is still being built (a 503 with Retry-After)."""

    retry_after = 10.0


def text_condition(session: Session, dataset: Dataset, q: str, ident: Any) -> ColumnElement[bool]:
    """All of the words of `q` occur in the prompt, chosen or rejected text (whole words, case
    folded): Postgres full-text search on `pair_search`, SQLite FTS5. On the pair id column
    `ident` the query is driven by (the scores' with a job): a search needs no pairs row."""
    words = _words(q)
    if session.get_bind().dialect.name == "postgresql":
        if not dataset.search_ready:
            raise SearchNotReady(
                f"dataset {dataset.id}'s search index is still being built (it starts when the "
                "upload is stored); try the search again shortly"
            )
        matches = text(
            "SELECT pair_id FROM pair_search WHERE dataset_id = :fts_dataset "
            "AND tsv @@ plainto_tsquery('simple', :fts_query)"
        ).bindparams(fts_dataset=dataset.id, fts_query=" ".join(words))
        return ident.in_(matches)
    phrase = " ".join('"' + w.replace('"', '""') + '"' for w in words)
    matches = text("SELECT rowid FROM pairs_fts WHERE pairs_fts MATCH :fts_query").bindparams(
        fts_query=phrase
    )
    return ident.in_(matches)


def _meta_condition(session: Session, key: str, value: Any) -> ColumnElement[bool]:
    """metadata[key] equals `value`, type included (the string "4" is not the number 4)."""
    field = Pair.meta[key]
    if session.get_bind().dialect.name == "postgresql":
        kind = (
            "string"
            if isinstance(value, str)
            else ("boolean" if isinstance(value, bool) else "number")
        )
        text_value = value if isinstance(value, str) else json.dumps(value)
        return and_(func.json_typeof(field) == kind, field.as_string() == text_value)
    path = "$." + json.dumps(key)
    if isinstance(value, str):
        return and_(func.json_type(Pair.meta, path) == "text", field.as_string() == value)
    if isinstance(value, bool):
        return func.json_type(Pair.meta, path) == ("true" if value else "false")
    return and_(
        func.json_type(Pair.meta, path).in_(("integer", "real")),
        func.json_extract(Pair.meta, path) == value,
    )


def _range(column: Any, low: float | None, high: float | None) -> list[ColumnElement[bool]]:
    out = []
    if low is not None:
        out.append(column >= low)
    if high is not None:
        out.append(column <= high)
    return out


LENGTHS = {
    "prompt": Pair.prompt_chars,
    "chosen": Pair.chosen_chars,
    "rejected": Pair.rejected_chars,
    "total": Pair.prompt_chars + Pair.chosen_chars + Pair.rejected_chars,
}


@dataclass
class Query:
    """A filter resolved against one dataset: the job (if any), the WHERE conditions, and
    whether any condition beyond the dataset / job / split was given."""

    dataset: Dataset
    job: Job | None
    conditions: list[ColumnElement[bool]]
    narrowed: bool
    split: str
    with_reviewer: bool = False  # also join the user who last changed each pair's state
    uses_pairs: bool = True  # some condition reads the pairs table (lengths, metadata)
    # Postgres: the text condition among `conditions` and its words (a page swaps it for the
    # search plan's, backend/services/search_plan.py).
    search: tuple[ColumnElement[bool], str] | None = None
    # The review-state part of the filter (its conditions are among `conditions`), if any: a
    # page on Postgres tests a bitmap of the reviewed pairs for its "no review row" condition
    # (page_rows), and the totals follow review actions with it (counts.py).
    review: ReviewFilter | None = None
    # The filter these conditions were resolved from (its JSON), while they are only its own:
    # the totals' cache key (backend/services/counts.py). None once a caller adds a condition.
    signature: str | None = None

    @property
    def ident(self) -> Any:
        """The pair id column the query is driven by (the scores' with a job)."""
        return Score.pair_id if self.job is not None else Pair.id

    def select(self, *columns: Any, lean: bool = False) -> Select:
        """SELECT `columns` of the matching pairs. `lean`: with a job and no condition on the
        pairs table, read only scores and review states (columns must then be of those; use
        `ident` for the pair id): counts and bulk actions at a million pairs need no texts."""
        if lean and self.job is not None and not self.uses_pairs:
            query = select(*columns).select_from(Score).where(Score.job_id == self.job.id)
            on = and_(Flag.pair_id == Score.pair_id, Flag.dataset_id == self.dataset.id)
            return query.outerjoin(Flag, on).where(*self.conditions)
        query = select(*columns).select_from(Pair)
        if self.job is not None:
            on = and_(Score.pair_id == Pair.id, Score.job_id == self.job.id)
            query = query.join(Score, on)
        # The dataset's own review rows (their index), however many other datasets have.
        flags = and_(Flag.pair_id == Pair.id, Flag.dataset_id == self.dataset.id)
        query = query.outerjoin(Flag, flags)
        if self.with_reviewer:
            query = query.outerjoin(User, User.id == Flag.user_id)
        return query.where(Pair.dataset_id == self.dataset.id, *self.conditions)


def _tag_conditions(dataset: Dataset, f: PairFilter, ident: Any) -> list[ColumnElement[bool]]:
    """The tag conditions of `f` (any of `tags`, none of `exclude_tags`)."""
    unknown = sorted(set(f.tags + f.exclude_tags) - set(TAG_NAMES))
    if unknown:
        raise ReviewError(f"unknown tag {unknown[0]!r}; use one of {', '.join(TAG_NAMES)}")
    conditions = []
    if f.tags:
        conditions.append(tag_condition(dataset.id, f.tags, f.job_id, ident))
    if f.exclude_tags:
        conditions.append(~tag_condition(dataset.id, f.exclude_tags, f.job_id, ident))
    return conditions


def resolve(session: Session, dataset: Dataset, f: PairFilter) -> Query:
    """Check `f` against the dataset (and its job) and turn it into SQL conditions; a condition
    that cannot hold, a score the job lacks or a score filter without a job is a ReviewError."""
    job = scored_job(session, dataset, f.job_id) if f.job_id is not None else None
    conditions: list[ColumnElement[bool]] = []
    narrowed = False
    search = None
    if job is not None and f.split != "all":
        conditions.append(Score.split == f.split)
    if (f.scores or f.percentiles) and job is None:
        raise ReviewError("score and percentile filters need the job_id whose scores to use")
    if f.q is not None and _words(f.q):
        if "\x00" in f.q:
            raise ReviewError("the search text holds a NUL byte")
        ident = Score.pair_id if job is not None else Pair.id
        conditions.append(text_condition(session, dataset, f.q, ident))
        if session.get_bind().dialect.name == "postgresql":
            search = (conditions[-1], " ".join(_words(f.q)))
        narrowed = True
    review = review_conditions(session, dataset, f, Score.pair_id if job else Pair.id)
    conditions.extend(review.conditions)
    narrowed = narrowed or bool(review.conditions)
    stats = ensure_stats(session, job) if (job is not None and f.percentiles) else {}
    for r in [*f.scores, *f.percentiles]:
        if r.column not in SCORE_COLUMNS:
            raise ReviewError(
                f"unknown score column {r.column!r}; use one of {', '.join(SCORE_COLUMNS)}"
            )
        if r.min is not None and r.max is not None and r.min > r.max:
            raise ReviewError(f"{r.column}: min {r.min} is above max {r.max}")
        if any(v is not None and not math.isfinite(v) for v in (r.min, r.max)):
            raise ReviewError(f"{r.column}: range bounds must be finite numbers")
    for r in f.scores:
        conditions.extend(_range(getattr(Score, r.column), r.min, r.max))
        narrowed = True
    for r in f.percentiles:
        for bound in (r.min, r.max):
            if bound is not None and not 0 <= bound <= 100:
                raise ReviewError(f"{r.column}: a percentile is between 0 and 100, not {bound}")
        stat = stats.get(r.column)
        if stat is None:
            raise ReviewError(f"job {f.job_id} has no {r.column!r} scores")
        column = getattr(Score, r.column)
        low = None if r.min is None or r.min <= 0 else value_at(stat, r.min)
        high = None if r.max is None or r.max >= 100 else value_at(stat, r.max)
        conditions.extend(_range(column, low, high))
        conditions.append(column.is_not(None))
        narrowed = True
    for length in f.lengths:
        if length.min is not None and length.max is not None and length.min > length.max:
            raise ReviewError(
                f"length of {length.field}: min {length.min} is above max {length.max}"
            )
        conditions.extend(_range(LENGTHS[length.field], length.min, length.max))
        narrowed = True
    for key, value in f.metadata.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ReviewError(f"metadata {key!r}: compare with a finite number")
        conditions.append(_meta_condition(session, key, value))
        narrowed = True
    tagged = _tag_conditions(dataset, f, Score.pair_id if job is not None else Pair.id)
    conditions.extend(tagged)
    narrowed = narrowed or bool(tagged)
    uses_pairs = job is None or bool(f.lengths or f.metadata)
    return Query(
        dataset,
        job,
        conditions,
        narrowed,
        f.split,
        uses_pairs=uses_pairs,
        search=search,
        review=review if review.conditions else None,
        signature=f.model_dump_json(),
    )


# --- sorting and keyset pagination ----------------------------------------------------------


def sort_column(key: str) -> Any:
    if key == "index":
        # The file's row (ix_pairs_dataset_file_row): file order, also after skipped rows.
        return Pair.file_row
    if key == "length":
        return LENGTHS["total"]
    return getattr(Score, key)


def parse_sort(sort: str, job: Job | None) -> tuple[str, bool]:
    descending = sort.startswith("-")
    key = sort.lstrip("-+")
    if key not in SORT_KEYS:
        raise ReviewError(f"unknown sort key {key!r}; use one of {', '.join(SORT_KEYS)}")
    if key in SCORE_COLUMNS and job is None:
        raise ReviewError(f"sorting by {key!r} needs a job_id whose scores to use")
    return key, descending


@dataclass
class Cursor:
    sort: str
    value: float | None  # the last row's sort value (None in the section without one)
    pair_id: int
    rank: int  # rows before the next page

    def encode(self) -> str:
        raw = json.dumps([self.sort, self.value, self.pair_id, self.rank]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, sort: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            key, value, pair_id, rank = json.loads(raw)
            cursor = cls(str(key), None if value is None else float(value), int(pair_id), int(rank))
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise ReviewError("cursor is not one this API returned") from None
        if cursor.sort != sort:
            raise ReviewError(
                f"cursor belongs to sort {cursor.sort!r}, not {sort!r}; start again without it"
            )
        return cursor


def _has_nulls(session: Session, query: Query, column: str) -> bool:
    """Whether some of the job's listed pairs lack `column` (the statistics say when none do)."""
    if query.job is None:
        return True
    stats = ensure_stats(session, query.job)
    stat, rows = stats.get(column), stats.get("rows:train")
    if query.split == "train" and stat is not None and rows is not None:
        return stat.n < rows.n
    return True


_WALK_ONLY = (
    "SELECT set_config('enable_sort', 'off', true), set_config('jit', 'off', true), "
    "set_config('plan_cache_mode', 'force_custom_plan', true)"
)
"""A page's settings (this transaction only): no sort where an index gives the order, no JIT
compiling for a 50-row read, a plan for this page's own bounds (not a prepared statement's
generic one)."""


def _read(session: Session, statement: Select, walk: bool) -> list[Any]:
    """The rows of a page's statement. `walk`: read by walking the sort's index in order and
    stopping at the page's end. The planner's estimate of a combination of filters (a word, a
    score range, a review state, the cursor's bound) can be ~1 row, and it then read every match
    and sorted them (a page of a common word within a harm range, not flagged: 13 s, where the
    walk takes 2 ms). Every sort key has an index, so only a listed search (its few ids, looked
    up) needs to sort."""
    if not walk:
        return list(session.execute(statement))
    session.execute(text(_WALK_ONLY))
    try:
        return list(session.execute(statement))
    finally:
        session.execute(text("SELECT set_config('enable_sort', 'on', true)"))


def _with_reviewed_bits(session: Session, query: Query, ident: Any) -> Query:
    """`query` testing the dataset's bitmap of reviewed pairs for its "no review state"
    condition (review_states.ReviewedBits: a bit per walked row, where the condition as written
    looks each row up among the review rows), where the dataset has one."""
    if query.review is None or query.review.exclusion is None:
        return query
    condition, states = query.review.exclusion
    bits = reviewed_bits(session, query.dataset.id, states)
    if bits is None:
        return query
    tested = bits.unreviewed(ident)
    return replace(query, conditions=[tested if c is condition else c for c in query.conditions])


def page_rows(
    session: Session,
    query: Query,
    sort: str,
    *,
    cursor: str | None,
    offset: int,
    limit: int,
) -> tuple[list[Any], int, str | None]:
    """(keys, rank of the first row − 1, next cursor): the page's rows as (`_sort` value, `_id`
    pair id), in order. With a cursor the page is read by keyset; else by `offset`.

    Only the keys are read here, from the scores and review states (the pairs table only where a
    filter or the sort reads it): the page's texts and scores are read afterwards for its own rows
    (a search with a few hundred matches sorted by a score had read every match's texts)."""
    key, descending = parse_sort(sort, query.job)
    column = sort_column(key)
    nullable = key in SCORE_COLUMNS
    # The id of the table whose index is walked: its (…, sort, id) index serves the keyset.
    ident = Score.pair_id if nullable else Pair.id
    query = replace(query, with_reviewer=False, uses_pairs=query.uses_pairs or not nullable)
    listed = False
    if query.search is not None:
        condition, words = query.search
        listed = search_plan.probe(session, query.dataset.id, words) is not None
        planned = search_plan.page_condition(session, query.dataset.id, words, ident)
        query = replace(
            query, conditions=[planned if c is condition else c for c in query.conditions]
        )
    keys = (column.label("_sort"), ident.label("_id"))
    order = (column.desc(), ident.desc()) if descending else (column.asc(), ident.asc())
    # Where the column is null throughout (the section after its values) the pair id alone
    # orders the rows: the scores' key serves it, which a partial sort index (without nulls)
    # would not.
    by_id = ident.desc() if descending else ident.asc()

    walk = session.get_bind().dialect.name == "postgresql" and not listed

    if walk:
        query = _with_reviewed_bits(session, query, ident)

    def fetch(*where: ColumnElement[bool], order_by: Sequence[Any], n: int, skip: int = 0) -> list:
        statement = query.select(*keys, lean=True).where(*where).order_by(*order_by)
        return _read(session, statement.offset(skip or None).limit(n), walk)

    if cursor is None and offset > 0:
        # Offset paging (older clients): one sort, fine for shallow pages only.
        start = offset
        nulls_last = [column.is_(None)] if nullable else []
        rows = fetch(order_by=[*nulls_last, *order], n=limit + 1, skip=offset)
    else:
        c = Cursor.decode(cursor, sort) if cursor is not None else None
        start = c.rank if c is not None else 0
        rows = []
        if c is None or c.value is not None:
            where = [column.is_not(None)] if nullable else []
            if c is not None:
                key_now = tuple_(column, ident)
                # Row and length are integers: a float bound would cast the column, and the
                # comparison would filter the index walk instead of starting it (4 s deep).
                then = c.value if nullable or c.value is None else int(c.value)
                key_then = tuple_(literal(then), literal(c.pair_id))
                where.append(key_now < key_then if descending else key_now > key_then)
            rows = fetch(*where, order_by=order, n=limit + 1)
            if nullable and len(rows) < limit + 1 and _has_nulls(session, query, key):
                rows += fetch(column.is_(None), order_by=[by_id], n=limit + 1 - len(rows))
        else:
            after_id = ident < c.pair_id if descending else ident > c.pair_id
            rows = fetch(column.is_(None), after_id, order_by=[by_id], n=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        value = None if last._sort is None else float(last._sort)
        next_cursor = Cursor(sort, value, int(last._id), start + len(rows)).encode()
    return rows, start, next_cursor
