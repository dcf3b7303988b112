"""Reading Parquet files and Arrow IPC data (what `datasets.Dataset.save_to_disk` writes) within
`ReadLimits`: cells become JSON values, and columns the pairs cannot hold are refused up front."""

from __future__ import annotations

import datetime
import decimal
import json
from collections.abc import Iterator
from typing import IO, Any

from backend.ingest.errors import LimitExceeded, PairFormatError
from backend.ingest.limits import ReadLimits


def iter_parquet(stream: IO[bytes], limits: ReadLimits) -> Iterator[tuple[int, Any]]:
    # pyarrow: heavy, loaded only when a Parquet file is read
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


def iter_arrow(stream: IO[bytes], limits: ReadLimits) -> Iterator[tuple[int, Any]]:
    """An Arrow IPC stream (what `datasets.Dataset.save_to_disk` writes) or IPC file."""
    # pyarrow: heavy, loaded only when Arrow data is read
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
    import pyarrow as pa  # heavy: only once a Parquet or Arrow file is read

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
    import pyarrow as pa  # heavy: only once a Parquet or Arrow file is read

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
