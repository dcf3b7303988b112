"""The upload-time exact checks (`backend.ingest.checks`): each plants 25 true cases among 600
random pairs and must find exactly them."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from backend.ingest.checks import (
    REFUSAL_PHRASES,
    UploadChecks,
    evaluation_ngrams,
    ngram_overlap,
    normalise,
)

N, PLANTED = 600, 25
WORDS = [f"w{k}" for k in range(5000)]

Pair = tuple[str, str, str]


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _base(seed: int) -> list[Pair]:
    rng = random.Random(seed)
    return [(_text(rng, 20), _text(rng, 15), _text(rng, 15)) for _ in range(N)]


def _tags(pairs: list[Pair], tag: str) -> dict[int, float | None]:
    checks = UploadChecks()
    for k, (p, c, r) in enumerate(pairs):
        checks.add(k + 1, p, c, r)
    return {t.index: t.value for t in checks.results() if t.tag == tag}


def _plant(pairs: list[Pair], seed: int, make: Callable[[random.Random, Pair], Pair]) -> list[int]:
    """Replace PLANTED random positions (after the first 50) with make(rng, pair)."""
    rng = random.Random(seed)
    where = sorted(rng.sample(range(50, N), PLANTED))
    for k in where:
        pairs[k] = make(rng, pairs[k])
    return where


def test_random_pairs_carry_no_tag() -> None:
    checks = UploadChecks()
    for k, (p, c, r) in enumerate(_base(0)):
        checks.add(k + 1, p, c, r)
    assert list(checks.results()) == []


def test_identical_responses() -> None:
    pairs = _base(1)
    planted = _plant(pairs, 1, lambda rng, p: (p[0], p[1], p[1]))
    assert sorted(_tags(pairs, "identical")) == planted


@pytest.mark.parametrize("empty", ["", "   ", "\n\t"])
def test_empty_responses(empty: str) -> None:
    pairs = _base(2)
    planted = _plant(
        pairs, 2, lambda rng, p: (p[0], empty, p[2]) if rng.random() < 0.5 else (p[0], p[1], empty)
    )
    assert sorted(_tags(pairs, "empty_response")) == planted


def test_exact_duplicates_tag_the_repeats_with_the_first_row() -> None:
    pairs = _base(3)
    planted = _plant(pairs, 3, lambda rng, p: pairs[rng.randrange(0, 50)])
    found = _tags(pairs, "duplicate")
    assert sorted(found) == planted
    for k in planted:
        assert pairs[int(found[k] or 0) - 1] == pairs[k]  # the value is the first one's row


def test_a_one_character_difference_is_no_duplicate() -> None:
    pairs = _base(4)
    pairs[100] = (pairs[10][0], pairs[10][1] + ".", pairs[10][2])
    assert _tags(pairs, "duplicate") == {}


def test_contradictions_tag_both_pairs() -> None:
    pairs = _base(5)
    sources: list[int] = []

    def reverse(rng: random.Random, p: Pair) -> Pair:
        k = len(sources)  # pairs 0..24 are the originals, each reversed once
        sources.append(k)
        return (pairs[k][0], pairs[k][2], pairs[k][1])

    planted = _plant(pairs, 5, reverse)
    found = _tags(pairs, "contradiction")
    assert sorted(found) == sorted(planted + sources)
    assert _tags(pairs, "near_contradiction") == {}


def test_near_contradictions_by_normalised_text() -> None:
    pairs = _base(6)
    sources: list[int] = []

    def reverse_loosely(rng: random.Random, p: Pair) -> Pair:
        k = len(sources)
        sources.append(k)
        prompt, chosen, rejected = pairs[k]
        return (prompt.upper() + "?", "  " + rejected.replace(" ", ",  "), chosen + "!")

    planted = _plant(pairs, 6, reverse_loosely)
    assert sorted(_tags(pairs, "near_contradiction")) == sorted(planted + sources)
    assert _tags(pairs, "contradiction") == {}


def test_refusals_in_the_chosen_response_only() -> None:
    pairs = _base(7)

    def refuse(rng: random.Random, p: Pair) -> Pair:
        phrase = rng.choice(REFUSAL_PHRASES).replace("'", "\u2019").capitalize()
        return (p[0], f"{p[1]}. {phrase} that request.", p[2])

    planted = _plant(pairs, 7, refuse)
    pairs[10] = (pairs[10][0], pairs[10][1], "I'm sorry, but I can't do that.")  # rejected
    pairs[11] = (pairs[11][0], "I can help with that, sure.", pairs[11][2])
    assert sorted(_tags(pairs, "refusal")) == planted


def test_contamination_by_13_grams() -> None:
    rng = random.Random(1008)
    evaluation = [_text(rng, 40) for _ in range(100)]
    pairs = _base(8)
    # A 13-word window of an evaluation prompt inside the training prompt, case and spacing
    # changed; 12 shared words are not enough.
    planted = _plant(
        pairs,
        8,
        lambda r, p: (
            p[0] + " " + " ".join(r.choice(evaluation).split()[5:18]).upper() + ".",
            p[1],
            p[2],
        ),
    )
    pairs[20] = (pairs[20][0] + " " + " ".join(evaluation[0].split()[:12]), *pairs[20][1:])
    grams = evaluation_ngrams(evaluation)
    found = [k for k, (p, _, _) in enumerate(pairs) if ngram_overlap(p, grams) > 0]
    assert found == planted
    # A short prompt matches a short evaluation prompt as a whole.
    assert ngram_overlap("What is 2 + 2?", evaluation_ngrams(["what is 2 2"])) == 1.0


def test_normalise() -> None:
    assert normalise("  Hello,\tWORLD!! ") == "hello world"
    assert normalise("ﬁne") == "fine"  # NFKC


def test_normalise_is_the_documented_definition() -> None:
    """Runs of word characters joined by spaces == punctuation replaced by spaces, whitespace
    collapsed (after NFKC and case folding), on random text from across Unicode."""
    import re
    import unicodedata

    rng = random.Random(9)
    pool = [chr(c) for c in range(0x3000)] + ["\U0001f600", "\u00a0", "\u2028", "_", "\x1c"]
    for _ in range(5000):
        text = "".join(rng.choice(pool) for _ in range(rng.randrange(0, 30)))
        folded = unicodedata.normalize("NFKC", text).casefold()
        expected = re.sub(r"\s+", " ", re.sub(r"[^\w\s]+", " ", folded)).strip()
        assert normalise(text) == expected, repr(text)


def test_the_ascii_path_is_the_documented_definition() -> None:
    """Text of ASCII and the common marks (the byte-table path), and the same with one other
    character (the full path): both equal the definition. Each mark is a separator that NFKC and
    case folding leave alone, which is what lets the fast path blank it."""
    import re
    import unicodedata

    from backend.ingest.checks import MARKS

    for mark in MARKS:
        assert not re.fullmatch(r"\w", mark)
        assert unicodedata.normalize("NFKC", mark).casefold() == mark
    rng = random.Random(10)
    pool = [chr(c) for c in range(128)] + list(MARKS) * 8
    for k in range(5000):
        text = "".join(rng.choice(pool) for _ in range(rng.randrange(0, 40)))
        if k % 3 == 0:
            text += rng.choice(["é", "ﬁ", "Ⅻ", "\u00a0", "İ", "ß", "\u0301", "①"])
        folded = unicodedata.normalize("NFKC", text).casefold()
        expected = re.sub(r"\s+", " ", re.sub(r"[^\w\s]+", " ", folded)).strip()
        assert normalise(text) == expected, repr(text)


def test_every_refusal_phrase_passes_the_quick_filter() -> None:
    from backend.ingest.checks import _REFUSAL_WORDS

    assert all(any(word in phrase for word in _REFUSAL_WORDS) for phrase in REFUSAL_PHRASES)
    # The filter runs before whitespace is collapsed: a word spanning a space could miss.
    assert not any(any(c.isspace() for c in word) for word in _REFUSAL_WORDS)
