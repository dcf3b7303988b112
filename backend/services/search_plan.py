"""How a page of a text search is read on Postgres: from the text index when the words are rare,
from the sort's index when they are common.

The generic condition (`pairs.id IN (SELECT pair_id FROM pair_search WHERE tsv @@ ...)`) leaves
the choice to the planner, whose guess of a word's frequency is a constant for rare words: for a
word with one hit it walked the whole harm index and probed the search table row by row. Here the
matches are first read from the GIN index with a bound (PROBE_LIMIT + 1 ids):

- at most PROBE_LIMIT matches: the page's condition is `pair_id = ANY(<those ids>)`; the
  planner, now knowing how many, looks them up and sorts them, or walks the sort's index and
  checks each row against the (hashed) list;
- more: the words are common (at least PROBE_LIMIT / n of the pairs match), so walking the
  sort's index in order and probing each row's tsvector by its key (`EXISTS (... OFFSET 0)`, which
  the planner keeps as a per-row probe rather than a hash of every match) meets a page's worth of
  matches within a few thousand rows.

A dataset's search rows never change once built, so the probe's outcome is cached per process
(by database, dataset and words): the pages after the first, deeper cursors and reloads skip it.
Counts, bulk actions and exports keep the generic condition (they read every match anyway).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Integer, any_, bindparam, column, exists, func, select, text
from sqlalchemy import table as table_clause
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

PROBE_LIMIT = 10_000
"""Matches up to which a search page starts from the text index (their ids, listed)."""

_SEARCH = table_clause("pair_search", column("pair_id", Integer), column("tsv"))
_CACHE: OrderedDict[tuple[str, int, str], np.ndarray | None] = OrderedDict()
_CACHE_ENTRIES = 256


def probe(session: Session, dataset_id: int, words: str) -> np.ndarray | None:
    """The ids of the dataset's pairs matching `words` when there are at most PROBE_LIMIT of
    them (sorted), else None; cached per process."""
    key = (str(session.get_bind().engine.url), dataset_id, words)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    found = session.scalars(
        text(
            "SELECT pair_id FROM pair_search WHERE dataset_id = :d "
            "AND tsv @@ plainto_tsquery('simple', :q) LIMIT :n"
        ),
        {"d": dataset_id, "q": words, "n": PROBE_LIMIT + 1},
    ).all()
    ids = None if len(found) > PROBE_LIMIT else np.sort(np.asarray(found, dtype=np.int64))
    _CACHE[key] = ids
    if len(_CACHE) > _CACHE_ENTRIES:
        _CACHE.popitem(last=False)
    return ids


def page_condition(
    session: Session, dataset_id: int, words: str, ident: Any
) -> ColumnElement[bool]:
    """The condition a page of the search reads its rows with, on the pair id column `ident`
    the query is driven by (the scores' with a job, else the pairs')."""
    ids = probe(session, dataset_id, words)
    if ids is not None:
        listed = bindparam("search_ids", ids.tolist(), type_=ARRAY(Integer))
        return ident == any_(listed)
    tsquery = func.plainto_tsquery("simple", words)
    match = (
        select(_SEARCH.c.pair_id)
        .where(_SEARCH.c.pair_id == ident, _SEARCH.c.tsv.op("@@")(tsquery))
        .offset(0)  # not flattened into a join: one probe per row walked
    )
    return exists(match)
