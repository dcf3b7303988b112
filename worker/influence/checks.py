"""Exact checks that need the audit's tokenizer: pairs whose chosen and rejected token sequences
are the same once truncated to `max_length` (as `model.encode` truncates: from the left), and
how many tokens they differ in before truncation (tag `truncated_identical`,
`worker.influence.tags`). Such a pair's loss is ln 2 and its gradient zero whatever its label."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from worker.influence.data import Pair, join
from worker.influence.model import encode


def differing_tokens(chosen: Sequence[int], rejected: Sequence[int]) -> int:
    """Tokens in which two sequences differ: the longer's length less their common prefix and
    (of what is left) common suffix. 0 for equal sequences."""
    limit = min(len(chosen), len(rejected))
    prefix = 0
    while prefix < limit and chosen[prefix] == rejected[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and chosen[-1 - suffix] == rejected[-1 - suffix]:
        suffix += 1
    return max(len(chosen), len(rejected)) - prefix - suffix


def truncated_identical(
    tokenizer: Any, pairs: Sequence[Pair], max_length: int
) -> list[tuple[int, int]]:
    """(position in `pairs`, tokens differing before truncation) of every pair whose two sides
    encode to the same ids at `max_length`; identical texts included (difference 0)."""
    encoded = encode(tokenizer, pairs, max_length).ids
    same = [k for k, (c, r) in enumerate(encoded) if np.array_equal(c, r)]
    if not same:
        return []
    full = {"truncation": False, "padding": False}
    chosen = tokenizer([join(pairs[k].prompt, pairs[k].chosen) for k in same], **full)
    rejected = tokenizer([join(pairs[k].prompt, pairs[k].rejected) for k in same], **full)
    return [
        (k, differing_tokens(c, r))
        for k, c, r in zip(same, chosen["input_ids"], rejected["input_ids"], strict=True)
    ]
