"""True rows (issue 22, item 2): a pair keeps the row it had in the uploaded file, numbered as
upload errors name rows, also after rows an upload skipped: in the pairs list and its sort, the
pair view, the exports' order and the review log. Each is checked against the file itself."""

from __future__ import annotations

import csv
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from backend.db import session_scope
from backend.models import Dataset, Interaction, Job
from tests.factories import API, upload

BAD_LINES = {3, 7}
TRUE_ROWS = [1, 2, 4, 5, 6, 8, 9, 10]


def _file() -> bytes:
    """Ten JSONL lines; line 3 is not JSON and line 7 lacks 'rejected'."""
    lines = []
    for n in range(1, 11):
        record = {"prompt": f"Which fruit, {n * 7}?", "chosen": f"kiwi {n * 11}"}
        if n != 7:
            record["rejected"] = f"stone {n * 13}"
        record["source"] = "odd" if n % 2 else "even"
        lines.append(json.dumps(record) if n != 3 else '{"prompt": "cut short", "chosen": ')
    return ("\n".join(lines) + "\n").encode()


def _file_records() -> dict[int, dict]:
    """The good records of the file by their line number, read from the bytes uploaded."""
    out = {}
    for n, line in enumerate(_file().decode().splitlines(), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "rejected" in record:
            out[n] = record
    return out


def _same_texts(pair: dict, record: dict) -> bool:
    return all(pair[k] == record[k] for k in ("prompt", "chosen", "rejected"))


@pytest.fixture
def dataset(client, auth) -> dict:
    response = upload(client, auth, _file(), "rows.jsonl", name="rows", on_bad_rows="skip")
    assert response.status_code == 201, response.text
    body = response.json()
    assert [r["row"] for r in body["skipped"]] == sorted(BAD_LINES)
    assert body["n_pairs"] == 8 and body["n_skipped"] == 2
    assert sorted(_file_records()) == TRUE_ROWS  # the test's own reading of the file
    return body


def _get(client, auth, path: str, **params):
    response = client.get(API + path, headers=auth, params=params)
    assert response.status_code == 200, response.text
    return response


def _pages(client, auth, ds: int, **params) -> list[dict]:
    """Every pair, following `next_cursor`."""
    items, cursor = [], None
    while True:
        extra = {"cursor": cursor} if cursor else {}
        page = _get(client, auth, f"/datasets/{ds}/pairs", **params, **extra).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def test_the_pairs_list_and_its_sort_carry_the_files_rows(client, auth, dataset) -> None:
    ds, records = dataset["id"], _file_records()
    listed = _pages(client, auth, ds, sort="index", limit=3)
    assert [p["row"] for p in listed] == TRUE_ROWS
    assert [p["index"] for p in listed] == list(range(8))
    assert all(_same_texts(p, records[p["row"]]) for p in listed)
    backwards = _pages(client, auth, ds, sort="-index", limit=3)
    assert [p["row"] for p in backwards] == TRUE_ROWS[::-1]
    by_offset = _get(client, auth, f"/datasets/{ds}/pairs", sort="index", offset=2, limit=3)
    assert [p["row"] for p in by_offset.json()["items"]] == [4, 5, 6]
    # A filter keeps each pair's row: the "odd" lines the file has after its skipped ones.
    odd = _pages(client, auth, ds, sort="index", limit=2, meta="source=odd")
    assert [p["row"] for p in odd] == [1, 5, 9]


def test_the_pair_view_carries_its_file_row(client, auth, dataset) -> None:
    ds, records = dataset["id"], _file_records()
    for listed in _pages(client, auth, ds, limit=50):
        pair = _get(client, auth, f"/datasets/{ds}/pairs/{listed['id']}").json()
        assert pair["row"] == listed["row"]
        assert _same_texts(pair, records[pair["row"]]), pair["row"]


def test_a_pairs_interactions_name_their_file_rows(client, auth, dataset) -> None:
    """The pair view's interactions table (a `group` audit's κ) names each partner's row."""
    ds = dataset["id"]
    ids = {p["row"]: p["id"] for p in _pages(client, auth, ds, limit=50)}
    with session_scope() as session:
        owner = session.get(Dataset, ds).owner_id
        job = Job(dataset_id=ds, owner_id=owner, kind="audit", status="succeeded", progress=1.0)
        job.config = {"methods": ["group"]}
        session.add(job)
        session.flush()
        for other, kappa in ((8, 0.5), (4, -0.25), (10, 0.125)):
            session.add(
                Interaction(job_id=job.id, pair_id=ids[1], other_id=ids[other], kappa=kappa)
            )
        job_id = job.id
    path = f"/datasets/{ds}/pairs/{ids[1]}/interactions"
    items = _get(client, auth, path, job_id=job_id).json()["items"]
    assert [(i["row"], i["pair_id"]) for i in items] == [(8, ids[8]), (4, ids[4]), (10, ids[10])]


def _exported(client, auth, ds: int, fmt: str, **params) -> list[dict]:
    body = _get(client, auth, f"/datasets/{ds}/export", format=fmt, **params)
    if fmt == "jsonl":
        return [json.loads(line) for line in body.text.splitlines()]
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(body.text)))
    return pq.read_table(io.BytesIO(body.content)).to_pylist()


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_exports_hold_the_files_good_lines_in_file_order(client, auth, dataset, fmt) -> None:
    records = _file_records()
    exported = _exported(client, auth, dataset["id"], fmt, exclude_flagged="false")
    assert exported == [records[n] for n in TRUE_ROWS]


def test_the_review_log_and_history_name_the_files_rows(client, auth, dataset) -> None:
    ds, records = dataset["id"], _file_records()
    ids = {p["row"]: p["id"] for p in _pages(client, auth, ds, limit=50)}
    states = {n: "kept" for n in TRUE_ROWS} | {4: "swapped", 8: "flagged"}
    for n, state in states.items():
        response = client.put(
            f"{API}/datasets/{ds}/pairs/{ids[n]}/review",
            headers=auth,
            json={"state": state, "note": records[n]["prompt"]},
        )
        assert response.status_code == 200, response.text
        assert response.json()["row"] == n
    log_text = _get(client, auth, f"/datasets/{ds}/review-log").text
    log = [json.loads(line) for line in log_text.splitlines()]
    assert [(x["row"], x["pair_id"], x["state"]) for x in log] == [
        (n, ids[n], states[n]) for n in TRUE_ROWS
    ]
    # Each logged row's note is that line's prompt: the row names the line it came from.
    assert all(x["note"] == records[x["row"]]["prompt"] for x in log)
    as_csv = _get(client, auth, f"/datasets/{ds}/review-log", format="csv").text
    assert [int(r["row"]) for r in csv.DictReader(io.StringIO(as_csv))] == TRUE_ROWS
    actions = _get(client, auth, f"/datasets/{ds}/review/actions").json()
    assert "row 8: flagged" in {a["description"] for a in actions}
    # The cleaned export: line 8 left out, line 4 swapped, the rest as in the file, in order.
    swapped = dict(records[4], chosen=records[4]["rejected"], rejected=records[4]["chosen"])
    expected = [swapped if n == 4 else records[n] for n in TRUE_ROWS if n != 8]
    assert _exported(client, auth, ds, "jsonl") == expected


def _csv_file() -> bytes:
    # Header on line 1; line 4 has no rejected cell.
    rows = ["prompt,chosen,rejected", "p2,c2,r2", "p3,c3,r3", "p4,c4", "p5,c5,r5"]
    return ("\n".join(rows) + "\n").encode()


def _json_file() -> bytes:
    records = [{"prompt": f"p{n}", "chosen": f"c{n}", "rejected": f"r{n}"} for n in range(1, 5)]
    records[1]["chosen"] = 5  # record 2: not text
    return json.dumps(records).encode()


def _parquet_file() -> bytes:
    table = pa.table(
        {
            "prompt": ["p1", "p2", "p3", "p4"],
            "chosen": ["c1", "c2", None, "c4"],  # record 3: null
            "rejected": ["r1", "r2", "r3", "r4"],
        }
    )
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


@pytest.mark.parametrize(
    ("filename", "data", "skipped", "rows"),
    [
        ("rows.csv", _csv_file(), [4], [2, 3, 5]),  # lines: the header is line 1
        ("rows.json", _json_file(), [2], [1, 3, 4]),  # the record's number in the array
        ("rows.parquet", _parquet_file(), [3], [1, 2, 4]),  # the record's number
    ],
)
def test_each_format_numbers_rows_as_its_upload_errors_do(
    client, auth, filename, data, skipped, rows
) -> None:
    response = upload(client, auth, data, filename, on_bad_rows="skip")
    assert response.status_code == 201, response.text
    body = response.json()
    assert [r["row"] for r in body["skipped"]] == skipped
    listed = _pages(client, auth, body["id"], limit=2)
    assert [p["row"] for p in listed] == rows
    assert [p["prompt"][1:] for p in listed] == [str(n) for n in rows]
