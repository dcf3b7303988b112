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
from sqlalchemy import (
    ColumnElement,
    LargeBinary,
    and_,
    exists,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session, aliased

from backend.models import REVIEW_STATES, Dataset, Flag, Pair, ReviewAction, ReviewEvent
from backend.schemas import PairFilter

HASHED_EXCLUSION_MAX = 400_000
"""Postgres: a "no review state" filter whose dataset holds at most this many review rows in the
excluded states reads them once into a hash (at ~64 B a row, within the 64 MB a hash may take,
backend/db.py); above it, each walked row probes the index."""


def review_generation(session: Session, dataset_id: int) -> int | None:
    """The dataset's latest review action: review states change only through actions, so what
    is cached per generation (totals, review-row counts) stays true until the next one."""
    return session.scalar(
        select(func.max(ReviewAction.id)).where(ReviewAction.dataset_id == dataset_id)
    )


def _review_rows(session: Session, dataset: Dataset, states: Sequence[str]) -> int:
    """The dataset's review rows in `states`: the count of its ReviewedBits (kept per process and
    followed from later actions, and the bitmap a page then tests), else counted."""
    bits = reviewed_bits(session, dataset.id, states)
    if bits is not None:
        return bits.count
    return (
        session.scalar(
            select(func.count())
            .select_from(Flag)
            .where(Flag.dataset_id == dataset.id, Flag.state.in_(states))
        )
        or 0
    )


BITMAP_SPAN_MAX = 1 << 25
"""Postgres: a page tests "no review row in these states" against a bitmap of the dataset's
reviewed pairs (ReviewedBits) where the dataset's pair ids span at most this many (a 4 MiB
bitmap; one upload's ids are consecutive); else the condition as written."""
BITS_STEP_MAX = 20_000
"""A cached bitmap follows the actions since it was made from their events where they changed
at most this many pairs (a reviewer's decisions, one by one); else it is made again."""
_BITS_CACHE_BYTES = 64 << 20
_WIDE = "too wide"
_BITS: OrderedDict[tuple[Any, ...], ReviewedBits | str] = OrderedDict()
_BITS_LOCK = threading.Lock()


def lock_reviews(session: Session, dataset_id: int) -> None:
    """Take the dataset's review lock until the transaction ends (Postgres; SQLite writes one
    transaction at a time anyway): its review actions commit one at a time, in the order of
    their ids, so the latest action's id (review_generation) names one set of review states,
    and what is cached per generation (totals, review-row counts, ReviewedBits) stays true.
    Without it, an action that committed after a later-numbered one left the generation as it
    was, and those caches kept the states from before it."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_REVIEW_LOCK, dataset_id)))


_REVIEW_LOCK = 0x5E71  # pg_advisory_xact_lock(_REVIEW_LOCK, dataset_id)


@dataclass(frozen=True)
class ReviewedBits:
    """Which of a dataset's pairs have a review row in some states, as of review action
    `generation`: bit `id - base` of `bits` (least significant bit first, as Postgres' get_bit
    reads it) for pair `id`.

    Reviewers flag the top of a ranking and then page through the rest of it, so the rows a
    page walks first are the reviewed ones (55,000 of them for a page after a bulk flag of
    100,000 pairs). The conditions below test each walked row against the dataset's review
    rows: the hashed `NOT IN` spends ~30 ms building its hash and looking the rows up (40 ms
    for that page), the anti-join probes the review index for each (66 ms). A page instead
    passes this bitmap as one parameter and tests a bit per walked row: 7 ms, the walk's own
    cost. Made from the review index (~16 ms at 100,000 review rows), kept per process, and
    brought up to date from the events of later actions (BITS_STEP_MAX)."""

    bits: bytes
    base: int
    count: int
    generation: int | None

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
    key = (str(session.get_bind().engine.url), dataset_id, tuple(sorted(states)))
    with _BITS_LOCK:
        cached = _BITS.get(key)
        if cached is not None:
            _BITS.move_to_end(key)
    if cached == _WIDE:
        return None
    if isinstance(cached, ReviewedBits) and cached.generation == generation:
        return cached
    found = (
        _advance(session, dataset_id, states, cached, generation)
        if isinstance(cached, ReviewedBits)
        else None
    ) or _build_bits(session, dataset_id, states, generation)
    with _BITS_LOCK:
        _BITS[key] = found or _WIDE
        while sum(len(b.bits) for b in _BITS.values() if isinstance(b, ReviewedBits)) > (
            _BITS_CACHE_BYTES
        ):
            _BITS.popitem(last=False)
    return found


def _build_bits(
    session: Session, dataset_id: int, states: Sequence[str], generation: int | None
) -> ReviewedBits | None:
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
    return ReviewedBits(bits.tobytes(), int(low), int(ids.size), generation)


def review_changes(
    session: Session, dataset_id: int, since: int | None, now: int | None, most: int
) -> dict[int, tuple[str, str]] | None:
    """The pairs the dataset's review actions after generation `since` up to `now` changed:
    each pair's state before the first of them and after the last. None where they changed more
    than `most` pairs (at most BITS_STEP_MAX), or `now` is not after `since` (a cache of another
    database's history). Complete, and the same on every call, because actions commit in the
    order of their ids (lock_reviews): kept per process for the next caller (a page's bitmap,
    its total and the review-row count each follow the same actions)."""
    if now is None or now < (since or 0):
        return None
    key = (str(session.get_bind().engine.url), dataset_id, since or 0, now)
    with _BITS_LOCK:
        found = _CHANGES.get(key)
    if found is None:
        found = _read_changes(session, dataset_id, since or 0, now)
        with _BITS_LOCK:
            _CHANGES[key] = found
            while len(_CHANGES) > 256:
                _CHANGES.popitem(last=False)
    changed, changes = found
    return changes if changed <= most else None


_CHANGES: OrderedDict[tuple[Any, ...], tuple[int, dict[int, tuple[str, str]] | None]] = (
    OrderedDict()
)


def _read_changes(
    session: Session, dataset_id: int, since: int, now: int
) -> tuple[int, dict[int, tuple[str, str]] | None]:
    """(pairs changed, their changes; None above BITS_STEP_MAX)."""
    later = and_(
        ReviewAction.dataset_id == dataset_id, ReviewAction.id > since, ReviewAction.id <= now
    )
    changed = int(session.scalar(select(func.sum(ReviewAction.count)).where(later)) or 0)
    if changed > BITS_STEP_MAX:
        return changed, None
    events = session.execute(
        select(ReviewEvent.pair_id, ReviewEvent.old_state, ReviewEvent.new_state)
        .join(ReviewAction, ReviewAction.id == ReviewEvent.action_id)
        .where(later)
        .order_by(ReviewEvent.action_id, ReviewEvent.id)
    ).all()
    out: dict[int, tuple[str, str]] = {}
    for pair, old, new in events:
        out[int(pair)] = (out[int(pair)][0] if int(pair) in out else old, new)
    return changed, out


def _advance(
    session: Session,
    dataset_id: int,
    states: Sequence[str],
    cached: ReviewedBits,
    generation: int | None,
) -> ReviewedBits | None:
    """`cached` brought to `generation` from the events of the actions since; None where they
    changed more than BITS_STEP_MAX pairs."""
    changes = review_changes(session, dataset_id, cached.generation, generation, BITS_STEP_MAX)
    if changes is None:
        return None
    bits = np.frombuffer(cached.bits, dtype=np.uint8).copy()
    ids = np.fromiter(changes, dtype=np.int64, count=len(changes)) - cached.base
    on = np.fromiter((new in states for _, new in changes.values()), dtype=bool, count=len(ids))
    inside = (ids >= 0) & (ids < bits.size * 8)
    ids, on = ids[inside], on[inside]
    was = ((bits[ids >> 3] >> (ids & 7)) & 1).astype(bool)
    masks = np.left_shift(1, ids & 7).astype(np.uint8)
    np.bitwise_and.at(bits, ids >> 3, ~masks)
    np.bitwise_or.at(bits, ids[on] >> 3, masks[on])
    count = cached.count + int(on.sum()) - int(was.sum())
    return ReviewedBits(bits.tobytes(), cached.base, count, generation)


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


@dataclass
class ReviewFilter:
    """The review-state part of a pairs filter: its SQL `conditions`, the "no review row in
    these states" one among them with its states (`exclusion`: a page tests the dataset's
    ReviewedBits instead), and the same test on one pair's state in Python (`matches`: the
    totals follow review actions from their events, backend/services/counts.py)."""

    conditions: list[ColumnElement[bool]]
    exclusion: tuple[ColumnElement[bool], tuple[str, ...]] | None
    states: tuple[str, ...]
    flagged: bool | None

    def matches(self, state: str) -> bool:
        """Whether a pair in `state` ('unreviewed' without a review row) passes the filter."""
        in_states = not self.states or state in self.states
        return in_states and (self.flagged is None or (state == "flagged") == self.flagged)


def review_conditions(
    session: Session, dataset: Dataset, f: PairFilter, ident: Any
) -> ReviewFilter:
    """The review-state conditions of `f` (states, flagged) as a ReviewFilter."""
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
    return ReviewFilter(conditions, exclusion, tuple(f.states or ()), f.flagged)
