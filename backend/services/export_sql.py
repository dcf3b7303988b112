"""The export on Postgres: each row formatted by the database and streamed by `COPY ... TO STDOUT`.

A million pairs cost Python a few microseconds each in the row-by-row export (fetch, a dict,
json.dumps); here the database writes each JSONL line or CSV row itself and sends them without a
round trip per batch, and Python only joins them into the response's chunks, so the export runs
at the speed Postgres reads the pairs. Parquet reads the same CSV stream with Arrow's CSV reader
(typed columns, no Python object per value). The SQL writes what the row-by-row export writes:
the uploaded schema's columns, then the metadata (its stored JSON text, key order kept), swapped
pairs exchanged, CSV formula cells neutralised unless raw. Soft labels (computed in Python) take
the row-by-row path (backend/services/export.py).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import Select, Text, and_, case, cast, func, literal, or_, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from backend.models import Flag, Pair

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet evaluate a cell (OWASP CSV injection)."""


def texts(schema_kind: str, apply_swaps: bool) -> dict[str, Any]:
    """The uploaded schema's text columns, swapped pairs exchanged when `apply_swaps`."""
    chosen: Any = Pair.chosen
    rejected: Any = Pair.rejected
    if apply_swaps:
        swapped = Flag.state == "swapped"
        chosen, rejected = (
            case((swapped, Pair.rejected), else_=Pair.chosen),
            case((swapped, Pair.chosen), else_=Pair.rejected),
        )
    if schema_kind == "hh_transcript":
        return {"chosen": Pair.prompt + chosen, "rejected": Pair.prompt + rejected}
    return {"prompt": Pair.prompt, "chosen": chosen, "rejected": rejected}


def _meta_tail() -> ColumnElement[str]:
    """The metadata's members as the end of a JSON object: `, "k": v, ...}` from the stored JSON
    text (its key order and values as written), or `}` when it has none. Text not on one line or
    not starting with `{` (no writer of ours stores such) is taken in jsonb's normal form."""
    stored = cast(Pair.meta, Text)
    plain = and_(
        func.left(stored, 1) == "{", func.strpos(stored, "\n") == 0, func.strpos(stored, "\r") == 0
    )
    members = func.substr(case((plain, stored), else_=cast(cast(Pair.meta, JSONB), Text)), 2)
    empty = or_(func.json_typeof(Pair.meta) != "object", func.btrim(members, " \t") == "}")
    return case((empty, literal("}")), else_=literal(", ") + members)


def json_line(schema_kind: str, apply_swaps: bool) -> ColumnElement[str]:
    """One JSONL record: the schema's columns as JSON strings, then the metadata's members."""
    parts: list[Any] = []
    for n, (name, expression) in enumerate(texts(schema_kind, apply_swaps).items()):
        parts += [literal(("{" if n == 0 else ", ") + f'"{name}": '), func.to_json(expression)]
    return func.concat(*parts, _meta_tail())


def neutralised(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """A cell a spreadsheet would run as a formula, prefixed with a single quote."""
    starts = func.left(value, 1).in_(FORMULA_START)
    return case((starts, literal("'") + value), else_=value)


def meta_cell(key: str, kind: str, raw: bool, arrow: bool) -> ColumnElement[Any]:
    """One metadata key's cell; a missing or null value is NULL (an empty cell). A 'string'
    column's value is its text (neutralised unless `raw`); a bool, int64 or float64 column's is
    its JSON text (for Arrow to parse: `arrow`) and so is any value of a 'json' column, except
    that CSV (not `arrow`) writes a string as its text."""
    member = Pair.meta[key]
    value = member.as_string()
    if kind == "string" or (kind == "json" and not arrow):
        value = value if raw else neutralised(value)
    if kind != "json":
        return value
    typed = func.json_typeof(member)
    text = cast(member, Text)
    return case((typed == "null", None), (typed == "string", text if arrow else value), else_=text)


def cells(
    schema_kind: str, apply_swaps: bool, metadata: dict[str, str], raw: bool, arrow: bool
) -> list[ColumnElement[Any]]:
    """A CSV row's cells: the schema's texts, then each metadata column (key: kind). `arrow`:
    for Arrow's CSV reader (exact values, a 'json' column's values all as JSON text)."""
    raw = raw or arrow
    base = texts(schema_kind, apply_swaps).values()
    out = [value if raw else neutralised(value) for value in base]
    return out + [meta_cell(key, kind, raw, arrow) for key, kind in metadata.items()]


def copy_rows(session: Session, statement: Select, options: str = "") -> Iterator[memoryview]:
    """`statement`'s rows from `COPY (statement) TO STDOUT options`, one row (with its newline)
    each, inside the session's transaction."""
    compiled = statement.compile(
        dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True}
    )
    raw = session.connection().connection.driver_connection
    assert raw is not None  # a live connection inside the session's transaction
    with raw.cursor() as cursor:
        sql = f"COPY ({compiled}) TO STDOUT {options}"
        with cursor.copy(sql, compiled.params) as copy:  # type: ignore[arg-type]
            yield from copy


def unescape_text_copy(chunk: bytes) -> bytes:
    """A chunk of whole rows of COPY's text format holding one JSON column, as the JSON text.

    COPY's text format escapes a backslash and the control characters; JSON text holds no raw
    control character (to_json escapes them), so a doubled backslash is the only escape."""
    return chunk.replace(b"\\\\", b"\\")


ARROW_BLOCK = 1 << 19
"""CSV bytes per Arrow table (a Parquet row group): about 1,250 pairs of a typical dataset. At
4 MiB the server grew by 210-250 MB during its first Parquet export of 1M pairs (the allocators'
arenas filling), at 1 MiB by 89-124 MB, at 512 KiB by 87 MB and at 256 KiB by 83 MB, with Arrow's
mimalloc pool (47 MB at 512 KiB with jemalloc, which the server now uses: backend/main.py; pyarrow
loaded at the server's start, backend/main.py; the later exports grow it by 0-8 MB whatever the
size); the file is larger only where texts repeat within a row group (the review benchmark's
cycled texts: 388 vs 248 MiB at 1 MiB)."""


def arrow_tables(rows: Iterable[memoryview], schema: Any) -> Iterator[Any]:
    """COPY's CSV rows (in `schema`'s columns) as Arrow tables of ARROW_BLOCK bytes of CSV each,
    parsed by Arrow's CSV reader: an unquoted empty cell is null, a quoted one an empty string."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    names = [f"c{i}" for i in range(len(schema))]
    batches = pcsv.open_csv(
        _RowStream(rows),
        # One block at a time: the server's memory stays flat however large the export.
        read_options=pcsv.ReadOptions(
            column_names=names, block_size=ARROW_BLOCK, use_threads=False
        ),
        parse_options=pcsv.ParseOptions(newlines_in_values=True),
        convert_options=pcsv.ConvertOptions(
            column_types=dict(zip(names, schema.types, strict=True)),
            null_values=[""],
            true_values=["true"],
            false_values=["false"],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    for batch in batches:
        yield pa.Table.from_arrays(batch.columns, schema=schema)


class _RowStream(io.RawIOBase):
    """COPY's rows as a readable binary file (for Arrow's CSV reader): each read joins whole rows
    (no copy but the join), splitting only a row longer than the read."""

    def __init__(self, rows: Iterable[memoryview]) -> None:
        self._rows = iter(rows)
        self._held: Any = None

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        pieces: list[Any] = []
        have = 0
        while True:
            row = self._held if self._held is not None else next(self._rows, None)
            self._held = None
            if row is None:
                break
            if size >= 0 and have + len(row) > size:
                if not pieces:  # a row longer than the read: its first `size` bytes now
                    row = bytes(row)
                    pieces.append(row[:size])
                    row = row[size:]
                self._held = row
                break
            pieces.append(row)
            have += len(row)
        return b"".join(pieces)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


_METADATA_KINDS = text(
    """
    SELECT e.key, json_typeof(e.value) AS kind, min(ARRAY[p.file_row, e.n]) AS first,
           min(CASE WHEN json_typeof(e.value) = 'number' AND e.value::text !~ '[.eE]'
                    THEN e.value::text::numeric END) AS low,
           max(CASE WHEN json_typeof(e.value) = 'number' AND e.value::text !~ '[.eE]'
                    THEN e.value::text::numeric END) AS high,
           bool_or(json_typeof(e.value) = 'number' AND e.value::text ~ '[.eE]') AS fraction
    FROM pairs p CROSS JOIN LATERAL json_each(p.metadata) WITH ORDINALITY AS e(key, value, n)
    WHERE p.dataset_id = :dataset AND json_typeof(p.metadata) = 'object'
    GROUP BY e.key, json_typeof(e.value)
    """
)

_EXAMPLE = {"string": "", "boolean": True, "object": {}, "array": []}
"""A value of each JSON type but number (whose examples are the extremes read)."""


def metadata_examples(session: Session, dataset_id: int) -> dict[str, list[Any]]:
    """Every metadata key of the dataset's pairs, in order of first appearance, with values
    that stand for all of its values' kinds: one of each JSON type it holds and, for whole
    numbers, the smallest and largest (whatever fits them fits every one). One aggregate in the
    database instead of a pass over every pair's metadata in Python."""
    found = session.execute(_METADATA_KINDS, {"dataset": dataset_id}).all()
    examples: dict[str, list[Any]] = {}
    for key, kind, _, low, high, fraction in sorted(found, key=lambda row: row.first):
        values = examples.setdefault(key, [])
        if kind == "number":
            values += [int(v) for v in (low, high) if v is not None] + ([0.5] if fraction else [])
        elif kind in _EXAMPLE:
            values.append(_EXAMPLE[kind])
    return examples
