"""Upload ingest: stream the file to disk, validate every row, store all pairs or nothing."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from sqlalchemy.orm import Session

from backend.db import insert_rows, refresh_planner_stats
from backend.models import Dataset, Pair, User
from backend.services import search
from backend.settings import Settings
from worker.influence.formats import map_columns
from worker.influence.io import (
    BadRows,
    LimitExceeded,
    PairFormatError,
    check_storable,
    detect_format,
    iter_records,
    parse_pairs,
    schema_of,
)

_BATCH = 2000
_COPY_CHUNK = 1 << 20


class UploadTooLarge(ValueError):
    pass


MAX_LISTED = 1000
"""Bad rows an upload lists (a refused file stops being read after this many)."""

PREVIEW_PAIRS = 5
"""Pairs a preview shows."""

PREVIEW_RECORDS = 200
"""Records a preview reads at most (bad ones included) before it stops."""

PREVIEW_CHARS = 2000
"""A preview's texts are cut to this many characters."""

MAX_FILENAME = 255
"""Longest file name kept (most file systems' own limit)."""

STAGED_PREFIX = "incoming-"
"""Uploads being parsed: `incoming-<host>-<pid>-<random>` under <data>/uploads/."""

STAGED_MAX_AGE_SECONDS = 24 * 3600
"""A staged file older than this is an orphan whatever host wrote it."""


def _staged_name() -> str:
    host = socket.gethostname().replace("-", "_")[:40] or "host"
    return f"{STAGED_PREFIX}{host}-{os.getpid()}-{uuid.uuid4().hex}"


def clean_staged(settings: Settings) -> int:
    """Remove what a killed server left while parsing uploads: staged files of this host whose
    process is gone, any staged file older than a day, and dataset folders without a dataset
    row (a crash between the move and the commit). Returns how many were removed."""
    from sqlalchemy import select

    from backend.db import session_scope

    removed = 0
    uploads = settings.data_dir / "uploads"
    host = socket.gethostname().replace("-", "_")[:40] or "host"
    now = time.time()
    for path in uploads.glob(f"{STAGED_PREFIX}*") if uploads.is_dir() else ():
        parts = path.name[len(STAGED_PREFIX) :].split("-")
        stale = now - path.stat().st_mtime > STAGED_MAX_AGE_SECONDS
        dead = len(parts) == 3 and parts[0] == host and not _alive(parts[1])
        if stale or dead:
            path.unlink(missing_ok=True)
            removed += 1
    datasets = settings.data_dir / "datasets"
    if datasets.is_dir():
        folders = {p.name: p for p in datasets.iterdir() if p.is_dir() and p.name.isdigit()}
        if folders:
            with session_scope() as session:
                known = {str(i) for i in session.scalars(select(Dataset.id))}
            for name, folder in folders.items():
                # Young folders may belong to an upload committing right now.
                if name not in known and now - folder.stat().st_mtime > 3600:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed += 1
    return removed


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _spool(stream: IO[bytes], target: Path, limit: int) -> str:
    """Copy the upload to `target` chunk by chunk; return its SHA-256."""
    digest = hashlib.sha256()
    size = 0
    with target.open("wb") as out:
        while chunk := stream.read(_COPY_CHUNK):
            size += len(chunk)
            if size > limit:
                raise UploadTooLarge(f"the file is larger than the limit of {limit} bytes")
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _check_filename(filename: str) -> None:
    if len(filename) > MAX_FILENAME:
        raise PairFormatError(
            f"the file name is {len(filename)} characters long; at most {MAX_FILENAME} (rename "
            "the file)",
            column="filename",
        )
    check_storable(filename, None, "filename")


def preview(
    settings: Settings, filename: str, stream: IO[bytes], mapping: dict[str, str] | None = None
) -> dict[str, Any]:
    """What an upload of this file would store, from its first records: the format, the schema,
    the first record's fields, the first `PREVIEW_PAIRS` pairs (texts cut to `PREVIEW_CHARS`)
    and the bad rows among the records read. Nothing is stored; the staged copy is removed.
    Raises what `ingest` raises for the file itself (format, limits, size)."""
    _check_filename(filename)
    fmt = detect_format(filename)
    uploads = settings.data_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    spooled = uploads / _staged_name()
    try:
        _spool(stream, spooled, settings.max_upload_bytes)
        limits = settings.read_limits()
        with spooled.open("rb") as source:
            schema = schema_of(source, fmt, limits, mapping)
        columns: list[str] = []
        pairs: list[dict[str, Any]] = []
        bad: list[PairFormatError] = []
        rows_read = 0

        def first_records(records: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
            nonlocal rows_read, columns
            for row, record in records:
                if not columns and isinstance(record, dict):
                    columns = [str(k) for k in record]
                rows_read += 1
                yield row, record
                if len(pairs) >= PREVIEW_PAIRS or rows_read >= PREVIEW_RECORDS:
                    return

        with spooled.open("rb") as source:
            records = map_columns(first_records(iter_records(source, fmt, limits)), mapping or {})
            for pair in parse_pairs(records, schema, on_error=bad.append):
                pairs.append(
                    {
                        "row": pair.row,
                        "prompt": pair.prompt[:PREVIEW_CHARS],
                        "chosen": pair.chosen[:PREVIEW_CHARS],
                        "rejected": pair.rejected[:PREVIEW_CHARS],
                        "metadata": pair.metadata,
                    }
                )
                if len(pairs) >= PREVIEW_PAIRS:
                    break
        return {
            "format": fmt,
            "schema_kind": schema,
            "columns": columns,
            "pairs": pairs,
            "bad_rows": [{"row": e.row, "column": e.column, "message": str(e)} for e in bad],
            "rows_read": rows_read,
        }
    finally:
        spooled.unlink(missing_ok=True)


def ingest(
    session: Session,
    settings: Settings,
    owner: User,
    name: str,
    filename: str,
    stream: IO[bytes],
    on_bad_rows: str = "reject",
    mapping: dict[str, str] | None = None,
) -> tuple[Dataset, list[PairFormatError]]:
    """Create a dataset from an uploaded file, atomically; returns it and the rows it skipped.

    `on_bad_rows="reject"` (the default): any bad row rejects the file with BadRows, which lists
    every bad row found (reading stops after `MAX_LISTED` of them). `"skip"`: the good rows are
    stored and the bad ones returned (the first `MAX_LISTED`; `n_skipped` counts all); a file
    with no good row is still refused. Damage to the file itself (corrupt gzip, limits) always
    rejects it. Raises PairFormatError (naming row and column), LimitExceeded or UploadTooLarge;
    on any failure the transaction is rolled back and the staged file removed. `mapping` names
    the file's columns that hold the prompt, chosen and rejected texts ({"prompt": "question"}).
    """
    if on_bad_rows not in ("reject", "skip"):
        raise PairFormatError(f"on_bad_rows must be 'reject' or 'skip' (got {on_bad_rows!r})")
    _check_filename(filename)
    fmt = detect_format(filename)
    uploads = settings.data_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    spooled = uploads / _staged_name()
    final: Path | None = None
    try:
        sha256 = _spool(stream, spooled, settings.max_upload_bytes)
        limits = settings.read_limits()
        with spooled.open("rb") as source:
            try:
                schema = schema_of(source, fmt, limits, mapping)
            except LimitExceeded:
                raise
            except PairFormatError:
                schema = "prompt_chosen_rejected"  # no readable record: parsing reports why
        dataset = Dataset(
            owner_id=owner.id,
            name=name.strip() or filename,
            filename=filename,
            format=fmt,
            schema_kind=schema,
            n_pairs=0,
            sha256=sha256,
            original_path="",
            search_ready=search.ready_at_ingest(session),
        )
        session.add(dataset)
        session.flush()
        n_pairs = 0
        batch: list[dict] = []
        bad: list[PairFormatError] = []
        n_bad = 0

        def note(error: PairFormatError) -> None:
            nonlocal n_bad
            n_bad += 1
            if len(bad) < MAX_LISTED:
                bad.append(error)
            elif on_bad_rows == "reject":
                raise BadRows(bad, n_bad, capped=True)

        with spooled.open("rb") as source:
            records = map_columns(iter_records(source, fmt, limits), mapping or {})
            for pair in parse_pairs(records, schema, on_error=note):
                if n_bad and on_bad_rows == "reject":
                    continue  # the file is refused: read on only to list its other bad rows
                batch.append(
                    {
                        "dataset_id": dataset.id,
                        "source_index": n_pairs,
                        "prompt": pair.prompt,
                        "chosen": pair.chosen,
                        "rejected": pair.rejected,
                        "meta": pair.metadata,
                        "prompt_chars": len(pair.prompt),
                        "chosen_chars": len(pair.chosen),
                        "rejected_chars": len(pair.rejected),
                    }
                )
                n_pairs += 1
                if len(batch) >= _BATCH:
                    insert_rows(session, Pair, batch)
                    batch.clear()
        if n_bad and (on_bad_rows == "reject" or n_pairs == 0):
            raise BadRows(bad, n_bad, capped=False)
        if n_pairs == 0:
            raise PairFormatError("the file holds no pairs")
        if batch:
            insert_rows(session, Pair, batch)
        dataset.n_pairs = n_pairs
        dataset.n_skipped = n_bad
        final = settings.data_dir / "datasets" / str(dataset.id) / f"original.{fmt}"
        final.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(spooled, final)
        dataset.original_path = str(final)
        session.commit()
        refresh_planner_stats(session, "pairs", n_pairs)
        return dataset, bad
    except BaseException:
        session.rollback()
        spooled.unlink(missing_ok=True)
        if final is not None:
            shutil.rmtree(final.parent, ignore_errors=True)
        raise
