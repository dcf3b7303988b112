"""Reading whole files: the records of a file, folder or stream by its format, the schema of its
first record, and every pair of a file (the `prefaudit score` command's entry point)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from backend.ingest.arrow_formats import iter_arrow, iter_parquet
from backend.ingest.errors import PairFormatError, RowError
from backend.ingest.formats import FORMATS, Format, detect_format
from backend.ingest.limits import DEFAULT_LIMITS, ReadLimits
from backend.ingest.mapping import map_columns
from backend.ingest.parsing import ParsedPair, detect_schema, parse_pairs
from backend.ingest.schema_kinds import SchemaKind
from backend.ingest.text_formats import gzip_checked, iter_csv, iter_json, iter_jsonl, maybe_gunzip


def iter_records(
    stream: IO[bytes], fmt: Format, limits: ReadLimits = DEFAULT_LIMITS
) -> Iterator[tuple[int, Any]]:
    """Yield `(row, record)` from a binary stream, one record at a time where the format allows,
    within `limits` (LimitExceeded past them)."""
    if fmt == "jsonl":
        return gzip_checked(iter_jsonl(maybe_gunzip(stream, limits), limits))
    if fmt == "json":
        return gzip_checked(iter_json(maybe_gunzip(stream, limits), limits))
    if fmt == "csv":
        return gzip_checked(iter_csv(maybe_gunzip(stream, limits), limits))
    if fmt == "tsv":
        return gzip_checked(iter_csv(maybe_gunzip(stream, limits), limits, delimiter="\t"))
    if fmt == "arrow":
        return iter_arrow(stream, limits)
    if fmt == "parquet":
        return iter_parquet(stream, limits)
    raise PairFormatError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def read_pairs(
    path: str | Path,
    fmt: Format | None = None,
    on_error: Callable[[PairFormatError], None] | None = None,
    allow_empty_responses: bool = True,
    mapping: dict[str, str] | None = None,
) -> list[ParsedPair]:
    """Read and validate a whole file (the CLI's entry point); `on_error` skips bad rows;
    `mapping` names the columns holding prompt / chosen / rejected (`mapping.map_columns`)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.is_dir():  # a Hugging Face `save_to_disk` folder
        pairs = list(
            parse_pairs(
                map_columns(_iter_saved_folder(path), mapping or {}),
                on_error=on_error,
                allow_empty_responses=allow_empty_responses,
            )
        )
        if not pairs:
            raise PairFormatError(f"{path} holds no pairs")
        return pairs
    fmt = fmt or detect_format(path.name)
    with path.open("rb") as stream:
        pairs = list(
            parse_pairs(
                map_columns(iter_records(stream, fmt), mapping or {}),
                on_error=on_error,
                allow_empty_responses=allow_empty_responses,
            )
        )
    if not pairs:
        raise PairFormatError(f"{path} holds no pairs")
    return pairs


def _iter_saved_folder(
    folder: Path, limits: ReadLimits = DEFAULT_LIMITS
) -> Iterator[tuple[int, Any]]:
    """The records of a `datasets.Dataset.save_to_disk` folder: its `.arrow` shards in order
    (`data-00000-of-00002.arrow`, ...), rows numbered across them."""
    shards = sorted(folder.glob("*.arrow"))
    if not shards:
        raise PairFormatError(
            f"{folder} is a folder without .arrow files; give a file, or a folder written by "
            "Hugging Face datasets' save_to_disk"
        )
    offset = 0
    for shard in shards:
        last = 0
        with shard.open("rb") as stream:
            for row, record in iter_records(stream, "arrow", limits):
                last = row
                yield offset + row, record
        offset += last


def schema_of(
    path_or_stream: str | Path | IO[bytes],
    fmt: Format,
    limits: ReadLimits = DEFAULT_LIMITS,
    mapping: dict[str, str] | None = None,
) -> SchemaKind:
    """The schema kind of a file, from its first record (after the column mapping)."""
    if isinstance(path_or_stream, str | Path):
        with Path(path_or_stream).open("rb") as stream:
            return schema_of(stream, fmt, limits, mapping)
    first: PairFormatError | None = None
    for row, record in map_columns(iter_records(path_or_stream, fmt, limits), mapping or {}):
        # The first readable object decides; an unreadable one is reported by parse_pairs.
        if isinstance(record, RowError) or not isinstance(record, dict):
            if first is None:
                first = record.error if isinstance(record, RowError) else None
                if first is None:
                    try:
                        detect_schema(record, row)
                    except PairFormatError as exc:
                        first = exc
            continue
        return detect_schema(record, row)
    raise first or PairFormatError("the file holds no pairs")
