"""The column mapping an upload may give: which of the file's fields hold prompt, chosen and
rejected (`{"prompt": "question", "chosen": "good"}`), checked and applied record by record."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from backend.ingest.errors import PairFormatError, RowError

MAPPABLE = ("prompt", "chosen", "rejected")


def map_columns(
    records: Iterator[tuple[int, Any]], mapping: dict[str, str]
) -> Iterator[tuple[int, Any]]:
    """Rename each record's fields: `mapping` is {prompt|chosen|rejected: the file's column}."""
    if not mapping:
        yield from records
        return
    for row, record in records:
        if isinstance(record, RowError) or not isinstance(record, dict):
            yield row, record
            continue
        missing = [source for source in mapping.values() if source not in record]
        if missing:
            target = next(t for t, s in mapping.items() if s == missing[0])
            yield (
                row,
                RowError(
                    PairFormatError(
                        f"missing column {missing[0]!r} (mapped to {target})",
                        row=row,
                        column=missing[0],
                    )
                ),
            )
            continue
        renamed = {k: v for k, v in record.items() if k not in mapping.values()}
        for target, source in mapping.items():
            renamed[target] = record[source]
        yield row, renamed


def check_mapping(mapping: dict[str, str]) -> dict[str, str]:
    """The mapping, or PairFormatError saying what is wrong with it."""
    unknown = sorted(set(mapping) - set(MAPPABLE))
    if unknown:
        raise PairFormatError(
            f"the column mapping can name {', '.join(MAPPABLE)}; not {', '.join(unknown)}",
            column="mapping",
        )
    for target, source in mapping.items():
        if not isinstance(source, str) or not source:
            raise PairFormatError(f"the column mapped to {target} must be a name", column="mapping")
    sources = list(mapping.values())
    if len(set(sources)) != len(sources):
        raise PairFormatError("the mapping uses one column twice", column="mapping")
    return dict(mapping)


def parse_mapping(text: str) -> dict[str, str]:
    """A column mapping sent as JSON text (`{"prompt": "question", "chosen": "good"}`); empty
    text is no mapping. PairFormatError (column 'mapping') says what is wrong."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise PairFormatError(f"the column mapping is not JSON ({exc})", column="mapping") from None
    if not isinstance(value, dict):
        raise PairFormatError(
            'the column mapping must be a JSON object, e.g. {"prompt": "question"}',
            column="mapping",
        )
    return check_mapping(value)
