"""Housekeeping of the score tables: dropping the partitions of deleted jobs (the partitions
themselves are written by backend.storage.scores)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.storage.scores import is_postgres, partition_name

log = logging.getLogger(__name__)

_PARTITION = re.compile(r"^scores_job_(\d+)$")


def drop_partitions(session: Session, job_ids: Sequence[int] | None = None) -> int:
    """Drop the partitions of these jobs, or of every job that no longer exists (None): what a
    deleted job leaves behind once its rows are gone. Each drop waits at most 2 s for readers
    of `scores` (it needs the parent exclusively for a moment); one that cannot is left for the
    next sweep. Commits. Returns how many were dropped."""
    if not is_postgres(session):
        return 0
    names = session.scalars(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass('scores')"
        )
    ).all()
    wanted = {partition_name(j) for j in job_ids} if job_ids is not None else None
    live = set(session.scalars(text("SELECT id FROM jobs")).all())
    dropped = 0
    for name in names:
        match = _PARTITION.match(name)
        if match is None:
            continue
        if (wanted is not None and name not in wanted) or int(match.group(1)) in live:
            continue
        try:
            session.execute(text("SET LOCAL lock_timeout = '2s'"))
            session.execute(text(f"DROP TABLE IF EXISTS {name}"))
            session.commit()
            dropped += 1
        except Exception:  # a long reader holds scores: next time
            session.rollback()
            log.info("partition %s not dropped yet (scores is busy)", name, exc_info=True)
    session.commit()
    return dropped
