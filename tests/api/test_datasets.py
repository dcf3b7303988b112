"""POST/GET/DELETE /datasets: uploads in every format, atomic rejection of bad files, ownership."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.factories import API, DATA_DIR, hh_records, jsonl_bytes, n_stored_files, upload


def test_health_needs_no_token(client) -> None:
    body = client.get(f"{API}/health").json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["broker"] == "redis"


def test_every_other_endpoint_needs_a_token(client) -> None:
    for method, path in [
        ("get", "/datasets"),
        ("post", "/datasets"),
        ("get", "/datasets/1"),
        ("delete", "/datasets/1"),
        ("get", "/datasets/1/pairs"),
        ("post", "/datasets/1/jobs"),
        ("get", "/jobs/1"),
        ("put", "/datasets/1/pairs/1/flag"),
        ("post", "/datasets/1/flags"),
        ("get", "/datasets/1/export"),
        ("get", "/users/me"),
    ]:
        response = getattr(client, method)(f"{API}{path}")
        assert response.status_code == 401, (method, path, response.text)
        bad = getattr(client, method)(f"{API}{path}", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401, (method, path)


def test_login_issues_a_working_token(client, make_user) -> None:
    user = make_user()
    wrong = client.post(f"{API}/auth/login", json={"username": user["username"], "password": "x"})
    assert wrong.status_code == 401
    ok = client.post(
        f"{API}/auth/login", json={"username": user["username"], "password": user["password"]}
    )
    assert ok.status_code == 200
    headers = {"Authorization": f"Bearer {ok.json()['access_token']}"}
    assert client.get(f"{API}/users/me", headers=headers).json()["username"] == user["username"]


def test_tokens_are_stored_hashed(client, make_user) -> None:
    from sqlalchemy import select

    from backend.db import session_scope
    from backend.models import ApiToken

    user = make_user()
    token = user["headers"]["Authorization"].split()[1]
    with session_scope() as session:
        stored = list(session.scalars(select(ApiToken.token_hash)))
    assert token not in stored and all(len(h) == 64 for h in stored)


def test_upload_hh_jsonl_and_read_it_back(client, auth) -> None:
    records = hh_records(20)
    response = upload(client, auth, jsonl_bytes(records), "hh.jsonl", name="helpful")
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert dataset["n_pairs"] == 20 and dataset["schema_kind"] == "hh_transcript"
    assert dataset["name"] == "helpful" and dataset["format"] == "jsonl"
    listed = client.get(f"{API}/datasets", headers=auth).json()
    assert [d["id"] for d in listed["items"]] == [dataset["id"]] and listed["total"] == 1
    page = client.get(f"{API}/datasets/{dataset['id']}/pairs?limit=5&offset=2", headers=auth).json()
    assert page["total"] == 20 and [p["index"] for p in page["items"]] == [2, 3, 4, 5, 6]
    first = page["items"][0]
    assert first["prompt"] + first["chosen"] == records[2]["chosen"]
    original = Path(DATA_DIR / "datasets" / str(dataset["id"]) / "original.jsonl")
    assert original.read_bytes() == jsonl_bytes(records)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_upload_other_formats(client, auth, fmt: str) -> None:
    rows = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(7)]
    if fmt == "csv":
        data = (
            "prompt,chosen,rejected\n"
            + "".join(f"{r['prompt']},{r['chosen']},{r['rejected']}\n" for r in rows)
        ).encode()
    elif fmt == "parquet":
        sink = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows), sink)
        data = sink.getvalue()
    else:
        data = json.dumps(rows).encode()
    response = upload(client, auth, data, f"pairs.{fmt}")
    assert response.status_code == 201, response.text
    assert response.json()["n_pairs"] == 7
    assert response.json()["schema_kind"] == "prompt_chosen_rejected"


@pytest.mark.parametrize(
    ("lines", "row", "fragment"),
    [
        ([b'{"chosen": "a", "rejected": "b"}', b'{"chosen": "a"}'], 2, "missing column 'rejected'"),
        ([b'{"chosen": "a", "rejected": "b"}', b"this is not json"], 2, "not valid JSON"),
        (
            [b'{"chosen": "a", "rejected": "b"}', b'{"chosen": 5, "rejected": "b"}'],
            2,
            "'chosen' must be text",
        ),
        (
            [b'{"chosen": "a", "rejected": "b"}', b'{"chosen": "a\xff", "rejected": "b"}'],
            2,
            "invalid UTF-8",
        ),
    ],
)
def test_bad_upload_is_rejected_whole(client, make_user, lines, row: int, fragment: str) -> None:
    user = make_user()
    good = [json.dumps({"chosen": f"good {i}", "rejected": f"bad {i}"}).encode() for i in range(50)]
    data = b"\n".join(good[: row - 1] + lines[1:] + good) + b"\n"
    files_before = n_stored_files()
    response = upload(client, user["headers"], data, "broken.jsonl")
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail["row"] == row and fragment in detail["message"], detail
    assert f"row {row}" in detail["message"]
    assert client.get(f"{API}/datasets", headers=user["headers"]).json()["total"] == 0
    assert n_stored_files() == files_before
    assert not list((DATA_DIR / "uploads").glob("incoming-*"))


def test_empty_file_is_rejected(client, auth) -> None:
    response = upload(client, auth, b"", "empty.jsonl")
    assert response.status_code == 422 and "no pairs" in response.json()["detail"]["message"]


def test_other_users_dataset_is_not_found(client, make_user) -> None:
    alice, bob = make_user(), make_user()
    dataset = upload(client, alice["headers"], jsonl_bytes(hh_records(3)), "a.jsonl").json()
    for path in ("", "/pairs", "/export", "/jobs"):
        response = client.get(f"{API}/datasets/{dataset['id']}{path}", headers=bob["headers"])
        assert response.status_code == 404, path
    assert (
        client.delete(f"{API}/datasets/{dataset['id']}", headers=bob["headers"]).status_code == 404
    )
    assert client.get(f"{API}/datasets", headers=bob["headers"]).json()["total"] == 0
    assert (
        client.get(f"{API}/datasets/{dataset['id']}", headers=alice["headers"]).status_code == 200
    )


def test_delete_removes_rows_and_files(client, auth) -> None:
    dataset = upload(client, auth, jsonl_bytes(hh_records(4)), "d.jsonl").json()
    folder = DATA_DIR / "datasets" / str(dataset["id"])
    assert folder.is_dir()
    assert client.delete(f"{API}/datasets/{dataset['id']}", headers=auth).status_code == 204
    assert client.get(f"{API}/datasets/{dataset['id']}", headers=auth).status_code == 404
    assert not folder.exists()


def test_flag_and_export_in_every_format(client, auth) -> None:
    records = hh_records(10)
    for i, record in enumerate(records):
        record["source"] = f"row-{i}"
    dataset = upload(client, auth, jsonl_bytes(records), "m.jsonl").json()
    pairs = client.get(f"{API}/datasets/{dataset['id']}/pairs?limit=100", headers=auth).json()
    flagged_id = pairs["items"][3]["id"]
    flag = client.put(
        f"{API}/datasets/{dataset['id']}/pairs/{flagged_id}/flag",
        headers=auth,
        json={"flagged": True, "note": "looks swapped"},
    )
    assert flag.status_code == 200 and flag.json()["flagged"] and flag.json()["note"]
    expected = [r for i, r in enumerate(records) if i != 3]

    jsonl = client.get(f"{API}/datasets/{dataset['id']}/export?format=jsonl", headers=auth)
    assert jsonl.headers["content-disposition"].startswith("attachment")
    assert [json.loads(line) for line in jsonl.text.splitlines()] == expected

    csv_body = client.get(f"{API}/datasets/{dataset['id']}/export?format=csv", headers=auth)
    import csv as csv_module

    assert list(csv_module.DictReader(io.StringIO(csv_body.text))) == expected

    parquet = client.get(f"{API}/datasets/{dataset['id']}/export?format=parquet", headers=auth)
    assert pq.read_table(io.BytesIO(parquet.content)).to_pylist() == expected

    everything = client.get(
        f"{API}/datasets/{dataset['id']}/export?format=jsonl&exclude_flagged=false", headers=auth
    )
    assert len(everything.text.splitlines()) == 10
    unflag = client.put(
        f"{API}/datasets/{dataset['id']}/pairs/{flagged_id}/flag",
        headers=auth,
        json={"flagged": False},
    )
    assert unflag.json()["flagged"] is False
    flagged_only = client.get(
        f"{API}/datasets/{dataset['id']}/pairs?flagged=true", headers=auth
    ).json()
    assert flagged_only["total"] == 0
