"""Writing pairs back out: records of the uploaded schema, JSONL lines and CSV text (exports)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from backend.ingest.parsing import ParsedPair
from backend.ingest.schema_kinds import SchemaKind


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
