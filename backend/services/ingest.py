"""Upload ingest: stream the file to disk, read it through `backend.ingest`, and store all its
pairs or nothing."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.db import insert_rows, refresh_planner_stats, session_scope
from backend.errors import TooLarge
from backend.ingest.checks import UploadChecks
from backend.ingest.errors import BadRowLog, LimitExceeded, PairFormatError
from backend.ingest.formats import Format, check_filename, detect_format
from backend.ingest.limits import ReadLimits
from backend.ingest.mapping import map_columns
from backend.ingest.parsing import parse_pairs
from backend.ingest.preview import preview_file
from backend.ingest.reading import iter_records, schema_of
from backend.ingest.schema_kinds import SchemaKind
from backend.models import Dataset, Pair, User
from backend.services import search
from backend.settings import Settings
from backend.storage.tags import store_by_index

_BATCH = 2000
_COPY_CHUNK = 1 << 20


class UploadTooLarge(TooLarge):
    """The uploaded file is larger than the server's `max_upload_bytes` (413)."""


MAX_LISTED = 1000
"""Bad rows an upload lists (a refused file stops being read after this many)."""

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


def _staged(settings: Settings) -> Path:
    """A fresh path to stage an upload at while it is read."""
    uploads = settings.data_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    return uploads / _staged_name()


def preview(
    settings: Settings, filename: str, stream: IO[bytes], mapping: dict[str, str] | None = None
) -> dict[str, Any]:
    """What an upload of this file would store, from its first records (`preview_file`).
    Nothing is stored; the staged copy is removed. Raises what `ingest` raises for the file
    itself (format, limits, size)."""
    check_filename(filename)
    fmt = detect_format(filename)
    spooled = _staged(settings)
    try:
        _spool(stream, spooled, settings.max_upload_bytes)
        return preview_file(spooled, fmt, settings.read_limits(), mapping)
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
    check_filename(filename)
    fmt = detect_format(filename)
    spooled = _staged(settings)
    final: Path | None = None
    try:
        sha256 = _spool(stream, spooled, settings.max_upload_bytes)
        limits = settings.read_limits()
        schema = _schema(spooled, fmt, limits, mapping)
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
        bad = BadRowLog(MAX_LISTED, reject=on_bad_rows == "reject")
        source = _Source(spooled, fmt, schema, limits, mapping)
        n_pairs = _store_pairs(session, dataset.id, source, bad)
        dataset.n_pairs = n_pairs
        dataset.n_skipped = bad.count
        final = settings.data_dir / "datasets" / str(dataset.id) / f"original.{fmt}"
        final.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(spooled, final)
        dataset.original_path = str(final)
        session.commit()
        refresh_planner_stats(session, "pairs", n_pairs)
        return dataset, bad.errors
    except BaseException:
        session.rollback()
        spooled.unlink(missing_ok=True)
        if final is not None:
            shutil.rmtree(final.parent, ignore_errors=True)
        raise


def _schema(
    path: Path, fmt: Format, limits: ReadLimits, mapping: dict[str, str] | None
) -> SchemaKind:
    """The file's schema from its first readable record; with none, parsing reports why."""
    with path.open("rb") as source:
        try:
            return schema_of(source, fmt, limits, mapping)
        except LimitExceeded:
            raise
        except PairFormatError:
            return "prompt_chosen_rejected"


@dataclass(frozen=True)
class _Source:
    """A staged upload and how to read it."""

    path: Path
    fmt: Format
    schema: SchemaKind
    limits: ReadLimits
    mapping: dict[str, str] | None


def _store_pairs(session: Session, dataset_id: int, source: _Source, bad: BadRowLog) -> int:
    """Insert the file's pairs in batches; returns how many. A refused file (bad rows while
    rejecting, or no good row) raises BadRows; a file without pairs PairFormatError."""
    n_pairs = 0
    batch: list[dict] = []
    checks = UploadChecks()
    with source.path.open("rb") as stream:
        records = iter_records(stream, source.fmt, source.limits)
        renamed = map_columns(records, source.mapping or {})
        for pair in parse_pairs(renamed, source.schema, on_error=bad):
            if bad.count and bad.reject:
                continue  # the file is refused: read on only to list its other bad rows
            checks.add(pair.row, pair.prompt, pair.chosen, pair.rejected)
            batch.append(
                {
                    "dataset_id": dataset_id,
                    "source_index": n_pairs,
                    "file_row": pair.row,
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
    if bad.count and (bad.reject or n_pairs == 0):
        raise bad.refusal()
    if n_pairs == 0:
        raise PairFormatError("the file holds no pairs")
    if batch:
        insert_rows(session, Pair, batch)
    # The exact checks' tags (backend.ingest.checks), by position among the stored pairs.
    store_by_index(session, dataset_id, ((t.index, t.tag, t.value) for t in checks.results()))
    return n_pairs
