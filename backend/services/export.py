"""Export a dataset in its uploaded schema, optionally without the flagged pairs, as a stream."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from itertools import islice
from typing import Literal

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from backend.models import Dataset, Flag, Pair
from worker.influence.io import ParsedPair, csv_text, dumps_jsonl, to_records

ExportFormat = Literal["jsonl", "csv", "parquet"]
MEDIA_TYPES: dict[str, str] = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
_BATCH = 1000


def _pairs_query(dataset: Dataset, exclude_flagged: bool) -> Select:
    query = select(Pair).where(Pair.dataset_id == dataset.id).order_by(Pair.source_index)
    if exclude_flagged:
        flagged = select(Flag.pair_id).where(Flag.flagged.is_(True))
        query = query.where(Pair.id.not_in(flagged))
    return query


def _records(session: Session, dataset: Dataset, exclude_flagged: bool) -> Iterator[dict]:
    pairs = session.scalars(
        _pairs_query(dataset, exclude_flagged).execution_options(yield_per=_BATCH)
    )
    yield from to_records(
        (ParsedPair(p.source_index, p.prompt, p.chosen, p.rejected, p.meta or {}) for p in pairs),
        dataset.schema_kind,  # type: ignore[arg-type]
    )


def _columns(session: Session, dataset: Dataset) -> list[str]:
    base = (
        ["chosen", "rejected"]
        if dataset.schema_kind == "hh_transcript"
        else ["prompt", "chosen", "rejected"]
    )
    first = session.scalar(
        select(Pair).where(Pair.dataset_id == dataset.id).order_by(Pair.source_index).limit(1)
    )
    extra = [k for k in (first.meta if first else {}) if k not in base]
    return base + extra


def export_filename(dataset: Dataset, fmt: ExportFormat, exclude_flagged: bool) -> str:
    stem = dataset.name.replace("/", "_").replace('"', "") or f"dataset-{dataset.id}"
    return f"{stem}{'-cleaned' if exclude_flagged else ''}.{fmt}"


def stream_export(
    session: Session, dataset: Dataset, fmt: ExportFormat, exclude_flagged: bool
) -> Iterator[bytes]:
    """Yield the export's bytes. The caller's session must stay open while this runs."""
    if fmt == "jsonl":
        for record in _records(session, dataset, exclude_flagged):
            yield dumps_jsonl(record)
    elif fmt == "csv":
        for line in csv_text(
            _records(session, dataset, exclude_flagged), _columns(session, dataset)
        ):
            yield line.encode("utf-8")
    elif fmt == "parquet":
        yield from _parquet(session, dataset, exclude_flagged)
    else:
        raise ValueError(f"unknown export format {fmt!r}; use jsonl, csv or parquet")


def _parquet(session: Session, dataset: Dataset, exclude_flagged: bool) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = _columns(session, dataset)
    records = _records(session, dataset, exclude_flagged)
    # Parquet's footer comes last, so the file is built on disk (bounded memory), then streamed.
    with tempfile.TemporaryFile() as spool:
        writer: pq.ParquetWriter | None = None
        while chunk := list(islice(records, _BATCH)):
            table = pa.Table.from_pylist(
                [{c: r.get(c) for c in columns} for r in chunk],
                schema=writer.schema if writer else None,
            )
            writer = writer or pq.ParquetWriter(spool, table.schema)
            writer.write_table(table)
        if writer is None:  # nothing left to export: an empty file with the text columns
            writer = pq.ParquetWriter(spool, pa.schema([(c, pa.string()) for c in columns]))
        writer.close()
        spool.seek(0)
        while data := spool.read(1 << 20):
            yield data
