"""The review-state conditions of a pairs filter (`states`, `flagged`) as SQL, for the pairs
list, the bulk actions and the export (backend/services/query.py); the bitmap of a dataset's
reviewed pairs a page tests instead (ReviewedBits); and the review generation what is cached
per review state is keyed by."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, LargeBinary, exists, func, literal, or_, select, true
from sqlalchemy.orm import Session, aliased

from backend.models import REVIEW_STATES, Dataset, Flag, Pair, ReviewAction
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


BITMAP_SPAN_MAX = 1 << 25
"""Postgres: a page tests "no review row in these states" against a bitmap of the dataset's
reviewed pairs (ReviewedBits) where the dataset's pair ids span at most this many (a 4 MiB
bitmap; one upload's ids are consecutive); else the condition as written."""
_BITS_CACHE_BYTES = 64 << 20
_BITS: OrderedDict[tuple[Any, ...], ReviewedBits | None] = OrderedDict()
_BITS_LOCK = threading.Lock()


@dataclass(frozen=True)
class ReviewedBits:
    """Which of a dataset's pairs have a review row in some states: bit `id - base` of `bits`
    (least significant bit first, as Postgres' get_bit reads it) for pair `id`.

    Reviewers flag the top of a ranking and then page through the rest of it, so the rows a
    page walks first are the reviewed ones (55,000 of them for a page after a bulk flag of
    100,000 pairs). The conditions below test each walked row against the dataset's review
    rows: the hashed `NOT IN` spends ~30 ms building its hash and looking the rows up (40 ms
    for that page), the anti-join probes the review index for each (66 ms). A page instead
    passes this bitmap as one parameter and tests a bit per walked row: 7 ms, the walk's own
    cost. Built once per review generation (~16 ms at 100,000 review rows) and kept per
    process."""

    bits: bytes
    base: int
    count: int

    def unreviewed(self, ident: Any) -> ColumnElement[bool]:
        """`ident` (a pair id column of the dataset's pairs) has no review row in the states."""
        if not self.count:
            return true()
        return func.get_bit(literal(self.bits, LargeBinary), ident - self.base) == 0


def reviewed_bits(session: Session, dataset_id: int, states: Sequence[str]) -> ReviewedBits | None:
    """The bitmap of the dataset's pairs with a review row in `states`, as of its latest review
    action; None off Postgres or where its pair ids span more than BITMAP_SPAN_MAX."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    generation = review_generation(session, dataset_id)
    key = (str(session.get_bind().engine.url), dataset_id, tuple(sorted(states)), generation)
    with _BITS_LOCK:
        if key in _BITS:
            _BITS.move_to_end(key)
            return _BITS[key]
    found = _build_bits(session, dataset_id, states)
    with _BITS_LOCK:
        _BITS[key] = found
        while sum(len(b.bits) for b in _BITS.values() if b) > _BITS_CACHE_BYTES:
            _BITS.popitem(last=False)
    return found


def _build_bits(session: Session, dataset_id: int, states: Sequence[str]) -> ReviewedBits | None:
    low, high = session.execute(
        select(func.min(Pair.id), func.max(Pair.id)).where(Pair.dataset_id == dataset_id)
    ).one()
    if low is None or high - low + 1 > BITMAP_SPAN_MAX:
        return None
    # The ids as one binary string (4 bytes each): a list of 100,000 rows costs more to fetch.
    packed = session.scalar(
        select(func.string_agg(func.int4send(Flag.pair_id), literal(b"", LargeBinary))).where(
            Flag.dataset_id == dataset_id, Flag.state.in_(states)
        )
    )
    ids = np.frombuffer(packed or b"", dtype=">i4").astype(np.int64) - low
    ids = ids[(ids >= 0) & (ids <= high - low)]
    bits = np.zeros((high - low) // 8 + 1, dtype=np.uint8)
    np.bitwise_or.at(bits, ids >> 3, np.left_shift(1, ids & 7).astype(np.uint8))
    return ReviewedBits(bits.tobytes(), int(low), int(ids.size))


def _without_flag(
    session: Session, dataset: Dataset, ident: Any, states: Sequence[str]
) -> ColumnElement[bool]:
    """The pair has no review row in one of `states` (counts, bulk actions, exports; a page on
    Postgres tests ReviewedBits instead).

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
        return ident.not_in(excluded)
    other = aliased(Flag)
    return ~exists().where(other.pair_id == ident, other.state.in_(states))


DECIDED = tuple(s for s in REVIEW_STATES if s != "unreviewed")


def review_conditions(
    session: Session, dataset: Dataset, f: PairFilter, ident: Any
) -> tuple[list[ColumnElement[bool]], tuple[ColumnElement[bool], tuple[str, ...]] | None]:
    """The review-state conditions of `f` (states, flagged), and the "no review row in these
    states" one among them, if any, with its states (Query.exclusion: a page tests the
    dataset's ReviewedBits instead)."""
    conditions: list[ColumnElement[bool]] = []
    exclusion = None
    if f.states:
        named = [s for s in f.states if s != "unreviewed"]
        if "unreviewed" not in f.states:
            conditions.append(Flag.state.in_(named))
        elif named:
            without = _without_flag(session, dataset, ident, DECIDED)
            conditions.append(or_(Flag.state.in_(named), without))
        else:
            conditions.append(_without_flag(session, dataset, ident, DECIDED))
            exclusion = (conditions[-1], DECIDED)
    if f.flagged is True:
        conditions.append(Flag.state == "flagged")
    elif f.flagged is False:
        conditions.append(_without_flag(session, dataset, ident, ["flagged"]))
        if exclusion is None:
            exclusion = (conditions[-1], ("flagged",))
    return conditions, exclusion
