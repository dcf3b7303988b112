"""The file formats an upload may have, told from its name (and the checks on that name)."""

from __future__ import annotations

from typing import Literal

from backend.ingest.errors import PairFormatError
from backend.ingest.parsing import check_storable

Format = Literal["jsonl", "json", "csv", "tsv", "parquet", "arrow"]
FORMATS: tuple[str, ...] = ("jsonl", "json", "csv", "tsv", "parquet", "arrow")


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


MAX_FILENAME = 255
"""Longest file name kept (most file systems' own limit)."""


def check_filename(filename: str) -> None:
    """PairFormatError (column 'filename') for a name too long or not storable as text."""
    if len(filename) > MAX_FILENAME:
        raise PairFormatError(
            f"the file name is {len(filename)} characters long; at most {MAX_FILENAME} (rename "
            "the file)",
            column="filename",
        )
    check_storable(filename, None, "filename")
