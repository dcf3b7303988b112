"""Exact data checks on the development data (issue 24): how many pairs each check tags.

Reads each file as an upload does (`backend.ingest.reading.read_pairs`, bad rows skipped and
counted), runs the upload checks (`backend.ingest.checks.UploadChecks`), the contamination check
between pairs of sets (13-grams) and, with the tokenizer of the `minilm` preset (what `tiny` and
`minilm` audits use), the audit check `truncated_identical` at max_length 512 and 128 (left
truncation, as the engine encodes). Two UltraFeedback-format files are built in a temporary
folder from the development data: PandaLM's test set and the Vicuna-80 human votes, each item's
two answers as `completions` scored by their annotators' votes (ties are refused at upload, as
UltraFeedback records whose completions all score the same are; counted as skipped).

    python -m bench.checks            # writes bench/results/checks.json and checks.md
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from backend.ingest.checks import NGRAM, UploadChecks, evaluation_ngrams, ngram_overlap
from backend.ingest.errors import PairFormatError
from backend.ingest.parsing import ParsedPair
from backend.ingest.reading import read_pairs
from bench.lib.paths import HH_DIR, RESULTS, SHARED_DATA
from bench.lib.report import write_json
from worker.influence.tags import TAG_NAMES, UPLOAD_TAGS

MAX_LENGTHS = (512, 128)
CONTAMINATION = (
    ("helpful-base", "harmless-base"),
    ("helpful-base", "helpful-rejection-sampled"),
    ("harmless-base", "helpful-rejection-sampled"),
    ("vicuna80-uf", "pandalm-uf"),
)


def _ultrafeedback(item: Any, prompt: str, a: str, b: str, votes: list[int]) -> dict:
    """An UltraFeedback record: the two answers scored by how many annotators chose each."""
    return {
        "instruction": prompt,
        "completions": [
            {"response": a, "overall_score": sum(v == 1 for v in votes), "model": "a"},
            {"response": b, "overall_score": sum(v == 2 for v in votes), "model": "b"},
        ],
        "source_item": item,
    }


def build_ultrafeedback(folder: Path) -> dict[str, Path]:
    """PandaLM and Vicuna-80 as UltraFeedback JSONL files under `folder`."""
    pandalm = json.loads((SHARED_DATA / "pandalm" / "testset-v1.json").read_text())
    records = []
    for item in pandalm:
        prompt = item["instruction"] + (f"\n\n{item['input']}" if item.get("input") else "")
        votes = [item[f"annotator{k}"] for k in (1, 2, 3)]
        records.append(
            _ultrafeedback(item["idx"], prompt, item["response1"], item["response2"], votes)
        )
    paths = {"pandalm-uf": folder / "pandalm-uf.jsonl"}
    paths["pandalm-uf"].write_text("".join(json.dumps(r) + "\n" for r in records))
    records = []
    with gzip.open(SHARED_DATA / "vicuna80-human" / "votes.jsonl.gz", "rt") as lines:
        for n, line in enumerate(lines):
            unit = json.loads(line)
            # A vote of 1 is response_a, 2 response_b, 3 a tie.
            records.append(
                _ultrafeedback(
                    n, unit["prompt"], unit["response_a"], unit["response_b"], unit["votes"]
                )
            )
    paths["vicuna80-uf"] = folder / "vicuna80-uf.jsonl"
    paths["vicuna80-uf"].write_text("".join(json.dumps(r) + "\n" for r in records))
    return paths


def sources(folder: Path) -> dict[str, Path]:
    return {
        "helpful-base": HH_DIR / "helpful-base-test.jsonl.gz",
        "harmless-base": HH_DIR / "harmless-base-test.jsonl.gz",
        "helpful-rejection-sampled": HH_DIR / "helpful-rejection-sampled-test.jsonl.gz",
        "llmbar": SHARED_DATA / "llmbar" / "llmbar.jsonl",
        **build_ultrafeedback(folder),
    }


REPEATS = 3
"""Reading and checking are each timed this many times (CPU seconds of this process, the
fastest kept): on a shared machine wall time measures the neighbours too."""


def _best_cpu(run: Any) -> tuple[Any, float]:
    """(run()'s result, its fastest CPU time over REPEATS runs)."""
    best, out = float("inf"), None
    for _ in range(REPEATS):
        started = time.process_time()
        out = run()
        best = min(best, time.process_time() - started)
    return out, best


def _check(pairs: list[ParsedPair]) -> dict[str, set[int]]:
    checks = UploadChecks()
    for pair in pairs:
        checks.add(pair.row, pair.prompt, pair.chosen, pair.rejected)
    tagged: dict[str, set[int]] = {tag: set() for tag in UPLOAD_TAGS}
    for found in checks.results():
        tagged[found.tag].add(found.index)
    return tagged


def upload_checks(name: str, path: Path) -> tuple[dict[str, Any], list[ParsedPair]]:
    """The file read as an upload reads it, and its upload checks' counts."""
    skipped: list[PairFormatError] = []

    def read() -> list[ParsedPair]:
        skipped.clear()
        return read_pairs(path, on_error=skipped.append)

    pairs, read_s = _best_cpu(read)
    tagged, check_s = _best_cpu(lambda: _check(pairs))
    reasons = Counter(e.message.split(":")[0][:60] for e in skipped)
    row = {
        "dataset": name,
        "n_pairs": len(pairs),
        "n_skipped": len(skipped),
        "skipped_reasons": dict(reasons),
        "counts": {tag: len(found) for tag, found in tagged.items()},
        "examples": {tag: sorted(pairs[k].row for k in found)[:5] for tag, found in tagged.items()},
        "read_seconds": round(read_s, 3),
        "check_seconds": round(check_s, 3),
        "check_to_read": round(check_s / read_s, 2) if read_s else None,
        "pairs_per_second": round(len(pairs) / check_s) if check_s else None,
    }
    return row, pairs


def contamination(train: list[ParsedPair], evaluation: list[ParsedPair]) -> dict[str, Any]:
    grams = evaluation_ngrams(p.prompt for p in evaluation)
    shares = [ngram_overlap(p.prompt, grams) for p in train]
    hits = [s for s in shares if s > 0]
    return {
        "n": NGRAM,
        "tagged": len(hits),
        "share_of_pairs": round(len(hits) / len(train), 4) if train else 0.0,
        "fully_overlapping": sum(s == 1.0 for s in hits),
    }


def truncation(pairs: list[ParsedPair], max_length: int) -> dict[str, Any]:
    from worker.influence.checks import truncated_identical
    from worker.influence.config import EngineConfig
    from worker.influence.data import Pair
    from worker.influence.model import load_tokenizer

    tokenizer = load_tokenizer(EngineConfig(model="minilm"))
    engine = [Pair(p.prompt, p.chosen, p.rejected) for p in pairs]
    started = time.perf_counter()
    found = truncated_identical(tokenizer, engine, max_length)
    seconds = time.perf_counter() - started
    identical_texts = sum(p.chosen == p.rejected for p in pairs)
    return {
        "max_length": max_length,
        "tagged": len(found),
        "share_of_pairs": round(len(found) / len(pairs), 4),
        "beyond_identical_texts": len(found) - identical_texts,
        "median_tokens_differing": sorted(d for _, d in found)[len(found) // 2] if found else None,
        "seconds": round(seconds, 2),
    }


def markdown(result: dict[str, Any]) -> str:
    """The results as the tables of bench/RESULTS.md's section."""
    tags = list(UPLOAD_TAGS)
    lines = [
        "| dataset | pairs | skipped | " + " | ".join(tags) + " | pairs/s | checks / read |",
        "|---" * (len(tags) + 5) + "|",
    ]
    for row in result["upload"]:
        counts = " | ".join(str(row["counts"][t]) for t in tags)
        lines.append(
            f"| {row['dataset']} | {row['n_pairs']:,} | {row['n_skipped']} | {counts} | "
            f"{row['pairs_per_second']:,} | {row['check_to_read']}x |"
        )
    lines += ["", "| training set | evaluation set | pairs tagged (13-gram) | share | whole |"]
    lines.append("|---|---|---|---|---|")
    for row in result["contamination"]:
        lines.append(
            f"| {row['train']} | {row['evaluation']} | {row['tagged']} | "
            f"{100 * row['share_of_pairs']:.1f}% | {row['fully_overlapping']} |"
        )
    lines += ["", "| dataset | max_length | identical after truncation | share | beyond identical "]
    lines[-1] += "texts | median tokens differing |"
    lines.append("|---|---|---|---|---|---|")
    for row in result["truncation"]:
        lines.append(
            f"| {row['dataset']} | {row['max_length']} | {row['tagged']} | "
            f"{100 * row['share_of_pairs']:.2f}% | {row['beyond_identical_texts']} | "
            f"{row['median_tokens_differing']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS / "checks")
    parser.add_argument("--no-tokenizer", action="store_true", help="skip truncated_identical")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"tags": list(TAG_NAMES), "upload": [], "contamination": []}
    result["truncation"] = []
    with tempfile.TemporaryDirectory() as folder:
        read = {}
        for name, path in sources(Path(folder)).items():
            row, read[name] = upload_checks(name, path)
            result["upload"].append(row)
            print(
                f"{name}: {row['n_pairs']} pairs, {row['n_skipped']} skipped, {row['counts']}; "
                f"read {row['read_seconds']} s, checks {row['check_seconds']} s CPU "
                f"({row['check_to_read']}x)"
            )
    for train, evaluation in CONTAMINATION:
        row = {"train": train, "evaluation": evaluation}
        row |= contamination(read[train], read[evaluation])
        result["contamination"].append(row)
        print(f"contamination {train} vs {evaluation}: {row['tagged']} pairs")
    for name, pairs in read.items() if not args.no_tokenizer else ():
        for max_length in MAX_LENGTHS:
            row = {"dataset": name} | truncation(pairs, max_length)
            result["truncation"].append(row)
            print(f"truncated_identical {name} @ {max_length}: {row['tagged']} pairs")
    write_json(args.out.with_suffix(".json"), result)
    args.out.with_suffix(".md").write_text(markdown(result))
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
