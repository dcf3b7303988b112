"""Exports are lossless and safe: sparse and mixed-type metadata, big integers, formula cells,
names no header can carry as they are (issue 10's export items)."""

from __future__ import annotations

import csv
import io
import json
from urllib.parse import unquote

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from tests.factories import jsonl_bytes, upload

API = "/api/v1"


def _records() -> list[dict]:
    return [
        {"prompt": "p0", "chosen": '=HYPERLINK("http://x")', "rejected": "fine", "score": 1},
        {"prompt": "+p1", "chosen": "a", "rejected": "-b", "score": "high", "late": [1, {"x": 2}]},
        {"prompt": "@p2", "chosen": "\tc", "rejected": "\rd", "big": 2**70, "flag": True},
        {"prompt": "p3", "chosen": "e", "rejected": "f", "ratio": 0.5, "n": 3},
        {"prompt": "p4", "chosen": "g", "rejected": "h", "ratio": 2, "n": -(2**63)},
    ]


def _export(client, auth, dataset_id: int, query: str):
    response = client.get(f"{API}/datasets/{dataset_id}/export?{query}", headers=auth)
    assert response.status_code == 200, response.text
    assert response.content, "an export is never an empty 200"
    return response


@pytest.fixture
def dataset(client, auth) -> dict:
    response = upload(client, auth, jsonl_bytes(_records()), "mixed.jsonl", name="mixed")
    assert response.status_code == 201, response.text
    return response.json()


def test_jsonl_is_exact(client, auth, dataset) -> None:
    body = _export(client, auth, dataset["id"], "format=jsonl")
    assert [json.loads(line) for line in body.text.splitlines()] == _records()


def test_parquet_holds_every_column_and_value(client, auth, dataset) -> None:
    body = _export(client, auth, dataset["id"], "format=parquet")
    table = pq.read_table(io.BytesIO(body.content))
    # The union of the metadata keys, in order of first appearance, not the first row's keys.
    assert table.column_names == [
        "prompt", "chosen", "rejected", "score", "late", "big", "flag", "ratio", "n"
    ]  # fmt: skip
    types = {f.name: str(f.type) for f in table.schema}
    assert types["flag"] == "bool" and types["ratio"] == "double" and types["n"] == "int64"
    # int and str in one column, nested values, an int above int64: their JSON text, declared.
    assert json.loads(table.schema.metadata[b"prefaudit.json_columns"]) == ["score", "late", "big"]
    rows = table.to_pylist()
    assert rows[2]["big"] == str(2**70) and rows[1]["score"] == '"high"'
    assert rows[4]["n"] == -(2**63) and rows[0]["flag"] is None
    # Uploaded again, the file reads back as the very records it came from.
    again = upload(client, auth, body.content, "again.parquet", name="again")
    assert again.status_code == 201, again.text
    back = _export(client, auth, again.json()["id"], "format=jsonl")
    # Parquet columns are dense: a key a record lacked comes back as null.
    expected = [{k: r.get(k) for k in table.column_names} for r in _records()]
    assert [json.loads(line) for line in back.text.splitlines()] == expected


def test_csv_neutralises_formulas_unless_raw(client, auth, dataset) -> None:
    body = _export(client, auth, dataset["id"], "format=csv")
    rows = list(csv.DictReader(io.StringIO(body.text, newline="")))
    assert list(rows[0]) == ["prompt", "chosen", "rejected", "score", "late", "big", "flag"] + [
        "ratio",
        "n",
    ]
    assert rows[0]["chosen"] == '\'=HYPERLINK("http://x")'
    assert (rows[1]["prompt"], rows[1]["rejected"]) == ("'+p1", "'-b")
    assert (rows[2]["prompt"], rows[2]["chosen"], rows[2]["rejected"]) == ("'@p2", "'\tc", "'\rd")
    assert rows[1]["late"] == json.dumps([1, {"x": 2}])  # sparse columns are kept
    assert rows[3]["prompt"] == "p3" and rows[3]["late"] == ""
    raw = _export(client, auth, dataset["id"], "format=csv&raw=true")
    raw_rows = list(csv.DictReader(io.StringIO(raw.text, newline="")))
    assert [(r["prompt"], r["chosen"], r["rejected"]) for r in raw_rows] == [
        (r["prompt"], r["chosen"], r["rejected"]) for r in _records()
    ]


@pytest.mark.parametrize(
    ("name", "ascii_name"),
    [
        ("Präferenzen – 日本語", "Praferenzen"),
        ("evil\r\nSet-Cookie: x=1", "evilSet-Cookie_ x_1"),
        ('quo"te/../pairs', "quo_te_.._pairs"),
    ],
)
def test_any_dataset_name_gives_a_safe_attachment_header(client, auth, name, ascii_name) -> None:
    created = upload(client, auth, jsonl_bytes(_records()), "n.jsonl", name=name)
    assert created.status_code == 201, created.text
    for fmt in ("jsonl", "csv", "parquet"):
        header = _export(client, auth, created.json()["id"], f"format={fmt}").headers[
            "content-disposition"
        ]
        assert "\r" not in header and "\n" not in header
        assert header.startswith(f'attachment; filename="{ascii_name}')
        exact = unquote(header.split("filename*=UTF-8''", 1)[1])
        stored = name.replace("\r", "").replace("\n", "").replace("/", "_")
        assert exact == f"{stored}-cleaned.{fmt}"


@pytest.mark.parametrize(
    "path",
    [
        "/datasets/2147483648",
        "/datasets/0/pairs",
        "/jobs/99999999999999999999",
        "/datasets/{id}/pairs?job_id=2147483648",
        "/datasets/{id}/pairs?offset=99999999999999999999",
        "/datasets/{id}/pairs/2147483648/flag",
    ],
)
def test_ids_beyond_the_database_range_are_a_422(client, auth, dataset, path) -> None:
    url = f"{API}{path.format(id=dataset['id'])}"
    if url.endswith("/flag"):
        response = client.put(url, headers=auth, json={"flagged": True})
    else:
        response = client.get(url, headers=auth)
    assert response.status_code == 422, response.text
    assert "detail" in response.json()


def test_parquet_export_reads_back_with_hf_datasets(client, auth, dataset, tmp_path) -> None:
    """The exported file is what Hugging Face `datasets` users load: same rows, same columns."""
    import datasets

    body = _export(client, auth, dataset["id"], "format=parquet")
    path = tmp_path / "export.parquet"
    path.write_bytes(body.content)
    loaded = datasets.load_dataset(
        "parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache")
    )
    table = pq.read_table(path)
    assert loaded.column_names == table.column_names
    assert loaded.num_rows == len(_records())
    assert loaded.to_list() == table.to_pylist()
    assert [r["prompt"] for r in loaded] == [r["prompt"] for r in _records()]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_an_export_streams_in_large_chunks(client, auth, fmt) -> None:
    """Over HTTP every chunk costs a write and a hop through the server's thread pool: a
    10,000-pair export comes in pieces of about a mebibyte, not one per pair, and the pieces
    add up to exactly what the route sends."""
    import hashlib

    from backend.db import session_scope
    from backend.models import Dataset
    from backend.services import export

    def text(i: int) -> str:  # hex that compresses ~2×, so the Parquet file is large too
        return "".join(hashlib.sha256(f"{i}:{j}".encode()).hexdigest() for j in range(6))

    rows = [
        {"prompt": text(i), "chosen": f"a{i}", "rejected": f"b{i}", "k": i} for i in range(10_000)
    ]
    made = upload(client, auth, jsonl_bytes(rows), "big.jsonl", name="big")
    assert made.status_code == 201, made.text
    with session_scope() as session:
        dataset = session.get(Dataset, made.json()["id"])
        chunks = list(export.stream_export(session, dataset, fmt, True))
    body = b"".join(chunks)
    assert len(body) > 1.5 * export.CHUNK_BYTES  # big enough to need several chunks
    assert all(len(c) >= export.CHUNK_BYTES for c in chunks[:-1])
    assert len(chunks) <= len(body) // export.CHUNK_BYTES + 1  # ~2, where per pair was 10,000
    sent = _export(client, auth, made.json()["id"], f"format={fmt}").content
    if fmt == "parquet":  # the footer holds a creation stamp: compare what the files hold
        assert pq.read_table(io.BytesIO(sent)).equals(pq.read_table(io.BytesIO(body)))
    else:
        assert sent == body


def _tricky_records() -> list[dict]:
    """Texts and metadata that COPY, JSON and CSV each escape: backslashes, quotes, control
    characters, newlines, non-ASCII, formula starts, JSON nulls and nested values."""
    texts = ['a\\b "q" \\n', "line\nnext\r\n\ttab", "é ☃ 日本", "=1+1", "\x01\x1f", "", "\\"]
    return [
        {
            "prompt": texts[i % 7],
            "chosen": f"c{i} " + texts[(i + 1) % 7],
            "rejected": f"r{i} " + texts[(i + 3) % 7],
            "note": None if i % 3 == 0 else texts[(i + 2) % 7],
            "deep": {"k\\": [i, None, '\\"']} if i % 2 else "=x",
        }
        for i in range(40)
    ]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_the_database_writes_what_the_row_by_row_export_writes(client, auth, fmt) -> None:
    """Postgres formats each row in SQL (backend/services/export_sql.py); SQLite and soft labels
    go row by row in Python. Both write the same file: swaps applied, flagged pairs left out, a
    search filter, formula cells neutralised (or raw)."""
    from backend.db import session_scope
    from backend.models import Dataset, Pair
    from backend.schemas import PairFilter
    from backend.services import export
    from backend.services.query import resolve

    made = upload(client, auth, jsonl_bytes(_tricky_records()), "tricky.jsonl", name="tricky")
    assert made.status_code == 201, made.text
    ds = made.json()["id"]
    with session_scope() as session:
        ids = session.scalars(select(Pair.id).where(Pair.dataset_id == ds).order_by(Pair.id)).all()
    for i, state in ((1, "swapped"), (2, "flagged"), (5, "swapped"), (6, "kept")):
        url = f"{API}/datasets/{ds}/pairs/{ids[i]}/review"
        assert client.put(url, headers=auth, json={"state": state}).status_code == 200
    filters = [PairFilter(), PairFilter(q="next")]
    for where, raw, exclude in [
        (f, r, e) for f in filters for r in (False, True) for e in (True, False)
    ]:
        with session_scope() as session:
            dataset = session.get(Dataset, ds)
            selection = export.Selection(
                exclude_flagged=exclude, query=resolve(session, dataset, where)
            )
            by_sql = b"".join(export._database_pieces(session, dataset, fmt, selection, raw))
            by_rows = b"".join(export._row_pieces(session, dataset, fmt, selection, raw))
        if fmt == "jsonl":
            # The same records with their keys in the same order; the metadata is its stored
            # JSON text (non-ASCII as \u escapes), the texts byte for byte as Python writes them.
            lines = [b.decode().splitlines() for b in (by_sql, by_rows)]
            records = [[json.loads(line, object_pairs_hook=list) for line in x] for x in lines]
            assert records[0] == records[1] and len(records[0]) > 1
            texts = [[line.split(', "note": ')[0] for line in x] for x in lines]
            assert texts[0] == texts[1]
        elif fmt == "csv":
            rows = [
                list(csv.reader(io.StringIO(b.decode(), newline=""))) for b in (by_sql, by_rows)
            ]
            assert rows[0] == rows[1] and len(rows[0]) > 1
        else:
            assert pq.read_table(io.BytesIO(by_sql)).equals(
                pq.read_table(io.BytesIO(by_rows)), check_metadata=True
            )


@pytest.mark.parametrize(("given", "used"), [(None, "jemalloc"), ("system", "system")])
def test_the_server_allocates_arrow_through_jemalloc_unless_told(given, used) -> None:
    """The server's start picks Arrow's pool before pyarrow is imported (backend/main.py: the
    Parquet writer's allocations follow only the pool Arrow read then); a named pool wins."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if given is not None:
        env["ARROW_DEFAULT_MEMORY_POOL"] = given
    probe = (
        "from backend.main import _load_export_libraries; _load_export_libraries(); "
        "import pyarrow; print(pyarrow.default_memory_pool().backend_name)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == used
