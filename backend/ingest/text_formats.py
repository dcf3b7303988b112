"""Reading the text formats, JSONL, JSON and CSV/TSV (optionally gzipped), one record at a time
and within `ReadLimits`: each yields `(row, record)`, a bad record as a `RowError`."""

from __future__ import annotations

import csv
import functools
import gzip
import io
import json
import zlib
from collections.abc import Iterator
from typing import IO, Any

from backend.ingest.errors import LimitExceeded, PairFormatError, RowError
from backend.ingest.limits import DEFAULT_LIMITS, ReadLimits


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


def maybe_gunzip(stream: IO[bytes], limits: ReadLimits = DEFAULT_LIMITS) -> IO[bytes]:
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


def iter_jsonl(stream: IO[bytes], limits: ReadLimits) -> Iterator[tuple[int, Any]]:
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


def iter_json(stream: IO[bytes], limits: ReadLimits) -> Iterator[tuple[int, Any]]:
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


def iter_csv(
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


def gzip_checked(records: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    """A corrupt or truncated gzip stream as a PairFormatError after the last good row."""
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
