"""Where a job's scores are stored, and how a whole job's worth is written at once.

On Postgres `scores` is partitioned by job (LIST on `job_id`): each job's rows live in their own
table `scores_job_<id>`. A finished audit writes every row of its job in one go, so the partition
is built as a bulk load is: a bare table, a binary COPY, the indexes built by sorting afterwards,
then `ATTACH PARTITION`. That is several times faster than inserting into indexed tables (each
row into the primary key and four sort indexes, at random places), and attaching takes only a
SHARE UPDATE EXCLUSIVE lock on `scores`, so readers and other jobs' writers never wait for it.
Writers that add rows a shard at a time (the sharded engine's scoring tasks) first make sure the
job's partition exists (`ensure_partition`). There is no default partition: a row of a job
without a partition fails loudly instead of landing in a table every later attach would scan.

SQLite keeps one plain table; the same functions write it with multi-row INSERTs.

`scores.pair_id` has no foreign key: a job's rows are written only for pairs of the job's own
dataset (which a key would not check either), and when a dataset goes its jobs go, and their rows
with them (`scores.job_id` cascades). Dropping the key saves a lookup per written row.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence

import numpy as np
from sqlalchemy import delete, insert, text
from sqlalchemy.orm import Session

from backend.models import INDEXED_SORTS, Score

_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = struct.pack(">h", -1)
_COPY_ROWS = 100_000  # rows per binary block: ~8 MB with four score columns
_ADVISORY = 0x5C0E  # pg_advisory_xact_lock(_ADVISORY, job_id): one partition creator per job


def partition_name(job_id: int) -> str:
    return f"scores_job_{int(job_id)}"


def is_postgres(session: Session) -> bool:
    """Whether the session's database is Postgres (partitions and COPY) rather than SQLite."""
    return session.get_bind().dialect.name == "postgresql"


def _exists(session: Session, job_id: int) -> bool:
    """Whether the job's partition is attached (a leftover bare table is not)."""
    return bool(
        session.scalar(
            text("SELECT c.relispartition FROM pg_class c WHERE c.oid = to_regclass(:name)"),
            {"name": partition_name(job_id)},
        )
    )


def ensure_partition(session: Session, job_id: int) -> None:
    """Create and attach the job's (empty) partition if it has none. Postgres only; a no-op on
    SQLite. Concurrent callers for one job take turns (a transaction-scoped advisory lock)."""
    if not is_postgres(session):
        return
    session.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": _ADVISORY, "b": job_id})
    if _exists(session, job_id):
        return
    name = partition_name(job_id)
    session.execute(text(f"DROP TABLE IF EXISTS {name}"))  # a bare table a failed load left
    session.execute(text(f"CREATE TABLE {name} (LIKE scores INCLUDING DEFAULTS)"))
    _attach(session, job_id)


def _attach(session: Session, job_id: int) -> None:
    name = partition_name(job_id)
    # The CHECK proves every row belongs to the job, so ATTACH skips its validating scan; it
    # builds any index the table lacks and validates the key on `jobs` (one anti-join).
    session.execute(text(f"ALTER TABLE {name} ADD CONSTRAINT {name}_job CHECK (job_id = {job_id})"))
    session.execute(text(f"ALTER TABLE scores ATTACH PARTITION {name} FOR VALUES IN ({job_id})"))
    session.execute(text(f"ALTER TABLE {name} DROP CONSTRAINT {name}_job"))


def replace_scores(
    session: Session,
    job_id: int,
    train_ids: Sequence[int],
    val_ids: Sequence[int],
    columns: dict[str, np.ndarray],
) -> None:
    """Make the job's rows exactly these, inside the session's transaction: one per training pair
    with its scores (NaN and ±inf stored as NULL) and one per validation pair with none."""
    train = np.asarray(train_ids, dtype=np.int64)
    val = np.asarray(val_ids, dtype=np.int64)
    values = {k: np.asarray(v, dtype=np.float64) for k, v in columns.items()}
    if not is_postgres(session):
        _insert_rows(session, job_id, train, val, values)
        return
    session.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": _ADVISORY, "b": job_id})
    name = partition_name(job_id)
    if _exists(session, job_id):  # rewritten in place (a rerun over an existing partition)
        session.execute(text(f"DELETE FROM {name}"))
        _copy(session, name, job_id, train, val, values)
        return
    session.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
    session.execute(text(f"DROP TABLE IF EXISTS {name}"))
    session.execute(text(f"CREATE TABLE {name} (LIKE scores INCLUDING DEFAULTS)"))
    _copy(session, name, job_id, train, val, values, freeze=True)
    session.execute(text(f"ALTER TABLE {name} ADD PRIMARY KEY (job_id, pair_id)"))
    for column in INDEXED_SORTS:
        session.execute(
            text(f"CREATE INDEX {name}_{column} ON {name} (job_id, split, {column}, pair_id)")
        )
    _attach(session, job_id)
    session.execute(text(f"ANALYZE {name}"))  # the review's planner estimates, from the start


def _copy(
    session: Session,
    table: str,
    job_id: int,
    train: np.ndarray,
    val: np.ndarray,
    values: dict[str, np.ndarray],
    freeze: bool = False,
) -> None:
    """Binary COPY of the rows into `table`. `freeze` (a table created in this transaction):
    the rows are written frozen and their pages marked all-visible, so the sort indexes answer
    the review's pages, counts and bulk actions by index-only scans from the start (a vacuum
    would otherwise have to mark them first, and autovacuum may be late or off)."""
    names = sorted(values)
    options = "FORMAT binary, FREEZE" if freeze else "FORMAT binary"
    raw = session.connection().connection.driver_connection
    assert raw is not None  # a live connection inside the session's transaction
    for ids, split, cols in ((train, "train", names), (val, "val", [])):
        if len(ids) == 0:
            continue
        listed = ", ".join(["job_id", "pair_id", "split", *cols])
        statement = f"COPY {table} ({listed}) FROM STDIN ({options})"
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            copy.write(_HEADER)
            for block in binary_tuples(job_id, ids, split, cols, values):
                copy.write(block)
            copy.write(_TRAILER)


def binary_tuples(
    job_id: int,
    pair_ids: np.ndarray,
    split: str,
    names: Sequence[str],
    values: dict[str, np.ndarray],
) -> Iterator[bytes]:
    """Postgres binary COPY tuples of (job_id, pair_id, split, *names), built by numpy.

    A binary tuple is a field count, then each field's byte length and bytes (length -1 for
    NULL). Rows with the same set of missing values share one fixed layout, so each such group
    is one structured array; a typical audit has a single group.
    """
    split_bytes = split.encode()
    for start in range(0, len(pair_ids), _COPY_ROWS):
        stop = min(start + _COPY_ROWS, len(pair_ids))
        matrix = np.column_stack([values[k][start:stop] for k in names]) if names else None
        present = (
            np.isfinite(matrix) if matrix is not None else np.ones((stop - start, 0), dtype=bool)
        )
        patterns, group = np.unique(present, axis=0, return_inverse=True)
        group = np.asarray(group).reshape(-1)
        for g, pattern in enumerate(patterns):
            rows = np.flatnonzero(group == g)
            fields: list[tuple[str, str]] = [
                ("count", ">i2"),
                ("job_len", ">i4"),
                ("job", ">i4"),
                ("pair_len", ">i4"),
                ("pair", ">i4"),
                ("split_len", ">i4"),
                ("split", f"S{len(split_bytes)}"),
            ]
            for k in range(len(names)):
                fields.append((f"len{k}", ">i4"))
                if pattern[k]:
                    fields.append((f"v{k}", ">f8"))
            block = np.empty(len(rows), dtype=np.dtype(fields))
            block["count"] = 3 + len(names)
            block["job_len"], block["job"] = 4, job_id
            block["pair_len"], block["pair"] = 4, pair_ids[start:stop][rows]
            block["split_len"], block["split"] = len(split_bytes), split_bytes
            for k in range(len(names)):
                if pattern[k]:
                    block[f"len{k}"], block[f"v{k}"] = 8, matrix[rows, k]  # type: ignore[index]
                else:
                    block[f"len{k}"] = -1
            yield block.tobytes()


def _insert_rows(
    session: Session,
    job_id: int,
    train: np.ndarray,
    val: np.ndarray,
    values: dict[str, np.ndarray],
) -> None:
    session.execute(delete(Score).where(Score.job_id == job_id))
    names = list(values)
    cleaned = [np.where(np.isfinite(values[n]), values[n], np.nan).tolist() for n in names]
    rows: list[dict] = []
    for position, pair_id in enumerate(train.tolist()):
        row = {"job_id": job_id, "pair_id": pair_id, "split": "train"}
        for name, column in zip(names, cleaned, strict=True):
            value = column[position]
            row[name] = None if value != value else value  # NaN → None
        rows.append(row)
    rows.extend({"job_id": job_id, "pair_id": pid, "split": "val"} for pid in val.tolist())
    for start in range(0, len(rows), 5_000):
        session.execute(insert(Score), rows[start : start + 5_000])
