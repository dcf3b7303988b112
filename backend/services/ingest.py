"""Upload ingest: stream the file to disk, validate every row, store all pairs or nothing."""

from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path
from typing import IO

from sqlalchemy import insert
from sqlalchemy.orm import Session

from backend.models import Dataset, Pair, User
from backend.settings import Settings
from worker.influence.io import detect_format, iter_records, parse_pairs, schema_of

_BATCH = 2000
_COPY_CHUNK = 1 << 20


class UploadTooLarge(ValueError):
    pass


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


def ingest(
    session: Session,
    settings: Settings,
    owner: User,
    name: str,
    filename: str,
    stream: IO[bytes],
) -> Dataset:
    """Create a dataset from an uploaded file, atomically.

    Raises PairFormatError (naming row and column) or UploadTooLarge; on any failure the
    transaction is rolled back and the spooled file removed, so nothing is left behind.
    """
    fmt = detect_format(filename)
    uploads = settings.data_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    spooled = uploads / f"incoming-{uuid.uuid4().hex}"
    final: Path | None = None
    try:
        sha256 = _spool(stream, spooled, settings.max_upload_bytes)
        with spooled.open("rb") as source:
            schema = schema_of(source, fmt)
        dataset = Dataset(
            owner_id=owner.id,
            name=name.strip() or filename,
            filename=filename,
            format=fmt,
            schema_kind=schema,
            n_pairs=0,
            sha256=sha256,
            original_path="",
        )
        session.add(dataset)
        session.flush()
        n_pairs = 0
        batch: list[dict] = []
        with spooled.open("rb") as source:
            for pair in parse_pairs(iter_records(source, fmt), schema):
                batch.append(
                    {
                        "dataset_id": dataset.id,
                        "source_index": n_pairs,
                        "prompt": pair.prompt,
                        "chosen": pair.chosen,
                        "rejected": pair.rejected,
                        "meta": pair.metadata,
                    }
                )
                n_pairs += 1
                if len(batch) >= _BATCH:
                    session.execute(insert(Pair), batch)
                    batch.clear()
        if batch:
            session.execute(insert(Pair), batch)
        dataset.n_pairs = n_pairs
        final = settings.data_dir / "datasets" / str(dataset.id) / f"original.{fmt}"
        final.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(spooled, final)
        dataset.original_path = str(final)
        session.commit()
        return dataset
    except BaseException:
        session.rollback()
        spooled.unlink(missing_ok=True)
        if final is not None:
            shutil.rmtree(final.parent, ignore_errors=True)
        raise
