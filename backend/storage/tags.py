"""Pair tags in the database (the exact checks of `worker.influence.tags`): writing them, counting
them per dataset, and the SQL condition of the pairs list's `tag=` filter. Shared by the API
(upload, contamination) and the worker (checks that need an audit's tokenizer)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select
from sqlalchemy.orm import Session

from backend.db import insert_rows
from backend.models import Pair, PairTag
from worker.influence.tags import TAG_NAMES

_CHUNK = 5000


def store_by_index(
    session: Session, dataset_id: int, found: Iterable[tuple[int, str, float | None]]
) -> int:
    """Write tags given by the pairs' 0-based `source_index` (as an upload knows them, before
    it has the ids); returns how many were written. Runs in the caller's transaction."""
    ordered = sorted(found, key=lambda t: (t[0], t[1]))
    written = 0
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        indexes = sorted({index for index, _, _ in chunk})
        stored = session.execute(
            select(Pair.source_index, Pair.id).where(
                Pair.dataset_id == dataset_id, Pair.source_index.in_(indexes)
            )
        )
        ids = {index: pair_id for index, pair_id in stored}
        rows = [
            {"pair_id": ids[index], "dataset_id": dataset_id, "tag": tag, "value": value}
            for index, tag, value in chunk
        ]
        insert_rows(session, PairTag, rows)
        written += len(rows)
    return written


def replace_tags(
    session: Session,
    dataset_id: int,
    tag: str,
    found: Sequence[tuple[int, float | None]],
    job_id: int | None = None,
) -> int:
    """Replace the dataset's `tag` rows (of `job_id`, or those without a job) with `found`
    (pair id, value) pairs; returns how many. The caller commits."""
    owner = PairTag.job_id == job_id if job_id is not None else PairTag.job_id.is_(None)
    session.execute(
        delete(PairTag).where(PairTag.dataset_id == dataset_id, PairTag.tag == tag, owner)
    )
    for start in range(0, len(found), _CHUNK):
        insert_rows(
            session,
            PairTag,
            [
                {
                    "pair_id": pair_id,
                    "dataset_id": dataset_id,
                    "tag": tag,
                    "job_id": job_id,
                    "value": value,
                }
                for pair_id, value in found[start : start + _CHUNK]
            ],
        )
    return len(found)


def tag_counts(session: Session, dataset_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """{dataset id: {tag: pairs tagged}} (a pair tagged by several audits counts once); every
    registered tag is listed, with 0 where none."""
    counts: dict[int, dict[str, int]] = {d: dict.fromkeys(TAG_NAMES, 0) for d in dataset_ids}
    if not dataset_ids:
        return counts
    rows = session.execute(
        select(PairTag.dataset_id, PairTag.tag, func.count(func.distinct(PairTag.pair_id)))
        .where(PairTag.dataset_id.in_(list(dataset_ids)))
        .group_by(PairTag.dataset_id, PairTag.tag)
    )
    for dataset_id, tag, n in rows:
        counts[dataset_id][tag] = int(n)
    return counts


def tag_condition(
    dataset_id: int, tags: Sequence[str], job_id: int | None, ident: Any
) -> ColumnElement[bool]:
    """The pair (`ident`, its id column) has any of `tags`. With `job_id`, an audit's tags
    count only for that audit (another may have truncated at another max_length); without,
    any audit's do."""
    tagged = select(PairTag.pair_id).where(
        PairTag.dataset_id == dataset_id, PairTag.tag.in_(list(tags))
    )
    if job_id is not None:
        tagged = tagged.where(or_(PairTag.job_id.is_(None), PairTag.job_id == job_id))
    return ident.in_(tagged)
