"""The record formats users have (chat-message lists, SHP, raw UltraFeedback), a column mapping
on upload, and the preview of what an upload would store: through the API on the real database,
and in the engine's reader."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from backend.ingest.errors import PairFormatError
from backend.ingest.mapping import parse_mapping
from backend.ingest.reading import read_pairs
from tests.factories import API, HH_DIR, jsonl_bytes, n_stored_files, staged_uploads, stored_counts


def _openai(*turns: tuple[str, str]) -> list[dict]:
    return [{"role": role, "content": text} for role, text in turns]


CHAT = {
    "chosen": _openai(("system", "Be brief."), ("user", "Hi?"), ("assistant", "Hello.")),
    "rejected": _openai(("system", "Be brief."), ("user", "Hi?"), ("assistant", "Go away.")),
    "source": "chat",
}
SHAREGPT = {
    "chosen": [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}],
    "rejected": [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "5"}],
}
ANSWERS_ONLY = {  # UltraFeedback-binarized / TRL: the lists hold only the answers
    "prompt": "Name a colour.",
    "chosen": _openai(("assistant", "Blue.")),
    "rejected": _openai(("assistant", "Seven.")),
    "score_chosen": 8.5,
}
SHP = {
    "post_id": "p1",
    "history": "Why is the sky blue?",
    "human_ref_A": "Rayleigh scattering.",
    "human_ref_B": "Because it is.",
    "labels": 1,
    "score_A": 12,
}
ULTRAFEEDBACK = {
    "source": "evol_instruct",
    "instruction": "Write a haiku.",
    "completions": [
        {"model": "m1", "response": "An old silent pond", "overall_score": 7.5},
        {"model": "m2", "response": "haiku", "overall_score": 2.0},
        {"model": "m3", "response": "A frog jumps in", "overall_score": 6.0},
    ],
}


def _upload(client, headers, data: bytes, filename: str, mapping: dict | str | None = None):
    form = {"name": "formats"}
    if mapping is not None:
        form["mapping"] = mapping if isinstance(mapping, str) else json.dumps(mapping)
    return client.post(
        f"{API}/datasets", headers=headers, files={"file": (filename, data)}, data=form
    )


def _preview(client, headers, data: bytes, filename: str, mapping: dict | None = None):
    form = {"mapping": json.dumps(mapping)} if mapping else {}
    return client.post(
        f"{API}/datasets/preview", headers=headers, files={"file": (filename, data)}, data=form
    )


def _stored(client, headers, dataset_id: int) -> list[dict]:
    items = client.get(f"{API}/datasets/{dataset_id}/pairs", headers=headers).json()["items"]
    return [
        {"prompt": p["prompt"], "chosen": p["chosen"], "rejected": p["rejected"], **p["metadata"]}
        for p in items
    ]


def test_chat_messages_become_hh_style_prompts(client, auth) -> None:
    response = _upload(client, auth, jsonl_bytes([CHAT, SHAREGPT, ANSWERS_ONLY]), "chat.jsonl")
    assert response.status_code == 201, response.text
    assert response.json()["schema_kind"] == "chat_messages"
    assert _stored(client, auth, response.json()["id"]) == [
        {
            "prompt": "\n\nSystem: Be brief.\n\nHuman: Hi?\n\nAssistant: ",
            "chosen": "Hello.",
            "rejected": "Go away.",
            "source": "chat",
        },
        {"prompt": "\n\nHuman: 2+2?\n\nAssistant: ", "chosen": "4", "rejected": "5"},
        {
            "prompt": "\n\nHuman: Name a colour.\n\nAssistant: ",
            "chosen": "Blue.",
            "rejected": "Seven.",
            "score_chosen": 8.5,
        },
    ]


def test_shp_and_ultrafeedback_records(client, auth) -> None:
    b_preferred = {**SHP, "labels": 0, "post_id": "p2"}
    response = _upload(client, auth, jsonl_bytes([SHP, b_preferred]), "shp.jsonl")
    assert response.status_code == 201, response.text
    assert response.json()["schema_kind"] == "shp"
    first, second = _stored(client, auth, response.json()["id"])
    assert (first["chosen"], first["rejected"]) == ("Rayleigh scattering.", "Because it is.")
    assert (second["chosen"], second["rejected"]) == ("Because it is.", "Rayleigh scattering.")
    assert first["prompt"] == "Why is the sky blue?" and first["score_A"] == 12

    response = _upload(client, auth, jsonl_bytes([ULTRAFEEDBACK]), "uf.jsonl")
    assert response.status_code == 201, response.text
    assert response.json()["schema_kind"] == "ultrafeedback"
    [pair] = _stored(client, auth, response.json()["id"])
    assert pair == {
        "prompt": "Write a haiku.",
        "chosen": "An old silent pond",  # the best score
        "rejected": "haiku",  # the worst
        "source": "evol_instruct",
        "score_chosen": 7.5,
        "score_rejected": 2.0,
        "model_chosen": "m1",
        "model_rejected": "m2",
    }


def test_a_converted_dataset_exports_as_prompt_chosen_rejected(client, auth) -> None:
    dataset = _upload(client, auth, jsonl_bytes([CHAT, SHAREGPT]), "chat.jsonl").json()
    body = client.get(f"{API}/datasets/{dataset['id']}/export?format=jsonl", headers=auth)
    assert body.status_code == 200, body.text
    lines = [json.loads(line) for line in body.content.decode().splitlines()]
    assert [sorted(line) for line in lines] == [
        ["chosen", "prompt", "rejected", "source"],
        ["chosen", "prompt", "rejected"],
    ]
    assert lines[1] == {"prompt": "\n\nHuman: 2+2?\n\nAssistant: ", "chosen": "4", "rejected": "5"}


def test_a_column_mapping_names_the_pairs_fields(client, auth) -> None:
    rows = [
        {"question": "q1", "good": "yes", "bad": "no", "prompt": "an unrelated field"},
        {"question": "q2", "good": "fine", "bad": "poor", "prompt": "another"},
    ]
    mapping = {"prompt": "question", "chosen": "good", "rejected": "bad"}
    response = _upload(client, auth, jsonl_bytes(rows), "mine.jsonl", mapping)
    assert response.status_code == 201, response.text
    assert _stored(client, auth, response.json()["id"]) == [
        {"prompt": "q1", "chosen": "yes", "rejected": "no"},
        {"prompt": "q2", "chosen": "fine", "rejected": "poor"},
    ]
    # The same file in Parquet, mapping only two of the three fields.
    table = pa.Table.from_pylist(
        [{"prompt": r["question"], "A": r["good"], "B": r["bad"]} for r in rows]
    )
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    response = _upload(
        client, auth, sink.getvalue().to_pybytes(), "m.parquet", {"chosen": "A", "rejected": "B"}
    )
    assert response.status_code == 201, response.text
    assert [p["chosen"] for p in _stored(client, auth, response.json()["id"])] == ["yes", "fine"]


BAD: dict[str, tuple[bytes, str, dict | str | None, str, int | None, str | None]] = {
    # name: (file, filename, mapping, message fragment, row, column)
    "chat contexts differ": (
        jsonl_bytes([CHAT, {**CHAT, "rejected": _openai(("user", "Other?"), ("assistant", "x"))}]),
        "c.jsonl",
        None,
        "differ before their last message",
        2,
        "rejected",
    ),
    "an unknown role": (
        jsonl_bytes([CHAT, {**CHAT, "chosen": _openai(("wizard", "x"), ("assistant", "y"))}]),
        "c.jsonl",
        None,
        "has role 'wizard'",
        2,
        "chosen[0]",
    ),
    "the last message is the user's": (
        jsonl_bytes([CHAT, {**CHAT, "chosen": _openai(("user", "Hi?"))}]),
        "c.jsonl",
        None,
        "must be the assistant's answer",
        2,
        "chosen",
    ),
    "a message without text": (
        jsonl_bytes([CHAT, {**CHAT, "chosen": [{"role": "assistant", "content": None}]}]),
        "c.jsonl",
        None,
        "must have text content",
        2,
        "chosen[0]",
    ),
    "answers only and no prompt": (
        jsonl_bytes([{k: v for k, v in ANSWERS_ONLY.items() if k != "prompt"}]),
        "c.jsonl",
        None,
        "there is no 'prompt' column",
        1,
        "prompt",
    ),
    "an empty message list": (
        jsonl_bytes([CHAT, {**CHAT, "rejected": []}]),
        "c.jsonl",
        None,
        "non-empty list of messages",
        2,
        "rejected",
    ),
    "an SHP label of 2": (
        jsonl_bytes([SHP, {**SHP, "labels": 2}]),
        "s.jsonl",
        None,
        "'labels' must be 1",
        2,
        "labels",
    ),
    "an SHP record without human_ref_B": (
        jsonl_bytes([SHP, {k: v for k, v in SHP.items() if k != "human_ref_B"}]),
        "s.jsonl",
        None,
        "missing column 'human_ref_B'",
        2,
        "human_ref_B",
    ),
    "UltraFeedback with equal scores": (
        jsonl_bytes(
            [
                ULTRAFEEDBACK,
                {
                    **ULTRAFEEDBACK,
                    "completions": [{"response": r, "overall_score": 5} for r in ("a", "b")],
                },
            ]
        ),
        "u.jsonl",
        None,
        "same score",
        2,
        "completions",
    ),
    "UltraFeedback with one completion": (
        jsonl_bytes([{**ULTRAFEEDBACK, "completions": ULTRAFEEDBACK["completions"][:1]}]),
        "u.jsonl",
        None,
        "fewer than two completions",
        1,
        "completions",
    ),
    "UltraFeedback with a text score": (
        jsonl_bytes(
            [
                {
                    **ULTRAFEEDBACK,
                    "completions": [
                        {"response": "a", "overall_score": "high"},
                        {"response": "b", "overall_score": 1},
                    ],
                }
            ]
        ),
        "u.jsonl",
        None,
        "must be a number",
        1,
        "completions[0]",
    ),
    "a mapped column missing from a row": (
        jsonl_bytes([{"q": "1", "chosen": "a", "rejected": "b"}, {"chosen": "a", "rejected": "b"}]),
        "m.jsonl",
        {"prompt": "q"},
        "missing column 'q' (mapped to prompt)",
        2,
        "q",
    ),
    "a mapping that is not JSON": (
        jsonl_bytes([CHAT]),
        "m.jsonl",
        "{prompt:",
        "not JSON",
        None,
        "mapping",
    ),
    "a mapping that is a list": (
        jsonl_bytes([CHAT]),
        "m.jsonl",
        '["a"]',
        "JSON object",
        None,
        "mapping",
    ),
    "a mapping to an unknown field": (
        jsonl_bytes([CHAT]),
        "m.jsonl",
        {"answer": "x"},
        "not answer",
        None,
        "mapping",
    ),
    "a mapping using one column twice": (
        jsonl_bytes([CHAT]),
        "m.jsonl",
        {"chosen": "x", "rejected": "x"},
        "one column twice",
        None,
        "mapping",
    ),
    "a mapping to a number": (
        jsonl_bytes([CHAT]),
        "m.jsonl",
        {"chosen": 3},
        "must be a name",
        None,
        "mapping",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_record_or_mapping_is_a_422_naming_it_and_stores_nothing(client, auth, case) -> None:
    data, filename, mapping, fragment, row, column = BAD[case]
    before, files_before, staged_before = stored_counts(), n_stored_files(), staged_uploads()
    response = _upload(client, auth, data, filename, mapping)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]  # a refused file's detail is its first bad row
    assert fragment in detail["message"], detail
    assert (detail["row"], detail["column"]) == (row, column), detail
    assert stored_counts() == before and n_stored_files() == files_before
    assert staged_uploads() == staged_before


def test_the_preview_shows_columns_first_pairs_and_bad_rows_and_stores_nothing(
    client, auth
) -> None:
    rows = [{"question": f"q{i}", "good": "x" * 5000, "bad": "no"} for i in range(8)]
    rows[1] = {"question": "q1", "bad": "no"}  # no answer (an empty one is accepted and tagged)
    data = jsonl_bytes(rows)
    before, files_before, staged_before = stored_counts(), n_stored_files(), staged_uploads()

    unmapped = _preview(client, auth, data, "mine.jsonl")
    assert unmapped.status_code == 200, unmapped.text
    body = unmapped.json()
    assert body["columns"] == ["question", "good", "bad"]
    assert body["pairs"] == [] and body["bad_rows"][0]["column"] == "chosen"  # nothing is named so

    mapped = _preview(
        client,
        auth,
        data,
        "mine.jsonl",
        {"prompt": "question", "chosen": "good", "rejected": "bad"},
    )
    assert mapped.status_code == 200, mapped.text
    body = mapped.json()
    assert body["format"] == "jsonl" and body["schema_kind"] == "prompt_chosen_rejected"
    assert [p["row"] for p in body["pairs"]] == [1, 3, 4, 5, 6]  # five pairs, row 2 is bad
    assert body["pairs"][0]["prompt"] == "q0" and len(body["pairs"][0]["chosen"]) == 2000
    assert [(b["row"], b["column"]) for b in body["bad_rows"]] == [(2, "good")]  # the file's name
    assert body["rows_read"] == 8  # every record is read (up to 200), not only until 5 pairs
    assert stored_counts() == before and n_stored_files() == files_before
    assert staged_uploads() == staged_before

    assert _preview(client, {}, data, "mine.jsonl").status_code == 401
    damaged = _preview(client, auth, gzip.compress(data)[:40], "mine.jsonl.gz")
    assert damaged.status_code == 422 and "gzip" in damaged.json()["detail"]["message"]
    assert staged_uploads() == staged_before


def test_the_preview_reads_200_records_and_lists_their_bad_rows(client, auth) -> None:
    rows = [{"prompt": f"q{i}", "chosen": "yes", "rejected": "no"} for i in range(250)]
    rows[120] = {"prompt": "q120", "rejected": "no"}  # file row 121: no chosen
    rows[220] = {"prompt": "q220", "rejected": "no"}  # row 221: past the preview
    body = _preview(client, auth, jsonl_bytes(rows), "long.jsonl").json()
    assert body["rows_read"] == 200
    assert [(b["row"], b["column"]) for b in body["bad_rows"]] == [(121, "chosen")]
    assert [p["row"] for p in body["pairs"]] == [1, 2, 3, 4, 5]


def test_the_preview_of_real_hh_rlhf_transcripts(client, auth) -> None:
    data = (HH_DIR / "helpful-base-test.jsonl.gz").read_bytes()
    body = _preview(client, auth, data, "helpful-base-test.jsonl.gz").json()
    assert body["schema_kind"] == "hh_transcript" and body["columns"] == ["chosen", "rejected"]
    assert len(body["pairs"]) == 5
    assert all(p["prompt"].endswith("\n\nAssistant:") for p in body["pairs"])


def test_the_engine_reader_takes_the_same_formats_and_mapping(tmp_path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(jsonl_bytes([{"q": "x", "a": "good", "b": "bad"}]))
    [pair] = read_pairs(path, mapping={"prompt": "q", "chosen": "a", "rejected": "b"})
    assert (pair.prompt, pair.chosen, pair.rejected, pair.metadata) == ("x", "good", "bad", {})
    path.write_bytes(jsonl_bytes([SHP]))
    [pair] = read_pairs(path)
    assert pair.chosen == "Rayleigh scattering." and pair.metadata["post_id"] == "p1"
    with pytest.raises(PairFormatError, match="not JSON"):
        parse_mapping("{")
    assert parse_mapping("  ") == {}


def test_a_file_above_the_request_limit_previews_under_the_upload_limit(client, auth) -> None:
    """The preview takes what an upload takes (the 4 MiB request limit would refuse it)."""
    from backend.settings import get_settings

    row = {"prompt": "q", "chosen": "a" * 1000, "rejected": "b"}
    data = jsonl_bytes([row] * (get_settings().max_body_bytes // 1000 + 10))
    assert len(data) > get_settings().max_body_bytes
    response = _preview(client, auth, data, "big.jsonl")
    assert response.status_code == 200, response.text[:300]
    assert len(response.json()["pairs"]) == 5
