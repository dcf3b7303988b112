"""Records as preference pairs: validating each record of the two text schemas and the converted
ones (`schema_kinds`), and splitting HH-RLHF transcripts into prompt and responses."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from backend.ingest import schema_kinds
from backend.ingest.errors import LimitExceeded, PairFormatError, RowError
from backend.ingest.schema_kinds import SchemaKind

ASSISTANT_MARKER = "\n\nAssistant:"


@dataclass(frozen=True)
class ParsedPair:
    """One pair as read from a file. For HH transcripts `chosen`/`rejected` hold only the final
    responses, so `prompt + chosen` reproduces the uploaded transcript exactly."""

    row: int
    prompt: str
    chosen: str
    rejected: str
    metadata: dict[str, Any] = field(default_factory=dict)


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
    `schema_kinds`), else `prompt_chosen_rejected` if it has a `prompt`, else HH transcripts."""
    if not isinstance(record, dict):
        raise PairFormatError(
            "each record must be an object with 'chosen' and 'rejected', "
            f"got {type(record).__name__}",
            row=row,
        )
    kind = schema_kinds.kind_of(record)
    if kind is not None:
        return kind
    return "prompt_chosen_rejected" if "prompt" in record else "hh_transcript"


def parse_pairs(
    records: Iterable[tuple[int, Any]],
    schema: SchemaKind | None = None,
    on_error: Callable[[PairFormatError], None] | None = None,
    allow_empty_responses: bool = True,
) -> Iterator[ParsedPair]:
    """Validate records and yield pairs; the schema is fixed by the first record unless given.

    A bad row raises PairFormatError, or with `on_error` is passed to it and skipped (limits and
    damage to the file itself, such as a corrupt gzip stream, always raise).
    `allow_empty_responses` (the default) accepts an empty or whitespace-only chosen or
    rejected response, in a prompt/chosen/rejected record or as an HH transcript's final turn:
    HH-RLHF's own files have such pairs (row 121 of helpful-base's test file). Uploads accept
    them and tag them `empty_response` (`backend.ingest.checks`); False refuses them.
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
    row: int, record: Any, schema: SchemaKind | None, allow_empty: bool = True
) -> ParsedPair:
    """One record as a pair, or PairFormatError."""
    if schema is None:
        schema = detect_schema(record, row)
    if not isinstance(record, dict):
        raise PairFormatError(f"expected an object, got {type(record).__name__}", row=row)
    if schema in ("chat_messages", "shp", "ultrafeedback"):
        return _parse_converted(row, record, schema)
    chosen = _text_field(record, "chosen", row, allow_empty=allow_empty)
    rejected = _text_field(record, "rejected", row, allow_empty=allow_empty)
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
    """A chat-messages, SHP or UltraFeedback record as a pair (`schema_kinds`)."""
    extra: dict[str, Any] = {}
    if schema == "chat_messages":
        prompt, chosen, rejected, used = schema_kinds.chat_pair(record, row)
    elif schema == "shp":
        prompt, chosen, rejected, used = schema_kinds.shp_pair(record, row)
    else:
        if "instruction" not in record or "completions" not in record:
            raise PairFormatError(
                "missing 'instruction' or 'completions' (earlier rows are UltraFeedback records)",
                row=row,
            )
        prompt, chosen, rejected, used, extra = schema_kinds.ultrafeedback_pair(record, row)
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
