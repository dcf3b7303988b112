"""Reading preference datasets: JSONL (optionally gzipped), JSON, CSV and Parquet, two schemas.

Pure Python plus pyarrow; shared by the API's ingest and the engine's CLI. Every problem raises
`PairFormatError` naming the row (1-based, as a user counts them in the file) and the column.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

Format = Literal["jsonl", "json", "csv", "tsv", "parquet", "arrow"]
SchemaKind = Literal[
    "prompt_chosen_rejected", "hh_transcript", "chat_messages", "shp", "ultrafeedback"
]
"""The two text schemas, and the three `worker.influence.formats` turns into prompt / chosen /
rejected text (chat-message lists, SHP, raw UltraFeedback)."""

FORMATS: tuple[str, ...] = ("jsonl", "json", "csv", "tsv", "parquet", "arrow")
ASSISTANT_MARKER = "\n\nAssistant:"


class PairFormatError(ValueError):
    """A row of an upload is unusable. `row` is 1-based; `column` a field name or a number."""

    def __init__(self, message: str, row: int | None = None, column: str | int | None = None):
        self.message = message
        self.row = row
        self.column = column
        where = []
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)

    def as_dict(self) -> dict[str, Any]:
        return {"message": str(self), "row": self.row, "column": self.column}


@dataclass(frozen=True)
class ParsedPair:
    """One pair as read from a file. For HH transcripts `chosen`/`rejected` hold only the final
    responses, so `prompt + chosen` reproduces the uploaded transcript exactly."""

    row: int
    prompt: str
    chosen: str
    rejected: str
    metadata: dict[str, Any] = field(default_factory=dict)


def detect_format(filename: str) -> Format:
    """Format from a file name; `.jsonl.gz` and `.ndjson` read as JSONL."""
    name = filename.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for suffix, fmt in (
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".json", "json"),
        (".csv", "csv"),
        (".tsv", "tsv"),
        (".parquet", "parquet"),
        (".pq", "parquet"),
        # Hugging Face `datasets`' save_to_disk writes its rows as Arrow IPC streams.
        (".arrow", "arrow"),
    ):
        if name.endswith(suffix):
            return fmt  # type: ignore[return-value]
    raise PairFormatError(
        f"cannot tell the format of {filename!r}: use a .jsonl, .json, .csv, .tsv, .parquet "
        "or .arrow file"
    )


class BadRows(PairFormatError):
    """Several rows of an upload are unusable: the first names itself as usual, and `errors`
    lists them all (up to a cap), with `count` the number found."""

    def __init__(self, errors: list[PairFormatError], count: int, capped: bool) -> None:
        first = errors[0]
        more = count - 1
        suffix = ""
        if more:
            suffix = f" (and {more}{'+' if capped else ''} more bad row{'s' if more > 1 else ''})"
        super().__init__(first.message + suffix, first.row, first.column)
        self.errors, self.count, self.capped = errors, count, capped

    def as_dict(self) -> dict[str, Any]:
        out = super().as_dict()
        out.update(
            errors=[e.as_dict() for e in self.errors], n_errors=self.count, capped=self.capped
        )
        return out


@dataclass(frozen=True)
class RowError:
    """A record that could not be read (bad JSON on its line, a bad CSV row), yielded in its
    place so a reader that skips bad rows can go on with the next one."""

    error: PairFormatError


class LimitExceeded(PairFormatError):
    """The upload goes past a size limit (a 413): too large decompressed, a line too long, too
    many rows. Named like any format error: the row where it happened and the limit."""


@dataclass(frozen=True)
class ReadLimits:
    """Bounds on what reading one upload may cost, so a small hostile file cannot exhaust memory
    or disk: a 1 MB gzip holding one 1 GiB line, or 2 MB expanding to 1 GiB of blank lines."""

    max_line_bytes: int = 64 * 1024**2
    """Longest line of a JSONL or CSV file (one pair; HH-RLHF's longest is under 40 KB)."""
    max_rows: int = 20_000_000
    """Most lines (blank ones included) or records in one file."""
    max_decompressed_bytes: int = 16 * 1024**3
    """Most bytes a compressed upload may expand to."""
    max_expansion: float = 200.0
    """Most decompressed bytes per compressed byte, checked once past `expansion_grace` bytes
    (text compresses 3–15×; a bomb 1,000× or more)."""
    expansion_grace: int = 64 * 1024**2
    max_json_bytes: int = 2 * 1024**3
    """Largest .json document (read whole, unlike the line formats)."""


DEFAULT_LIMITS = ReadLimits()


class _Bounded(io.RawIOBase):
    """The decompressed side of a gzip upload, counted: LimitExceeded once it expands past the
    absolute limit or the expansion ratio against the compressed bytes consumed so far."""

    def __init__(self, inner: IO[bytes], compressed: IO[bytes], limits: ReadLimits) -> None:
        self.inner, self.compressed, self.limits = inner, compressed, limits
        self.total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.total += n
        limits = self.limits
        if self.total > limits.max_decompressed_bytes:
            raise LimitExceeded(
                f"the file expands to more than {limits.max_decompressed_bytes:,} bytes "
                "decompressed (the limit)"
            )
        if self.total > limits.expansion_grace:
            consumed = max(1, self.compressed.tell())
            if self.total / consumed > limits.max_expansion:
                raise LimitExceeded(
                    f"the file expands {self.total / consumed:,.0f}× when decompressed (at most "
                    f"{limits.max_expansion:g}×): a decompression bomb, or compress it less"
                )
        return n


def _maybe_gunzip(stream: IO[bytes], limits: ReadLimits = DEFAULT_LIMITS) -> IO[bytes]:
    head = stream.read(2)
    stream.seek(0)
    if head == b"\x1f\x8b":
        inner: IO[bytes] = gzip.GzipFile(fileobj=stream)  # type: ignore[assignment]
        return io.BufferedReader(_Bounded(inner, stream, limits), 1 << 16)
    return stream


def _lines(stream: IO[bytes], limits: ReadLimits) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line) with every line and the line count bounded: a line is read at
    most `max_line_bytes` + 1 at a time, so one huge line never sits in memory whole."""
    row = 0
    while True:
        raw = stream.readline(limits.max_line_bytes + 1)
        if not raw:
            return
        row += 1
        if row > limits.max_rows:
            raise LimitExceeded(f"more than {limits.max_rows:,} lines (the limit)", row=row)
        if len(raw) > limits.max_line_bytes:
            raise LimitExceeded(
                f"the line is longer than {limits.max_line_bytes:,} bytes (the limit)", row=row
            )
        yield row, raw


BOM = "\ufeff"
"""A UTF-8 byte-order mark: spreadsheet programs start their UTF-8 exports with it."""


def _decode(raw: bytes, row: int) -> str:
    """One line as text (the first without its byte-order mark)."""
    try:
        text = raw.decode("utf-8")
        return text.removeprefix(BOM) if row == 1 else text
    except UnicodeDecodeError as exc:
        raise PairFormatError(
            f"invalid UTF-8 byte 0x{raw[exc.start]:02x} at byte {exc.start + 1}; "
            "save the file as UTF-8",
            row=row,
            column=exc.start + 1,
        ) from None


def _reject_constant(name: str) -> Any:
    raise PairFormatError(f"{name} is not a JSON value (no database can store it): use null")


@functools.cache
def _decoder() -> json.JSONDecoder:
    """One decoder for every line (json.loads with an option builds a new one per call)."""
    return json.JSONDecoder(parse_constant=_reject_constant)


def _loads(text: str, row: int | None) -> Any:
    """json.loads with every way it can fail as a PairFormatError naming the row."""
    try:
        return _decoder().decode(text)
    except json.JSONDecodeError as exc:
        where = "" if row is not None else f" (line {exc.lineno})"
        raise PairFormatError(
            f"not valid JSON: {exc.msg}{where}", row=row or exc.lineno, column=exc.colno
        ) from None
    except PairFormatError as exc:
        raise PairFormatError(exc.message, row=row) from None
    except RecursionError:
        raise PairFormatError("JSON nested too deeply to read", row=row) from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise PairFormatError(f"unreadable JSON value: {exc}", row=row) from None


def _iter_jsonl(stream: IO[bytes], limits: ReadLimits) -> Iterator[tuple[int, Any]]:
    for row, raw in _lines(stream, limits):
        try:
            text = _decode(raw, row).rstrip("\r\n")
            if not text.strip():
                continue
            record = _loads(text, row)
        except PairFormatError as exc:
            yield row, RowError(exc)  # one bad line; the next ones are still readable
            continue
        yield row, record


def _iter_json(stream: IO[bytes], limits: ReadLimits) -> Iterator[tuple[int, Any]]:
    data = stream.read(limits.max_json_bytes + 1)
    if len(data) > limits.max_json_bytes:
        raise LimitExceeded(
            f"a .json document over {limits.max_json_bytes:,} bytes (the limit) is read whole: "
            "upload it as JSONL, which streams"
        )
    try:
        text = data.decode("utf-8").removeprefix(BOM)
    except UnicodeDecodeError:
        # Name the line that holds the bad byte.
        for line_no, raw in enumerate(data.split(b"\n"), start=1):
            _decode(raw, line_no)
        raise
    doc = _loads(text, None)
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        doc = doc["data"]
    if not isinstance(doc, list):
        raise PairFormatError('a .json file must hold a list of objects (or {"data": [...]})')
    if len(doc) > limits.max_rows:
        raise LimitExceeded(f"more than {limits.max_rows:,} records (the limit)")
    yield from enumerate(doc, start=1)


def _iter_csv(
    stream: IO[bytes], limits: ReadLimits, delimiter: str = ","
) -> Iterator[tuple[int, Any]]:
    # Decode line by line ourselves so a bad byte names its line.
    def lines() -> Iterator[str]:
        for line_no, raw in _lines(stream, limits):
            yield _decode(raw, line_no)

    reader = csv.DictReader(lines(), delimiter=delimiter)
    try:
        for record in reader:
            # Row numbers count data rows the way a spreadsheet does: the header is row 1.
            row = reader.line_num
            if None in record:
                yield row, RowError(PairFormatError("more fields than the header has", row=row))
                continue
            yield row, record
    except csv.Error as exc:
        raise PairFormatError(f"malformed CSV: {exc}", row=reader.line_num) from None


def _iter_parquet(stream: IO[bytes], limits: ReadLimits) -> Iterator[tuple[int, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(stream)
    except (pa.ArrowInvalid, OSError) as exc:
        raise PairFormatError(f"not a readable Parquet file: {exc}") from None
    meta = parquet.metadata
    if meta.num_rows > limits.max_rows:
        raise LimitExceeded(f"{meta.num_rows:,} rows, more than the limit of {limits.max_rows:,}")
    for k in range(meta.num_row_groups):
        group = meta.row_group(k)
        if group.total_byte_size > limits.max_decompressed_bytes:
            raise LimitExceeded(
                f"row group {k} expands to {group.total_byte_size:,} bytes, more than the limit "
                f"of {limits.max_decompressed_bytes:,}"
            )
        if group.num_rows and group.total_byte_size / group.num_rows > limits.max_line_bytes:
            raise LimitExceeded(
                f"row group {k} holds rows of {group.total_byte_size // group.num_rows:,} bytes "
                f"on average, more than the limit of {limits.max_line_bytes:,} per row"
            )
    _check_parquet_types(parquet.schema_arrow)
    # Columns a prefaudit export wrote as JSON text because their values share no Arrow type.
    metadata = parquet.schema_arrow.metadata or {}
    try:
        as_json = set(json.loads(metadata.get(b"prefaudit.json_columns", b"[]")))
    except ValueError:
        as_json = set()
    row = 0
    for batch in parquet.iter_batches(batch_size=1024):
        for record in batch.to_pylist():
            row += 1
            record = {k: _plain(v) for k, v in record.items()}
            for column in as_json & record.keys():
                if isinstance(record[column], str):
                    try:
                        record[column] = json.loads(record[column])
                    except ValueError:
                        raise PairFormatError(
                            "not the JSON text its schema metadata promises", row, column
                        ) from None
            yield row, record


def _iter_arrow(stream: IO[bytes], limits: ReadLimits) -> Iterator[tuple[int, Any]]:
    """An Arrow IPC stream (what `datasets.Dataset.save_to_disk` writes) or IPC file."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    try:
        reader: Any = ipc.open_stream(stream)
        batches: Iterator[Any] = iter(reader)
    except (pa.ArrowInvalid, OSError):
        stream.seek(0)
        try:
            file = ipc.open_file(stream)
        except (pa.ArrowInvalid, OSError) as exc:
            raise PairFormatError(f"not a readable Arrow file: {exc}") from None
        reader = file
        batches = (file.get_batch(k) for k in range(file.num_record_batches))
    _check_parquet_types(reader.schema)
    row = 0
    try:
        for batch in batches:
            if batch.nbytes > limits.max_decompressed_bytes:
                raise LimitExceeded(
                    f"a record batch of {batch.nbytes:,} bytes, more than the limit of "
                    f"{limits.max_decompressed_bytes:,}",
                    row=row + 1,
                )
            for record in batch.to_pylist():
                row += 1
                if row > limits.max_rows:
                    raise LimitExceeded(f"more than {limits.max_rows:,} rows (the limit)", row=row)
                yield row, {k: _plain(v) for k, v in record.items()}
    except (pa.ArrowInvalid, OSError) as exc:
        raise PairFormatError(
            f"the Arrow data is damaged after row {row}: {exc}", row=row + 1
        ) from None


def _check_parquet_types(schema: Any) -> None:
    """Columns the pairs cannot hold as they are: the three texts must be strings; metadata may
    not hold binary data (no JSON form). Timestamps, dates and decimals are read as text (ISO
    8601, exact decimal digits), see `_plain`."""
    import pyarrow as pa

    for name in schema.names:
        kind = schema.field(name).type
        if name in ("prompt", "chosen", "rejected") and not (
            pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)
        ):
            raise PairFormatError(
                f"{name!r} must be a string column, not {kind}", row=None, column=name
            )
        if _holds_binary(kind):
            raise PairFormatError(
                f"column {name!r} holds binary data ({kind}), which has no text form: drop it "
                "or encode it (base64) before uploading",
                column=name,
            )


def _holds_binary(kind: Any) -> bool:
    import pyarrow as pa

    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return True
    if pa.types.is_fixed_size_binary(kind) and not pa.types.is_decimal(kind):
        return True
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _holds_binary(kind.value_type)
    if pa.types.is_struct(kind):
        return any(_holds_binary(kind.field(i).type) for i in range(kind.num_fields))
    if pa.types.is_map(kind):
        return _holds_binary(kind.key_type) or _holds_binary(kind.item_type)
    return False


def _plain(value: Any) -> Any:
    """A Parquet cell as a JSON value: timestamps, dates and times in ISO 8601, decimals as their
    exact digits, timedeltas in seconds; lists and structs element by element."""
    import datetime
    import decimal

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def _gzip_checked(records: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    """A corrupt or truncated gzip stream as a PairFormatError after the last good row."""
    import zlib

    row = 0
    try:
        for row, record in records:
            yield row, record
    except LimitExceeded as exc:
        if exc.row is not None:
            raise
        raise LimitExceeded(f"{exc.message} (after row {row})", row=row + 1) from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise PairFormatError(
            f"the gzip stream is corrupt or cut short after row {row} ({exc}); "
            "compress the file again",
            row=row + 1,
        ) from None


def iter_records(
    stream: IO[bytes], fmt: Format, limits: ReadLimits = DEFAULT_LIMITS
) -> Iterator[tuple[int, Any]]:
    """Yield `(row, record)` from a binary stream, one record at a time where the format allows,
    within `limits` (LimitExceeded past them)."""
    if fmt == "jsonl":
        return _gzip_checked(_iter_jsonl(_maybe_gunzip(stream, limits), limits))
    if fmt == "json":
        return _gzip_checked(_iter_json(_maybe_gunzip(stream, limits), limits))
    if fmt == "csv":
        return _gzip_checked(_iter_csv(_maybe_gunzip(stream, limits), limits))
    if fmt == "tsv":
        return _gzip_checked(_iter_csv(_maybe_gunzip(stream, limits), limits, delimiter="\t"))
    if fmt == "arrow":
        return _iter_arrow(stream, limits)
    if fmt == "parquet":
        return _iter_parquet(stream, limits)
    raise PairFormatError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def split_transcripts(chosen: str, rejected: str) -> tuple[str, str, str]:
    """Split two HH-RLHF transcripts into (prompt, chosen response, rejected response).

    The prompt is the shared prefix up to and including the last "\\n\\nAssistant:" they share,
    so the final assistant turn (and anything after a divergence) stays in the responses and
    `prompt + response` is the original transcript, byte for byte.
    """
    limit = 0
    for a, b in zip(chosen, rejected, strict=False):
        if a != b:
            break
        limit += 1
    cut = chosen.rfind(ASSISTANT_MARKER, 0, limit)
    if cut == -1 or cut + len(ASSISTANT_MARKER) > limit:
        return "", chosen, rejected
    end = cut + len(ASSISTANT_MARKER)
    return chosen[:end], chosen[end:], rejected[end:]


def _text_field(record: dict[str, Any], key: str, row: int, *, allow_empty: bool) -> str:
    if key not in record:
        raise PairFormatError(f"missing column {key!r}", row=row, column=key)
    value = record[key]
    if not isinstance(value, str):
        kind = "empty" if value is None else type(value).__name__
        raise PairFormatError(f"{key!r} must be text, got {kind}", row=row, column=key)
    if not allow_empty and not value.strip():
        raise PairFormatError(f"{key!r} is empty", row=row, column=key)
    check_storable(value, row, key)
    return value


def check_storable(value: Any, row: int | None, column: str) -> None:
    """Text a database cannot store: NUL characters (Postgres refuses them in text and JSON) and
    lone UTF-16 surrogates (not UTF-8), in any string of the value, keys of objects included."""
    if isinstance(value, dict):
        for key, item in value.items():
            check_storable(key, row, column)
            check_storable(item, row, column)
    elif isinstance(value, list):
        for item in value:
            check_storable(item, row, column)
    elif isinstance(value, str):
        if "\x00" in value:
            raise PairFormatError("holds a NUL character (\\u0000): remove it", row, column)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise PairFormatError(
                f"holds a lone surrogate (\\u{ord(value[exc.start]):04x}), which is not text",
                row,
                column,
            ) from None


def detect_schema(record: Any, row: int) -> SchemaKind:
    """From the first record: SHP, UltraFeedback or chat messages by their fields (see
    `worker.influence.formats`), else `prompt_chosen_rejected` if it has a `prompt`, else HH
    transcripts."""
    from worker.influence.formats import kind_of

    if not isinstance(record, dict):
        raise PairFormatError(
            "each record must be an object with 'chosen' and 'rejected', "
            f"got {type(record).__name__}",
            row=row,
        )
    kind = kind_of(record)
    if kind is not None:
        return kind  # type: ignore[return-value]
    return "prompt_chosen_rejected" if "prompt" in record else "hh_transcript"


def parse_pairs(
    records: Iterable[tuple[int, Any]],
    schema: SchemaKind | None = None,
    on_error: Callable[[PairFormatError], None] | None = None,
    allow_empty_responses: bool = False,
) -> Iterator[ParsedPair]:
    """Validate records and yield pairs; the schema is fixed by the first record unless given.

    A bad row raises PairFormatError, or with `on_error` is passed to it and skipped (limits and
    damage to the file itself, such as a corrupt gzip stream, always raise).
    `allow_empty_responses` lets an HH transcript whose final response is empty through (the
    benchmarks' committed splits were drawn over every pair of the HH-RLHF files, two of
    which are such pairs); uploads never allow it.
    """
    for row, record in records:
        try:
            if isinstance(record, RowError):
                raise record.error
            pair = _parse_one(row, record, schema, allow_empty_responses)
        except LimitExceeded:
            raise
        except PairFormatError as exc:
            if on_error is None:
                raise
            on_error(exc)
            continue
        if schema is None:
            schema = detect_schema(record, row)
        yield pair


def _parse_one(
    row: int, record: Any, schema: SchemaKind | None, allow_empty: bool = False
) -> ParsedPair:
    """One record as a pair, or PairFormatError."""
    if schema is None:
        schema = detect_schema(record, row)
    if not isinstance(record, dict):
        raise PairFormatError(f"expected an object, got {type(record).__name__}", row=row)
    if schema in ("chat_messages", "shp", "ultrafeedback"):
        return _parse_converted(row, record, schema)
    chosen = _text_field(record, "chosen", row, allow_empty=False)
    rejected = _text_field(record, "rejected", row, allow_empty=False)
    reserved: tuple[str, ...]
    if schema == "prompt_chosen_rejected":
        prompt = _text_field(record, "prompt", row, allow_empty=True)
        reserved = ("prompt", "chosen", "rejected")
    else:
        if "prompt" in record:
            raise PairFormatError(
                "has a 'prompt' column but earlier rows are HH transcripts without one",
                row=row,
                column="prompt",
            )
        prompt, chosen, rejected = split_transcripts(chosen, rejected)
        if not allow_empty:
            # The same rule as for prompt/chosen/rejected files: each response needs text.
            for key, response in (("chosen", chosen), ("rejected", rejected)):
                if not response.strip():
                    raise PairFormatError(
                        f"the {key} transcript's final response is empty (it ends where the "
                        "rejected and chosen transcripts stop sharing text)",
                        row=row,
                        column=key,
                    )
        reserved = ("chosen", "rejected")
    metadata = {k: v for k, v in record.items() if k not in reserved}
    try:
        check_storable(metadata, row, "metadata")
    except RecursionError:
        raise PairFormatError("metadata nested too deeply to store", row=row) from None
    return ParsedPair(row=row, prompt=prompt, chosen=chosen, rejected=rejected, metadata=metadata)


def _parse_converted(row: int, record: dict[str, Any], schema: str) -> ParsedPair:
    """A chat-messages, SHP or UltraFeedback record as a pair (`worker.influence.formats`)."""
    from worker.influence import formats

    extra: dict[str, Any] = {}
    if schema == "chat_messages":
        prompt, chosen, rejected, used = formats.chat_pair(record, row)
    elif schema == "shp":
        prompt, chosen, rejected, used = formats.shp_pair(record, row)
    else:
        if "instruction" not in record or "completions" not in record:
            raise PairFormatError(
                "missing 'instruction' or 'completions' (earlier rows are UltraFeedback records)",
                row=row,
            )
        prompt, chosen, rejected, used, extra = formats.ultrafeedback_pair(record, row)
    for key, text in (("prompt", prompt), ("chosen", chosen), ("rejected", rejected)):
        check_storable(text, row, key)
    # The fields the pair was built from are not metadata, nor are fields named as the pair's
    # own columns (an export writes prompt / chosen / rejected, and they would clash).
    taken = {*used, "prompt", "chosen", "rejected"}
    metadata = {k: v for k, v in record.items() if k not in taken} | extra
    try:
        check_storable(metadata, row, "metadata")
    except RecursionError:
        raise PairFormatError("metadata nested too deeply to store", row=row) from None
    return ParsedPair(row=row, prompt=prompt, chosen=chosen, rejected=rejected, metadata=metadata)


def read_pairs(
    path: str | Path,
    fmt: Format | None = None,
    on_error: Callable[[PairFormatError], None] | None = None,
    allow_empty_responses: bool = False,
    mapping: dict[str, str] | None = None,
) -> list[ParsedPair]:
    """Read and validate a whole file (the CLI's entry point); `on_error` skips bad rows;
    `mapping` names the columns holding prompt / chosen / rejected (`formats.map_columns`)."""
    from worker.influence.formats import map_columns

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
    from worker.influence.formats import map_columns

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


def to_records(pairs: Iterable[ParsedPair], schema: SchemaKind) -> Iterator[dict[str, Any]]:
    """Turn stored pairs back into records of the uploaded schema (inverse of parsing)."""
    for pair in pairs:
        if schema == "hh_transcript":
            record = {"chosen": pair.prompt + pair.chosen, "rejected": pair.prompt + pair.rejected}
        else:
            record = {"prompt": pair.prompt, "chosen": pair.chosen, "rejected": pair.rejected}
        record.update(pair.metadata)
        yield record


def dumps_jsonl(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")


def csv_text(records: Iterable[dict[str, Any]], columns: list[str]) -> Iterator[str]:
    """CSV lines for `records`; non-text metadata is written as JSON."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    yield buffer.getvalue()
    for record in records:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(
            {
                k: (v if isinstance(v, str) or v is None else json.dumps(v, default=str))
                for k, v in record.items()
            }
        )
        yield buffer.getvalue()
