"""Export a dataset in its uploaded schema, optionally without the flagged pairs, as a stream.

Exports are lossless: the columns are the union of every pair's metadata keys (in order of first
appearance), and Parquet gives each metadata column a type that holds every value in it: string,
bool, int64 or float64 where the values allow, else the values' JSON text, named in the file's
schema metadata (`prefaudit.json_columns`) so an upload of the file reads them back as they were.
Both are decided in a first pass over the metadata, so nothing fails after the first byte. CSV
cells that a spreadsheet would run as a formula are neutralised unless `raw` is asked for.
"""

from __future__ import annotations

import csv
import io
import json
import queue
import re
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Literal
from urllib.parse import quote

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from backend.ingest.parsing import ParsedPair
from backend.ingest.writing import csv_text, dumps_jsonl, to_records
from backend.models import Dataset, Flag, Pair, User
from backend.services import export_sql
from backend.services.query import Query
from backend.services.soft_labels import SOFT_COLUMNS, SoftLabels

ExportFormat = Literal["jsonl", "csv", "parquet"]
MEDIA_TYPES: dict[str, str] = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
_BATCH = 1000
CHUNK_BYTES = 1 << 20
"""The size of each piece an export streams: a response sends one piece per write to the
socket (and per hop through the server's thread pool), so per-record pieces cost a million
round trips for a million pairs; 1 MiB pieces cost one per thousand pairs or so."""


def chunked(pieces: Iterable[bytes | memoryview], size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """`pieces` joined into chunks of about `size` bytes (the last may be smaller), in order."""
    buffer: list[bytes | memoryview] = []
    held = 0
    for piece in pieces:
        buffer.append(piece)
        held += len(piece)
        if held >= size:
            yield b"".join(buffer)
            buffer, held = [], 0
    if buffer:
        yield b"".join(buffer)


@dataclass
class Selection:
    """Which pairs an export writes, and how: the filter (the pairs list's), whether flagged
    pairs are left out, and whether swapped ones are written with chosen and rejected exchanged."""

    exclude_flagged: bool = True
    apply_swaps: bool = True
    query: Query | None = None
    soft: SoftLabels | None = None  # add soft-label columns (backend/services/soft_labels.py)


_ROW_COLUMNS = (Pair.file_row, Pair.prompt, Pair.chosen, Pair.rejected, Pair.meta, Flag.state)
"""What the row-by-row export reads: plain columns, not ORM objects (several times faster)."""


def _pairs_query(dataset: Dataset, selection: Selection, columns: Any = _ROW_COLUMNS) -> Select:
    """The selected pairs' `columns` (soft-label scores added after them), in file order."""
    if selection.query is not None:
        query = selection.query.select(*columns)
    else:
        # The dataset's own review rows only (its index), however many other datasets have.
        on = and_(Flag.pair_id == Pair.id, Flag.dataset_id == dataset.id)
        query = select(*columns).outerjoin(Flag, on).where(Pair.dataset_id == dataset.id)
    if selection.exclude_flagged:
        # The pair's own review row (unique on pair_id): no scan of other datasets' flags.
        query = query.where(or_(Flag.id.is_(None), Flag.state != "flagged"))
    if selection.soft is not None:
        scores = selection.soft.scores
        on = and_(scores.pair_id == Pair.id, scores.job_id == selection.soft.job_id)
        query = query.outerjoin(scores, on).add_columns(*selection.soft.columns())
    return query.order_by(Pair.file_row)


def _records(session: Session, dataset: Dataset, selection: Selection) -> Iterator[dict]:
    rows = session.execute(_pairs_query(dataset, selection).execution_options(yield_per=_BATCH))

    def parsed() -> Iterator[ParsedPair]:
        for row, prompt, chosen, rejected, meta, state, *scores in rows:
            swapped = selection.apply_swaps and state == "swapped"
            if swapped:
                chosen, rejected = rejected, chosen
            if selection.soft is not None:
                soft, ambiguous = selection.soft.values(scores, swapped)
                if not selection.soft.keeps(ambiguous):
                    continue
                meta = {**(meta or {}), **soft}
            yield ParsedPair(row, prompt, chosen, rejected, meta or {})

    yield from to_records(parsed(), dataset.schema_kind)  # type: ignore[arg-type]


JSON_COLUMNS_KEY = b"prefaudit.json_columns"
"""Parquet schema metadata: the JSON list of columns whose strings are JSON-encoded values."""

_INT64 = (-(2**63), 2**63 - 1)
_EXACT_FLOAT_INT = 2**53


@dataclass
class _Column:
    """What one metadata column holds across the dataset."""

    kinds: set[str] = field(default_factory=set)
    exact_in_float: bool = True
    in_int64: bool = True

    def add(self, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, bool):
            self.kinds.add("bool")
        elif isinstance(value, int):
            self.kinds.add("int")
            self.in_int64 = self.in_int64 and _INT64[0] <= value <= _INT64[1]
            self.exact_in_float = self.exact_in_float and abs(value) <= _EXACT_FLOAT_INT
        elif isinstance(value, float):
            self.kinds.add("float")
        elif isinstance(value, str):
            self.kinds.add("str")
        else:
            self.kinds.add("json")

    def arrow_type(self) -> str:
        """'string', 'bool', 'int64', 'float64' or 'json' (the values' JSON text)."""
        if self.kinds <= {"str"}:
            return "string"
        if self.kinds == {"bool"}:
            return "bool"
        if self.kinds == {"int"} and self.in_int64:
            return "int64"
        if self.kinds <= {"int", "float"} and self.exact_in_float:
            return "float64"
        return "json"


def _base_columns(dataset: Dataset) -> list[str]:
    if dataset.schema_kind == "hh_transcript":
        return ["chosen", "rejected"]
    return ["prompt", "chosen", "rejected"]


def _metadata_columns(session: Session, dataset: Dataset) -> dict[str, _Column]:
    """Every metadata key of the dataset's pairs, in order of first appearance, and its values'
    kinds: one aggregate on Postgres (values standing for all of a key's values), else one
    streamed pass over the metadata alone."""
    values: Iterator[tuple[str, Any]]
    if session.get_bind().dialect.name == "postgresql":
        examples = export_sql.metadata_examples(session, dataset.id)
        values = ((k, v) for k, held in examples.items() for v in held or [None])
    else:
        metas = session.scalars(
            select(Pair.meta)
            .where(Pair.dataset_id == dataset.id)
            .order_by(Pair.file_row)
            .execution_options(yield_per=_BATCH)
        )
        values = ((k, v) for meta in metas for k, v in (meta or {}).items())
    base = set(_base_columns(dataset))
    columns: dict[str, _Column] = {}
    for key, value in values:
        if key not in base:
            columns.setdefault(key, _Column()).add(value)
    return columns


def _columns(session: Session, dataset: Dataset) -> list[str]:
    return _base_columns(dataset) + list(_metadata_columns(session, dataset))


def neutralise(value: str) -> str:
    """A cell a spreadsheet would run as a formula, prefixed with a single quote."""
    return "'" + value if value.startswith(export_sql.FORMULA_START) else value


def _neutralised(records: Iterator[dict]) -> Iterator[dict]:
    for record in records:
        yield {k: neutralise(v) if isinstance(v, str) else v for k, v in record.items()}


_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._ -]+")


def export_filename(dataset: Dataset, fmt: ExportFormat, exclude_flagged: bool) -> str:
    """The download's name: the dataset's name without path separators or control characters."""
    name = "".join(ch for ch in dataset.name if unicodedata.category(ch)[0] != "C")
    stem = name.replace("/", "_").replace("\\", "_").strip(" .") or f"dataset-{dataset.id}"
    return f"{stem}{'-cleaned' if exclude_flagged else ''}.{fmt}"


def content_disposition(filename: str) -> str:
    """An RFC 6266 attachment header: an ASCII fallback name and the exact one, RFC 5987-encoded."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    ascii_name = _UNSAFE_FILENAME.sub("_", ascii_name).strip(" _") or "export"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def stream_export(
    session: Session,
    dataset: Dataset,
    fmt: ExportFormat,
    selection: Selection | bool,
    raw: bool = False,
) -> Iterator[bytes]:
    """Yield the export's bytes. The caller's session must stay open while this runs.

    `raw` (CSV only) writes cells exactly as stored, formula-like ones included. A bare bool
    for `selection` is `exclude_flagged`. Chunks are about CHUNK_BYTES each."""
    return chunked(_export_pieces(session, dataset, fmt, selection, raw))


def _export_pieces(
    session: Session,
    dataset: Dataset,
    fmt: ExportFormat,
    selection: Selection | bool,
    raw: bool,
) -> Iterator[bytes | memoryview]:
    if isinstance(selection, bool):
        selection = Selection(exclude_flagged=selection)
    if fmt not in MEDIA_TYPES:
        raise ValueError(f"unknown export format {fmt!r}; use jsonl, csv or parquet")
    if session.get_bind().dialect.name == "postgresql" and selection.soft is None:
        yield from _database_pieces(session, dataset, fmt, selection, raw)
    else:
        yield from _row_pieces(session, dataset, fmt, selection, raw)


def _row_pieces(
    session: Session, dataset: Dataset, fmt: str, selection: Selection, raw: bool
) -> Iterator[bytes]:
    """Row by row in Python: SQLite, and soft labels (whose values Python computes)."""
    if fmt == "jsonl":
        for record in _records(session, dataset, selection):
            yield dumps_jsonl(record)
    elif fmt == "csv":
        records = _records(session, dataset, selection)
        columns = _columns(session, dataset)
        if selection.soft is not None:
            columns += [c for c in SOFT_COLUMNS if c not in columns]
        for line in csv_text(records if raw else _neutralised(records), columns):
            yield line.encode("utf-8")
    else:
        yield from _parquet(session, dataset, selection)


def _database_pieces(
    session: Session, dataset: Dataset, fmt: str, selection: Selection, raw: bool
) -> Iterator[bytes | memoryview]:
    """Postgres: every row written by the database (backend/services/export_sql.py)."""
    schema, swaps = dataset.schema_kind, selection.apply_swaps
    if fmt == "jsonl":
        line = export_sql.json_line(schema, swaps)
        rows = export_sql.copy_rows(session, _pairs_query(dataset, selection, [line]))
        for chunk in chunked(rows):
            yield export_sql.unescape_text_copy(chunk)
        return
    # Decided before the first byte: the columns and their types.
    kinds = _kinds(session, dataset, selection)
    metadata = {k: kind for k, kind in list(kinds.items())[len(_base_columns(dataset)) :]}
    cells = export_sql.cells(schema, swaps, metadata, raw, arrow=fmt == "parquet")
    query = _pairs_query(dataset, selection, cells)
    if fmt == "csv":
        header = io.StringIO()
        csv.writer(header, lineterminator="\n").writerow(kinds)
        yield header.getvalue().encode("utf-8")
        yield from export_sql.copy_rows(session, query, "(FORMAT csv)")
        return
    arrow = _arrow_schema(kinds)
    rows = export_sql.copy_rows(session, query, "(FORMAT csv)")
    yield from _one_thread(_streamed_parquet(arrow, export_sql.arrow_tables(rows, arrow)))


def _kinds(session: Session, dataset: Dataset, selection: Selection) -> dict[str, str]:
    """Every column of the export and its kind: 'string', 'bool', 'int64', 'float64' or 'json'."""
    kinds = {c: "string" for c in _base_columns(dataset)}
    kinds.update({k: c.arrow_type() for k, c in _metadata_columns(session, dataset).items()})
    if selection.soft is not None:
        kinds.update({c: "float64" for c in SOFT_COLUMNS[:-1]}, confidence_source="string")
    return kinds


def _arrow_schema(kinds: dict[str, str]) -> Any:
    """The Parquet file's schema: the JSON-text columns named in its metadata."""
    import pyarrow as pa

    arrow = {"bool": pa.bool_(), "int64": pa.int64(), "float64": pa.float64()}
    as_json = [c for c, kind in kinds.items() if kind == "json"]
    return pa.schema(
        [(c, arrow.get(kind, pa.string())) for c, kind in kinds.items()],
        metadata={JSON_COLUMNS_KEY: json.dumps(as_json).encode()},
    )


_END = object()


def _one_thread(pieces: Iterator[bytes], ahead: int = 4) -> Iterator[bytes]:
    """`pieces`, made by one thread of their own at most `ahead` pieces before the reader.

    The server pulls a response's pieces from whichever thread of its pool is free; Arrow's
    allocator keeps memory per thread, so a Parquet file built across many threads held several
    times one thread's memory (+180-350 MB at a million pairs). One thread also lets the file be
    built while the socket sends what is done. Closing this (a client gone) stops the maker at
    its next piece."""
    made: queue.Queue[Any] = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def hand(item: Any) -> bool:
        while not stop.is_set():
            try:
                made.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def make() -> None:
        try:
            for piece in pieces:
                if not hand(piece):
                    return
            hand(_END)
        except BaseException as error:  # handed to the reader, raised there
            hand(error)
        finally:
            pieces.close()  # type: ignore[attr-defined]

    maker = threading.Thread(target=make, name="export", daemon=True)
    maker.start()
    try:
        while (item := made.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        maker.join()


class _Drain(io.RawIOBase):
    """A writable file that keeps what is written until taken (Parquet's writer writes in
    order and never seeks back, so each row group's bytes are final once written)."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._pieces.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self._pieces = b"".join(self._pieces), []
        return data


def _streamed_parquet(schema: Any, tables: Iterator[Any]) -> Iterator[bytes]:
    """The Parquet file of `tables`, each row group sent as soon as it is written (the footer,
    last, says where they are): memory holds one row group, and a file cut short has no footer,
    so no reader takes it for a whole one."""
    import pyarrow.parquet as pq

    sink = _Drain()
    writer = pq.ParquetWriter(sink, schema)
    for table in tables:
        writer.write_table(table)
        yield sink.take()
    writer.close()
    yield sink.take()


def _parquet(session: Session, dataset: Dataset, selection: Selection) -> Iterator[bytes]:
    # pyarrow: heavy, loaded only for a Parquet export
    import pyarrow as pa

    kinds = _kinds(session, dataset, selection)
    schema = _arrow_schema(kinds)
    as_json = {c for c, kind in kinds.items() if kind == "json"}

    def cell(column: str, value: Any) -> Any:
        if value is None or column not in as_json:
            return value
        return json.dumps(value, ensure_ascii=False)

    records = _records(session, dataset, selection)

    def tables() -> Iterator[Any]:
        while chunk := list(islice(records, _BATCH)):
            rows = [{c: cell(c, r.get(c)) for c in kinds} for r in chunk]
            yield pa.Table.from_pylist(rows, schema=schema)

    yield from _streamed_parquet(schema, tables())


REVIEW_LOG_COLUMNS = ["row", "pair_id", "state", "note", "reviewed_by", "reviewed_at"]


def review_log_filename(dataset: Dataset, fmt: str) -> str:
    return export_filename(dataset, fmt, False).rsplit(".", 1)[0] + f"-review-log.{fmt}"  # type: ignore[arg-type]


def stream_review_log(session: Session, dataset: Dataset, fmt: str) -> Iterator[bytes]:
    """Every pair with a review row (a state other than unreviewed, or a note), in file order:
    its row in the uploaded file (`Pair.file_row`, as upload errors number rows), id, state,
    note, who and when; in chunks of about CHUNK_BYTES."""
    return chunked(_review_log_pieces(session, dataset, fmt))


def _review_log_pieces(session: Session, dataset: Dataset, fmt: str) -> Iterator[bytes]:
    rows = session.execute(
        select(Pair.file_row, Pair.id, Flag.state, Flag.note, User.username, Flag.updated_at)
        .join(Flag, Flag.pair_id == Pair.id)
        .outerjoin(User, User.id == Flag.user_id)
        .where(Pair.dataset_id == dataset.id)
        .where(or_(Flag.state != "unreviewed", Flag.note.is_not(None)))
        .order_by(Pair.file_row)
        .execution_options(yield_per=_BATCH)
    )
    records = (
        {
            "row": row,
            "pair_id": pair_id,
            "state": state,
            "note": note,
            "reviewed_by": user,
            "reviewed_at": at.isoformat() if at is not None else None,
        }
        for row, pair_id, state, note, user, at in rows
    )
    if fmt == "jsonl":
        for record in records:
            yield dumps_jsonl(record)
    else:
        for line in csv_text(_neutralised(records), REVIEW_LOG_COLUMNS):
            yield line.encode("utf-8")
