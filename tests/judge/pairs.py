"""Real HH-RLHF pairs for the judge's tests, as the engine's JudgePair."""

from __future__ import annotations

from backend.ingest.parsing import split_transcripts
from tests.factories import hh_records
from worker.influence.judge import JudgePair

API_KEY = "judge-test-key-9f3c"
"""The key the session's llama.cpp server requires (PREFAUDIT_JUDGE_API_KEY in the tests)."""

FAST = {"max_tokens": 1, "timeout_seconds": 600, "template": {"max_chars": 200}}
"""A judge job's options for real requests kept small (CPU time): short texts, one answer token."""


def hh_pairs(n: int, split: str = "helpful-base") -> list[JudgePair]:
    pairs = []
    for record in hh_records(n, split):
        prompt, chosen, rejected = split_transcripts(record["chosen"], record["rejected"])
        pairs.append(JudgePair(prompt, chosen, rejected))
    return pairs
