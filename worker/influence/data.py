"""Preference pairs as the engine sees them, and how a pair becomes two texts to score.

Torch-free: the pipeline builds `Pair`s from database rows without loading the engine.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pair:
    """One preference judgement: `chosen` was preferred to `rejected` as a reply to `prompt`.

    `prompt` is the shared context (for HH-RLHF transcripts, everything before the final assistant
    turn); `chosen` and `rejected` are the final responses only.
    """

    prompt: str
    chosen: str
    rejected: str


def join(prompt: str, response: str) -> str:
    """The text the reward model scores: prompt then response.

    A split of a shared transcript prefix keeps its whitespace, so the two halves are joined
    verbatim; a newline is inserted only where neither side brings whitespace of its own (separate
    prompt/response columns), so words never run together.
    """
    if prompt and response and not prompt[-1].isspace() and not response[0].isspace():
        return prompt + "\n" + response
    return prompt + response


def flipped(pair: Pair) -> Pair:
    """The same pair with the preference reversed (chosen and rejected swapped)."""
    return Pair(pair.prompt, pair.rejected, pair.chosen)


def validation_size(n: int, fraction: float) -> int:
    """Pairs split off for validation: round(fraction·n), leaving at least one to train on."""
    return max(0, min(n - 1, round(fraction * n)))


def split_validation(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded split of range(n) into sorted (train, validation) positions (the jobs' rule)."""
    import numpy as np

    n_val = validation_size(n, fraction)
    order = np.random.default_rng(seed).permutation(n)
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())
