"""Malformed uploads that used to be 500s: each is a 422 naming the row, and nothing is kept."""

from __future__ import annotations

import gzip
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.factories import jsonl_bytes, n_stored_files, staged_uploads, stored_counts, upload

GOOD = [{"prompt": f"q{i}", "chosen": "a", "rejected": "b"} for i in range(200)]


def _line(text: str) -> bytes:
    return jsonl_bytes(GOOD[:2]) + text.encode() + b"\n"


_GZ = gzip.compress(jsonl_bytes(GOOD))
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


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _pcr(**columns) -> pa.Table:
    base = {"prompt": ["q", "r"], "chosen": ["a", "c"], "rejected": ["b", "d"]}
    base.update(columns)
    return pa.table(base)


_GOOD_CSV = "prompt,chosen,rejected\nq1,a,b\nq2,a,b\n"
_CSV_GZ = gzip.compress(
    (
        "prompt,chosen,rejected\n" + "".join(f"q{i},a{i * 7},b{i * 13}\n" for i in range(3000))
    ).encode()
)

# (bytes, filename, fragment of the message, expected row or None): every one a 422 before the
# route stores anything. Rows count from 1 as a user counts lines (CSV: the header is row 1).
MORE: dict[str, tuple[bytes, str, str, int | None]] = {
    "invalid UTF-8 in JSONL": (
        jsonl_bytes(GOOD[:2]) + b'{"chosen": "\xff"}\n',
        "p.jsonl",
        "invalid UTF-8",
        3,
    ),
    "invalid UTF-8 in CSV": (_GOOD_CSV.encode() + b"q,\xfe,b\n", "p.csv", "invalid UTF-8", 4),
    "a raw NUL byte in CSV": (_GOOD_CSV.encode() + b"q,a\x00,b\n", "p.csv", "NUL", 4),
    "CSV row with more fields than the header": (
        (_GOOD_CSV + "q,a,b,extra\n").encode(),
        "p.csv",
        "more fields than the header",
        4,
    ),
    "CSV without a rejected column": (
        b"prompt,chosen\nq,a\n",
        "p.csv",
        "missing column 'rejected'",
        2,
    ),
    # The open quote swallows the rest of the file, which leaves the row without a rejected cell.
    "CSV with an unterminated quote": (
        (_GOOD_CSV + 'q,"a\n').encode(),
        "p.csv",
        "'rejected' must be text",
        4,
    ),
    "CSV row without its rejected cell": (
        (_GOOD_CSV + "q,a\n").encode(),
        "p.csv",
        "'rejected' must be text",
        4,
    ),
    "CSV header only": (b"prompt,chosen,rejected\n", "p.csv", "no pairs", None),
    "JSON that is not a list": (b'{"prompt": "q"}', "p.json", "must hold a list", None),
    "JSON that is a number": (b"42", "p.json", "must hold a list", None),
    "JSON data key that is not a list": (b'{"data": 5}', "p.json", "must hold a list", None),
    "an empty JSON list": (b"[]", "p.json", "no pairs", None),
    "JSON with a trailing comma": (
        b'[{"chosen": "a", "rejected": "b"},]',
        "p.json",
        "not valid JSON",
        None,
    ),
    "JSON with a comment": (
        b'[// hi\n{"chosen": "a", "rejected": "b"}]',
        "p.json",
        "not valid JSON",
        None,
    ),
    "a 5,000-digit integer in a .json file": (
        b'[{"chosen": "a", "rejected": "b", "m": ' + b"9" * 5000 + b"}]",
        "p.json",
        "unreadable JSON",
        None,
    ),
    "deep nesting in a .json file": (
        b'[{"chosen": "a", "rejected": "b", "m": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]",
        "p.json",
        "nested too deeply",
        None,
    ),
    "Infinity in a .json file": (
        b'[{"chosen": "a", "rejected": "b", "m": Infinity}]',
        "p.json",
        "Infinity",
        None,
    ),
    "a JSONL line that is a list": (_line('["q", "a", "b"]'), "p.jsonl", "expected an object", 3),
    "a JSONL line that is a string": (_line('"just text"'), "p.jsonl", "expected an object", 3),
    "a JSONL line that is a number": (_line("7"), "p.jsonl", "expected an object", 3),
    "a first JSONL line that is a list": (b'["q"]\n', "p.jsonl", "expected an object", 1),
    "chosen is a number": (
        _line('{"prompt": "q", "chosen": 1, "rejected": "b"}'),
        "p.jsonl",
        "must be text",
        3,
    ),
    "chosen is null": (
        _line('{"prompt": "q", "chosen": null, "rejected": "b"}'),
        "p.jsonl",
        "got empty",
        3,
    ),
    "chosen is a list": (
        _line('{"prompt": "q", "chosen": ["a"], "rejected": "b"}'),
        "p.jsonl",
        "got list",
        3,
    ),
    "rejected is null": (
        _line('{"prompt": "q", "chosen": "a", "rejected": null}'),
        "p.jsonl",
        "must be text",
        3,
    ),
    "rejected is missing": (
        _line('{"prompt": "q", "chosen": "a"}'),
        "p.jsonl",
        "missing column 'rejected'",
        3,
    ),
    "prompt is a dict": (
        _line('{"prompt": {"t": 1}, "chosen": "a", "rejected": "b"}'),
        "p.jsonl",
        "must be text",
        3,
    ),
    "a NUL in the prompt": (
        _line('{"prompt": "q\\u0000", "chosen": "a", "rejected": "b"}'),
        "p.jsonl",
        "NUL",
        3,
    ),
    "a NUL in a metadata key": (
        _line('{"prompt": "q", "chosen": "a", "rejected": "b", "k\\u0000": 1}'),
        "p.jsonl",
        "NUL",
        3,
    ),
    "a lone surrogate in a metadata key": (
        _line('{"prompt": "q", "chosen": "a", "rejected": "b", "\\udc00": 1}'),
        "p.jsonl",
        "lone surrogate",
        3,
    ),
    "an unterminated JSON string": (
        _line('{"prompt": "q", "chosen": "a'),
        "p.jsonl",
        "not valid JSON",
        3,
    ),
    "a JSONL line with a trailing comma": (
        _line('{"prompt": "q", "chosen": "a", "rejected": "b",}'),
        "p.jsonl",
        "not valid JSON",
        3,
    ),
    "a raw control character in a JSON string": (
        jsonl_bytes(GOOD[:2]) + b'{"prompt": "q", "chosen": "a\x01", "rejected": "b"}\n',
        "p.jsonl",
        "not valid JSON",
        3,
    ),
    "a prompt column after HH transcripts": (
        jsonl_bytes([{"chosen": "H: a", "rejected": "H: b"}] * 2)
        + b'{"prompt": "q", "chosen": "a", "rejected": "b"}\n',
        "p.jsonl",
        "has a 'prompt' column",
        3,
    ),
    "an empty file": (b"", "p.jsonl", "no pairs", None),
    "only blank lines": (b"\n\n  \n\n", "p.jsonl", "no pairs", None),
    "an unknown extension": (jsonl_bytes(GOOD[:2]), "p.txt", "cannot tell the format", None),
    "no extension": (jsonl_bytes(GOOD[:2]), "pairs", "cannot tell the format", None),
    "gzip magic then garbage": (
        b"\x1f\x8b" + b"\x00" * 64,
        "p.jsonl.gz",
        "gzip stream is corrupt",
        None,
    ),
    "a truncated gzipped CSV": (_CSV_GZ[: len(_CSV_GZ) // 2], "p.csv.gz", "cut short", None),
    "a gzipped .json cut short": (
        gzip.compress(json.dumps(GOOD).encode())[:200],
        "p.json.gz",
        "gzip stream is corrupt",
        None,
    ),
    "Parquet that is garbage": (
        b"PAR1" + b"\x00" * 100,
        "p.parquet",
        "not a readable Parquet",
        None,
    ),
    "Parquet with a binary metadata column": (
        _parquet(_pcr(blob=pa.array([b"\x00\x01", b"\x02"], type=pa.binary()))),
        "p.parquet",
        "binary data",
        None,
    ),
    "Parquet with a list of binary": (
        _parquet(_pcr(blobs=pa.array([[b"x"], [b"y"]], type=pa.list_(pa.binary())))),
        "p.parquet",
        "binary data",
        None,
    ),
    "Parquet whose chosen is an integer column": (
        _parquet(_pcr(chosen=pa.array([1, 2]))),
        "p.parquet",
        "must be a string column",
        None,
    ),
    "Parquet whose chosen is binary": (
        _parquet(_pcr(chosen=pa.array([b"a", b"c"], type=pa.binary()))),
        "p.parquet",
        "must be a string column",
        None,
    ),
    "Parquet without rejected": (
        _parquet(pa.table({"prompt": ["q"], "chosen": ["a"]})),
        "p.parquet",
        "missing column 'rejected'",
        1,
    ),
    "Parquet with a null response": (
        _parquet(_pcr(rejected=pa.array(["b", None]))),
        "p.parquet",
        "got empty",
        2,
    ),
    "a file name of 300 characters": (
        jsonl_bytes(GOOD[:2]),
        "p" * 294 + ".jsonl",
        "at most 255",
        None,
    ),
    "a file name of 256 characters": (
        jsonl_bytes(GOOD[:2]),
        "p" * 250 + ".jsonl",
        "at most 255",
        None,
    ),
}


ALL_CASES = {
    **{name: (*value, 3 if value[1].endswith(".jsonl") else None) for name, value in CASES.items()},
    **MORE,
}


def test_there_are_at_least_sixty_hostile_cases() -> None:
    assert len(ALL_CASES) >= 60


@pytest.mark.parametrize("case", list(ALL_CASES))
def test_a_hostile_upload_is_a_422_and_leaves_nothing(client, auth, case) -> None:
    data, filename, fragment, row = ALL_CASES[case]
    before, files_before, staged_before = stored_counts(), n_stored_files(), staged_uploads()
    response = upload(client, auth, data, filename)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    message = detail["message"] if isinstance(detail, dict) else str(detail)
    assert fragment in message, detail
    if row is not None:
        assert detail["row"] == row, detail
    assert stored_counts() == before and n_stored_files() == files_before
    assert staged_uploads() == staged_before


def test_parquet_timestamps_dates_and_decimals_are_read_as_text(client, auth) -> None:
    """They used to be 500s (not JSON-serialisable): now ISO 8601 text and exact digits."""
    import datetime
    import decimal

    table = _pcr(
        when=pa.array(
            [datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.UTC), None],
            type=pa.timestamp("us", tz="UTC"),
        ),
        day=pa.array([datetime.date(2024, 5, 1), datetime.date(1999, 12, 31)]),
        price=pa.array(
            [decimal.Decimal("12.3400"), decimal.Decimal("-0.5000")], pa.decimal128(8, 4)
        ),
        took=pa.array([datetime.timedelta(seconds=90), None], type=pa.duration("s")),
        nested=pa.array([[datetime.date(2024, 1, 2)], []], type=pa.list_(pa.date32())),
    )
    response = upload(client, auth, _parquet(table), "typed.parquet")
    assert response.status_code == 201, response.text
    dataset_id = response.json()["id"]
    items = client.get(f"/api/v1/datasets/{dataset_id}/pairs", headers=auth).json()["items"]
    first, second = (p["metadata"] for p in items)
    assert first == {
        "when": "2024-05-01T12:30:00+00:00",
        "day": "2024-05-01",
        "price": "12.3400",
        "took": 90.0,
        "nested": ["2024-01-02"],
    }
    assert second["when"] is None and second["price"] == "-0.5000" and second["nested"] == []


def _with_bad_rows() -> bytes:
    rows = [json.dumps(r) for r in GOOD[:10]]
    rows[2] = '{"prompt": "q", "chosen": 7, "rejected": "b"}'
    rows[5] = "{not json"
    rows[8] = '{"prompt": "q", "chosen": "a"}'
    return ("\n".join(rows) + "\n").encode()


def test_a_refused_file_lists_every_bad_row(client, auth) -> None:
    before = stored_counts()
    response = upload(client, auth, _with_bad_rows(), "p.jsonl")
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail["row"] == 3 and "(and 2 more bad rows)" in detail["message"]
    assert [e["row"] for e in detail["errors"]] == [3, 6, 9] and detail["n_errors"] == 3
    assert "must be text" in detail["errors"][0]["message"]
    assert "not valid JSON" in detail["errors"][1]["message"]
    assert "missing column 'rejected'" in detail["errors"][2]["message"]
    assert stored_counts() == before


def test_skipping_bad_rows_stores_the_good_ones_and_lists_the_rest(client, auth) -> None:
    response = client.post(
        "/api/v1/datasets",
        headers=auth,
        files={"file": ("p.jsonl", _with_bad_rows())},
        data={"name": "skip", "on_bad_rows": "skip"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["n_pairs"] == 7 and body["n_skipped"] == 3
    assert [(r["row"], r["column"]) for r in body["skipped"]] == [
        (3, "chosen"),
        (6, 2),
        (9, "rejected"),
    ]
    stored = client.get(f"/api/v1/datasets/{body['id']}", headers=auth).json()
    assert stored["n_skipped"] == 3
    exported = client.get(f"/api/v1/datasets/{body['id']}/export", headers=auth).text
    prompts = [json.loads(line)["prompt"] for line in exported.splitlines()]
    assert prompts == [f"q{i}" for i in (0, 1, 3, 4, 6, 7, 9)]


@pytest.mark.parametrize(
    ("data", "filename", "fragment"),
    [
        (b'{"chosen": ""}\n{"chosen": 1}\n', "p.jsonl", "(and 1 more bad row)"),
        (_GZ[: len(_GZ) // 2], "p.jsonl.gz", "cut short"),  # the file itself is damaged
        (b"PAR1" + b"\x00" * 100, "p.parquet", "not a readable Parquet"),
    ],
)
def test_skipping_never_stores_a_file_without_good_rows_or_a_damaged_one(
    client, auth, data, filename, fragment
) -> None:
    before, files = stored_counts(), n_stored_files()
    response = client.post(
        "/api/v1/datasets",
        headers=auth,
        files={"file": (filename, data)},
        data={"on_bad_rows": "skip"},
    )
    assert response.status_code == 422, response.text
    assert fragment in response.json()["detail"]["message"]
    assert stored_counts() == before and n_stored_files() == files


def test_both_schemas_accept_and_tag_an_empty_response(client, auth) -> None:
    """An HH transcript whose final turn is empty is stored like an empty `chosen` cell: both
    are tagged `empty_response` (HH-RLHF's own files have such pairs; issue 24)."""
    transcript = {
        "chosen": "\n\nHuman: hi\n\nAssistant:",
        "rejected": "\n\nHuman: hi\n\nAssistant: hello",
    }
    good = {
        "chosen": "\n\nHuman: hi\n\nAssistant: yes",
        "rejected": "\n\nHuman: hi\n\nAssistant: no",
    }
    response = upload(client, auth, jsonl_bytes([good, transcript]), "hh.jsonl")
    assert response.status_code == 201, response.text
    assert response.json()["n_pairs"] == 2
    assert response.json()["tag_counts"]["empty_response"] == 1
    cells = upload(client, auth, (_GOOD_CSV + "q,,b\n").encode(), "p.csv")
    assert cells.status_code == 201, cells.text
    assert cells.json()["tag_counts"]["empty_response"] == 1


def test_real_hh_rlhf_harmless_base_uploads_whole(client, auth) -> None:
    from tests.factories import HH_DIR

    data = (HH_DIR / "harmless-base-test.jsonl.gz").read_bytes()
    response = upload(client, auth, data, "harmless-base-test.jsonl.gz")
    assert response.status_code == 201, response.text
    body = response.json()
    with gzip.open(HH_DIR / "harmless-base-test.jsonl.gz") as lines:
        assert body["n_pairs"] == sum(1 for _ in lines)
    assert body["n_skipped"] == 0 and 2 <= body["tag_counts"]["empty_response"] <= 10
    client.delete(f"/api/v1/datasets/{body['id']}", headers=auth)


def test_tsv_and_hf_datasets_arrow_uploads(client, auth, tmp_path) -> None:
    """TSV, and the Arrow file a Hugging Face `datasets.save_to_disk` folder holds (and a plain
    Arrow IPC file), read as the same pairs as JSONL."""
    import datasets

    rows = [
        {"prompt": "q1", "chosen": "tab\u2009ok", "rejected": "b", "source": "x"},
        {"prompt": "q2", "chosen": "c", "rejected": "d", "source": "y"},
    ]
    tsv = "prompt\tchosen\trejected\tsource\n" + "".join(
        "\t".join(r[k] for k in ("prompt", "chosen", "rejected", "source")) + "\n" for r in rows
    )
    saved = tmp_path / "saved"
    datasets.Dataset.from_list(rows).save_to_disk(str(saved))
    arrow_stream = next(saved.glob("*.arrow")).read_bytes()
    sink = io.BytesIO()
    table = pa.Table.from_pylist(rows)
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    for data, name in (
        (tsv.encode(), "pairs.tsv"),
        (arrow_stream, "data-00000-of-00001.arrow"),
        (sink.getvalue(), "pairs.arrow"),
    ):
        response = upload(client, auth, data, name)
        assert response.status_code == 201, (name, response.text)
        items = client.get(f"/api/v1/datasets/{response.json()['id']}/pairs", headers=auth).json()[
            "items"
        ]
        got = [
            {
                "prompt": p["prompt"],
                "chosen": p["chosen"],
                "rejected": p["rejected"],
                **p["metadata"],
            }
            for p in items
        ]
        assert got == rows, name
    bad = upload(client, auth, b"ARROW1" + b"\x00" * 64, "broken.arrow")
    assert bad.status_code == 422 and "not a readable Arrow file" in bad.text
