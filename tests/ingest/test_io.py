"""Parsing uploads: every format, both schemas, exact HH prefix splits, errors with row/column."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from backend.ingest.errors import PairFormatError
from backend.ingest.formats import detect_format
from backend.ingest.parsing import parse_pairs, split_transcripts
from backend.ingest.reading import iter_records, read_pairs
from backend.ingest.writing import csv_text, to_records
from tests.factories import hh_records, jsonl_bytes


def parse(data: bytes, fmt: str) -> list:
    return list(parse_pairs(iter_records(io.BytesIO(data), fmt)))  # type: ignore[arg-type]


def test_hh_split_keeps_the_final_turn_and_round_trips_exactly() -> None:
    records = hh_records(200)
    pairs = parse(jsonl_bytes(records), "jsonl")
    assert len(pairs) == 200
    for record, pair in zip(records, pairs, strict=True):
        assert pair.prompt + pair.chosen == record["chosen"]
        assert pair.prompt + pair.rejected == record["rejected"]
        assert pair.prompt.endswith("\n\nAssistant:")
        assert "\n\nAssistant:" not in pair.chosen.rstrip()[:1]  # the response itself follows
    assert list(to_records(pairs, "hh_transcript")) == records


def test_split_without_shared_assistant_turn_keeps_whole_transcripts() -> None:
    assert split_transcripts("Hello there", "Hello you") == ("", "Hello there", "Hello you")


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "parquet"])
def test_prompt_chosen_rejected_in_every_format(fmt: str) -> None:
    rows = [
        {"prompt": "Q1", "chosen": 'good, "quoted"\nline', "rejected": "bad", "source": "a"},
        {"prompt": "", "chosen": "ünïcode ✓", "rejected": "nope", "source": "b"},
    ]
    if fmt == "jsonl":
        data = jsonl_bytes(rows)
    elif fmt == "json":
        data = json.dumps(rows, indent=2).encode()
    elif fmt == "csv":
        data = "".join(csv_text(rows, ["prompt", "chosen", "rejected", "source"])).encode()
    else:
        sink = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows), sink)
        data = sink.getvalue()
    pairs = parse(data, fmt)
    assert [(p.prompt, p.chosen, p.rejected, p.metadata) for p in pairs] == [
        (r["prompt"], r["chosen"], r["rejected"], {"source": r["source"]}) for r in rows
    ]


def test_gzipped_jsonl_is_read() -> None:
    import gzip

    data = gzip.compress(jsonl_bytes(hh_records(3)))
    assert len(parse(data, "jsonl")) == 3
    assert detect_format("helpful-base-test.jsonl.gz") == "jsonl"


@pytest.mark.parametrize(
    ("data", "fmt", "row", "column", "fragment"),
    [
        (b'{"chosen": "a", "rejected": "b"}\n{"chosen": "a"}\n', "jsonl", 2, "rejected", "missing"),
        (b'{"chosen": "a", "rejected": "b"}\n{"chosen": "a", \n', "jsonl", 2, 17, "not valid JSON"),
        (
            b'{"chosen": "a", "rejected": "b"}\n{"chosen": null, "rejected": "b"}\n',
            "jsonl",
            2,
            "chosen",
            "got empty",
        ),
        (
            b'{"chosen": "a", "rejected": "b"}\n{"chosen": "\xff", "rejected": "b"}\n',
            "jsonl",
            2,
            13,
            "UTF-8",
        ),
        (b"prompt,chosen,rejected\nq,a,b\nq\n", "csv", 3, "chosen", "must be text"),
        (b"prompt,chosen\nq,a\n", "csv", 2, "rejected", "missing"),
        (b"prompt,chosen,rejected\nq,a,b\nq,\xe9,b\n", "csv", 3, 3, "UTF-8"),
        (
            b'[{"chosen": "a", "rejected": "b"}, {"chosen": 3, "rejected": "b"}]',
            "json",
            2,
            "chosen",
            "must be text",
        ),
    ],
)
def test_bad_rows_name_row_and_column(
    data: bytes, fmt: str, row: int, column: object, fragment: str
) -> None:
    with pytest.raises(PairFormatError) as caught:
        parse(data, fmt)
    assert caught.value.row == row
    assert caught.value.column == column
    assert fragment in str(caught.value)
    assert f"row {row}" in str(caught.value)


def test_identical_responses_are_kept() -> None:
    # Real HH-RLHF has such pairs (helpful-base test row 722): they carry no preference signal
    # but are data, and refusing them would refuse the whole public dataset.
    pairs = parse(b'{"prompt": "p", "chosen": "same", "rejected": "same"}\n', "jsonl")
    assert pairs[0].chosen == pairs[0].rejected == "same"


def test_unknown_extension_is_refused() -> None:
    with pytest.raises(PairFormatError, match="cannot tell the format"):
        detect_format("pairs.xlsx")


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_a_byte_order_mark_is_not_part_of_the_first_field(fmt: str) -> None:
    """Excel and Notepad start UTF-8 files with a BOM; the CSV header's first cell used to read
    as '\\ufeffprompt', so the file was taken for HH transcripts with empty prompts."""
    rows = [{"prompt": "Q", "chosen": "good", "rejected": "bad"}]
    if fmt == "jsonl":
        data = jsonl_bytes(rows)
    elif fmt == "json":
        data = json.dumps(rows).encode()
    else:
        data = "".join(csv_text(rows, ["prompt", "chosen", "rejected"])).encode()
    pairs = parse("\ufeff".encode() + data, fmt)
    assert [(p.prompt, p.chosen, p.rejected, p.metadata) for p in pairs] == [
        ("Q", "good", "bad", {})
    ]


def test_a_hugging_face_save_to_disk_folder_reads_as_one_file(tmp_path) -> None:
    """`read_pairs` (the CLI) takes the folder `datasets.save_to_disk` writes, shards in order,
    rows numbered across them; a folder without .arrow files is refused saying what it needs."""
    import datasets

    rows = [{"prompt": f"q{i}", "chosen": f"a{i}", "rejected": f"b{i}", "k": i} for i in range(7)]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"), num_shards=3)
    assert len(list((tmp_path / "saved").glob("*.arrow"))) == 3
    pairs = read_pairs(tmp_path / "saved")
    assert [(p.row, p.prompt, p.metadata["k"]) for p in pairs] == [
        (i + 1, f"q{i}", i) for i in range(7)
    ]
    (tmp_path / "empty").mkdir()
    with pytest.raises(PairFormatError, match="save_to_disk"):
        read_pairs(tmp_path / "empty")
