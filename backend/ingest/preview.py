"""What an upload would store, from its first records: its format, schema, columns, first pairs
and the bad rows among them (nothing is stored)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from backend.ingest.errors import PairFormatError
from backend.ingest.formats import Format
from backend.ingest.limits import ReadLimits
from backend.ingest.mapping import map_columns
from backend.ingest.parsing import parse_pairs
from backend.ingest.reading import iter_records, schema_of

PREVIEW_PAIRS = 5
"""Pairs a preview shows."""

PREVIEW_RECORDS = 200
"""Records a preview reads at most (bad ones included) before it stops."""

PREVIEW_CHARS = 2000
"""A preview's texts are cut to this many characters."""


def preview_file(
    path: Path, fmt: Format, limits: ReadLimits, mapping: dict[str, str] | None = None
) -> dict[str, Any]:
    """The preview of a file: the format, the schema, the first record's fields, the first
    `PREVIEW_PAIRS` pairs (texts cut to `PREVIEW_CHARS`) and the bad rows among the records
    read (at most `PREVIEW_RECORDS`). Raises what reading the file raises (format, limits)."""
    with path.open("rb") as source:
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
            if rows_read >= PREVIEW_RECORDS:
                return

    with path.open("rb") as source:
        records = map_columns(first_records(iter_records(source, fmt, limits)), mapping or {})
        for pair in parse_pairs(records, schema, on_error=bad.append):
            # Every record up to PREVIEW_RECORDS is read, so its bad rows are all listed; only
            # the first PREVIEW_PAIRS good ones are shown.
            if len(pairs) >= PREVIEW_PAIRS:
                continue
            pairs.append(
                {
                    "row": pair.row,
                    "prompt": pair.prompt[:PREVIEW_CHARS],
                    "chosen": pair.chosen[:PREVIEW_CHARS],
                    "rejected": pair.rejected[:PREVIEW_CHARS],
                    "metadata": pair.metadata,
                }
            )
    return {
        "format": fmt,
        "schema_kind": schema,
        "columns": columns,
        "pairs": pairs,
        "bad_rows": [{"row": e.row, "column": e.column, "message": str(e)} for e in bad],
        "rows_read": rows_read,
    }
