"""Where the benchmarks read data (../shared/data) and write results and caches."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
HH_DIR = SHARED_DATA / "hh-rlhf"
HH_HELPFUL_TEST = HH_DIR / "helpful-base-test.jsonl.gz"
"""hh-flip10's source: HH-RLHF helpful-base, test split (2,354 pairs)."""
RESULTS = REPO / "bench" / "results"
CACHE = REPO / "bench" / "cache"
