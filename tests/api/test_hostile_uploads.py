"""Malformed uploads that used to be 500s: each is a 422 naming the row, and nothing is kept."""

from __future__ import annotations

import gzip
import json

import pytest
from sqlalchemy import func, select

from tests.api.test_datasets import n_stored_files, upload

GOOD = [{"prompt": f"q{i}", "chosen": "a", "rejected": "b"} for i in range(200)]


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _line(text: str) -> bytes:
    return _jsonl(GOOD[:2]) + text.encode() + b"\n"


_GZ = gzip.compress(_jsonl(GOOD))
CASES: dict[str, tuple[bytes, str, str]] = {
    "truncated gzip": (_GZ[: len(_GZ) // 2], "p.jsonl.gz", "gzip stream is corrupt or cut short"),
    "corrupt gzip": (_GZ[:12] + b"\x00" * 40 + _GZ[52:], "p.jsonl.gz", "gzip stream is corrupt"),
    "NaN in metadata": (
        _line('{"prompt": "q", "chosen": "a", "rejected": "b", "m": NaN}'),
        "p.jsonl",
        "NaN is not a JSON value",
    ),
    "Infinity in metadata": (
        _line('{"prompt": "q", "chosen": "a", "rejected": "b", "m": -Infinity}'),
        "p.jsonl",
        "-Infinity is not a JSON value",
    ),
    "a 5,000-digit integer": (
        _line('{"prompt": "q", "chosen": "a", "rejected": "b", "m": ' + "9" * 5000 + "}"),
        "p.jsonl",
        "unreadable JSON value",
    ),
    "100k-deep nesting": (
        _line(
            '{"prompt": "q", "chosen": "a", "rejected": "b", "m": '
            + "[" * 100_000
            + "]" * 100_000
            + "}"
        ),
        "p.jsonl",
        "nested too deeply",
    ),
    "an escaped NUL in a response": (
        _line('{"prompt": "q", "chosen": "a\\u0000b", "rejected": "b"}'),
        "p.jsonl",
        "NUL character",
    ),
    "an escaped NUL in metadata": (
        _line('{"prompt": "q", "chosen": "a", "rejected": "b", "m": {"k": ["\\u0000"]}}'),
        "p.jsonl",
        "NUL character",
    ),
    "a lone surrogate": (
        _line('{"prompt": "q", "chosen": "\\ud800", "rejected": "b"}'),
        "p.jsonl",
        "lone surrogate",
    ),
    "NaN in a .json file": (
        b'[{"prompt": "q", "chosen": "a", "rejected": "b", "m": NaN}]',
        "p.json",
        "NaN is not a JSON value",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_upload_is_a_422_and_leaves_nothing(client, auth, case) -> None:
    from backend.db import session_scope
    from backend.models import Dataset, Pair

    data, filename, fragment = CASES[case]
    with session_scope() as session:
        before = (
            session.scalar(select(func.count()).select_from(Dataset)),
            session.scalar(select(func.count()).select_from(Pair)),
        )
    files_before = n_stored_files()
    response = upload(client, auth, data, filename)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert fragment in detail["message"], detail
    if filename.endswith(".jsonl"):
        assert detail["row"] == 3  # the hostile line, after two good ones
    with session_scope() as session:
        after = (
            session.scalar(select(func.count()).select_from(Dataset)),
            session.scalar(select(func.count()).select_from(Pair)),
        )
    assert after == before and n_stored_files() == files_before
