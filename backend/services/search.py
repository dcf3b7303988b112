"""The text-search index, built after an upload is stored rather than during it.

On Postgres each pair's words live in `pair_search` (a tsvector per pair, one GIN index): making
the vectors costs about as much as storing the pairs, so the upload does not wait for it. The
upload's request schedules the build right after its response, and the reaper's passes finish any
build a restart interrupted; until a dataset's index is ready, a text search on it answers 503
with Retry-After. On SQLite, FTS5 triggers index each pair as it is inserted (the embedded mode's
datasets are small), so a dataset is searchable at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from backend.db import get_sessionmaker, refresh_planner_stats
from backend.models import Dataset

log = logging.getLogger(__name__)

VECTOR = "to_tsvector('simple', p.prompt || ' ' || p.chosen || ' ' || p.rejected)"
_BATCH = 50_000


def ready_at_ingest(session: Session) -> bool:
    """Whether a dataset is searchable the moment its pairs are stored (SQLite's triggers)."""
    return session.get_bind().dialect.name != "postgresql"


def build(session: Session, dataset_id: int) -> int:
    """Index the dataset's pairs not yet indexed (idempotent; batches of 50,000 pairs, each its
    own transaction) and mark the dataset searchable; returns how many pairs were indexed."""
    dataset = session.get(Dataset, dataset_id)
    if dataset is None or dataset.search_ready:
        return 0
    done = 0
    if session.get_bind().dialect.name == "postgresql":
        last = 0
        while True:
            upper = session.scalar(
                text(
                    "SELECT max(id) FROM (SELECT id FROM pairs WHERE dataset_id = :d "
                    "AND id > :last ORDER BY id LIMIT :n) AS batch"
                ),
                {"d": dataset_id, "last": last, "n": _BATCH},
            )
            if upper is None:
                break
            result = session.execute(
                text(
                    "INSERT INTO pair_search (pair_id, dataset_id, tsv) "
                    f"SELECT p.id, p.dataset_id, {VECTOR} FROM pairs AS p "
                    "WHERE p.dataset_id = :d AND p.id > :last "
                    "AND p.id <= :upper ON CONFLICT (pair_id) DO NOTHING"
                ),
                {"d": dataset_id, "last": last, "upper": upper},
            )
            session.commit()
            done += max(result.rowcount, 0)  # type: ignore[attr-defined]
            last = upper
    session.execute(update(Dataset).where(Dataset.id == dataset_id).values(search_ready=True))
    session.commit()
    refresh_planner_stats(session, "pair_search", done)
    return done


def build_in_background(dataset_id: int, factory: Callable[[], Session] | None = None) -> None:
    """`build` in its own session, logging rather than raising (a BackgroundTasks callable)."""
    factory = factory or get_sessionmaker()
    try:
        with factory() as session:
            n = build(session, dataset_id)
        if n:
            log.info("search index of dataset %d: %d pairs", dataset_id, n)
    except Exception:
        log.exception(
            "building the search index of dataset %d failed; the reaper retries", dataset_id
        )


def catch_up(factory: Callable[[], Session] | None = None) -> int:
    """Finish every dataset's index that is not ready (after a restart); returns how many."""
    factory = factory or get_sessionmaker()
    with factory() as session:
        pending = list(session.scalars(select(Dataset.id).where(Dataset.search_ready.is_(False))))
    for dataset_id in pending:
        build_in_background(dataset_id, factory)
    return len(pending)
