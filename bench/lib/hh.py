"""HH-RLHF test files from ../shared/data: raw records, hh-flip10's split, upload bodies."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from backend.ingest.parsing import split_transcripts
from bench.lib.paths import HH_DIR
from worker.influence.data import Pair, flipped


def read_records(path: Path) -> list[dict]:
    """Every record of a gzipped JSONL file, in file order."""
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def transcripts(path: Path) -> Iterator[tuple[str, str, str]]:
    """(prompt, chosen, rejected) of each record whose transcripts split; the others skipped."""
    for record in read_records(path):
        try:
            yield split_transcripts(record["chosen"], record["rejected"])
        except ValueError:
            continue


def transcript_pairs(path: Path) -> list[Pair]:
    """An HH-RLHF file's pairs: each record's two transcripts split into prompt and responses."""
    return [Pair(*split_transcripts(r["chosen"], r["rejected"])) for r in read_records(path)]


def hh_flip10(path: Path) -> tuple[list[Pair], list[Pair], list[Pair], np.ndarray]:
    """hh-flip10: train/val/test by perm = default_rng(0).permutation(2354); 100 flips in train."""
    pairs = transcript_pairs(path)
    assert len(pairs) == 2354, len(pairs)
    perm = np.random.default_rng(0).permutation(2354)
    train = [pairs[i] for i in perm[0:1000]]
    val = [pairs[i] for i in perm[1000:1300]]
    test = [pairs[i] for i in perm[1300:1800]]
    flips = np.random.default_rng(0).choice(1000, 100, replace=False)
    mask = np.zeros(1000, dtype=bool)
    mask[flips] = True
    train = [flipped(p) if mask[i] else p for i, p in enumerate(train)]
    return train, val, test, mask


def hh_flip10_subset(
    path: Path, n: int, n_val: int, split_seed: int = 0
) -> tuple[list[Pair], list[Pair], np.ndarray]:
    """The first n training and n_val validation pairs of hh-flip10's split, 10% flipped.

    `split_seed` 0 on helpful-base is hh-flip10 itself; another seed (or file) draws a fresh split
    and fresh flips the same way: perm = default_rng(s).permutation(N), flips
    default_rng(s).choice(n, n/10)."""
    pairs = transcript_pairs(path)
    if n > 1000 or n_val > 300:
        raise ValueError("hh-flip10 has 1000 training and 300 validation pairs")
    perm = np.random.default_rng(split_seed).permutation(len(pairs))
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(split_seed).choice(n, round(0.1 * n), replace=False)] = True
    train = [flipped(pairs[i]) if mask[j] else pairs[i] for j, i in enumerate(perm[:n])]
    val = [pairs[i] for i in perm[1000 : 1000 + n_val]]
    return train, val, mask


def hh_jsonl(n: int) -> bytes:
    """An upload body of `n` HH-RLHF records (helpful- then harmless-base test files, repeated
    with a ` [copy k]` suffix past their end)."""
    base: list[dict] = []
    for split in ("helpful-base", "harmless-base"):
        for record in read_records(HH_DIR / f"{split}-test.jsonl.gz"):
            # The few pairs with an empty final response are refused by uploads.
            _, chosen, rejected = split_transcripts(record["chosen"], record["rejected"])
            if chosen.strip() and rejected.strip():
                base.append(record)
    out = []
    for k in range(n):
        record = dict(base[k % len(base)])
        copy = k // len(base)
        if copy:
            record["chosen"] += f" [copy {copy}]"
            record["rejected"] += f" [copy {copy}]"
        out.append(json.dumps(record))
    return ("\n".join(out) + "\n").encode()
