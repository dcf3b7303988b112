"""The biases the targeted benchmark plants (bench.targeted; issue 20, item 4).

Each bias names the pairs of a dataset that show the *unbiased* behaviour (its candidates): a
planted flip turns one of them around, so the biased answer is chosen; the target set and the
held-out target test set are drawn from the candidates that stay clean.

- `length`: the chosen answer is the shorter by at least 20% of the longer (flips make the longer
  one chosen).
- `refusal`: the rejected answer hedges or refuses and the chosen does not (flips make the hedge
  chosen, in helpful data). Detected by the ingest check's refusal detector
  (backend.ingest.checks.is_refusal), widened by `HEDGE_PHRASES`: HH-RLHF's assistant hedges
  ("I'm sorry, I'm not sure what you mean") more than it refuses in the modern phrasing.
- `question`: the rejected answer asks the user a question back (holds a '?') and the chosen
  answers without one (flips make the answer that asks back chosen: a reward model that learns it
  pays for deflecting instead of answering). Not about length.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from backend.ingest.checks import is_refusal
from worker.influence.data import Pair

LENGTH_RATIO = 0.2
HEDGE_PHRASES: tuple[str, ...] = (
    "i'm sorry",
    "i am sorry",
    "i'm not sure",
    "i am not sure",
    "i don't know",
    "i do not know",
    "i don't understand",
    "i do not understand",
    "i'm not familiar",
    "i am not familiar",
    "i'm afraid",
    "i can't",
    "i cannot",
    "i'm not able",
    "i am not able",
    "i'm unable",
    "not sure what you mean",
    "i'd rather not",
    "i don't think i can",
)
"""Hedging or refusing openings, lower case, straight apostrophes (matched after folding)."""

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


def hedges(text: str) -> bool:
    """The response refuses (the ingest check's detector) or hedges (`HEDGE_PHRASES`)."""
    folded = " ".join(text.translate(_APOSTROPHES).casefold().split())
    return is_refusal(text) or any(phrase in folded for phrase in HEDGE_PHRASES)


def asks_back(text: str) -> bool:
    """The response asks the user something: it holds a question mark."""
    return "?" in text


def _length(pairs: Sequence[Pair]) -> np.ndarray:
    chosen = np.array([len(p.chosen) for p in pairs])
    rejected = np.array([len(p.rejected) for p in pairs])
    clear = np.abs(chosen - rejected) >= LENGTH_RATIO * np.maximum(chosen, rejected)
    return clear & (chosen < rejected)


def _contrast(detect: Callable[[str], bool]) -> Callable[[Sequence[Pair]], np.ndarray]:
    def candidates(pairs: Sequence[Pair]) -> np.ndarray:
        return np.array([detect(p.rejected) and not detect(p.chosen) for p in pairs], dtype=bool)

    return candidates


@dataclass(frozen=True)
class Bias:
    name: str
    planted: str  # what a planted flip makes the chosen answer
    target: str  # what the target set shows
    candidates: Callable[[Sequence[Pair]], np.ndarray]


BIASES: dict[str, Bias] = {
    b.name: b
    for b in (
        Bias(
            "length",
            "the longer answer (by ≥ 20%)",
            "the shorter answer chosen",
            _length,
        ),
        Bias(
            "refusal",
            "the hedging / refusing answer",
            "the answer that does not hedge chosen over one that does",
            _contrast(hedges),
        ),
        Bias(
            "question",
            "the answer that asks the user a question back",
            "the answer without a question chosen over one that asks back",
            _contrast(asks_back),
        ),
    )
}
