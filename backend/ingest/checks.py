"""Exact data checks on a file's pairs, computed while an upload is read (no model needed).

`UploadChecks` is fed every pair in file order and keeps its row and four 8-byte hashes only (in
`array`s: 40 bytes a pair); `results` then builds two dicts of up to one entry per pair (about
100 bytes each), so a million-pair upload peaks near 250 MB for the checks. The checks (the tags
of `worker.influence.tags`):

- `identical`: chosen == rejected, exactly.
- `empty_response`: chosen or rejected is empty or whitespace.
- `duplicate`: (prompt, chosen, rejected) equal to an earlier pair's; the first is not tagged.
- `contradiction`: another pair has (prompt, rejected, chosen) - the same pair, label reversed.
- `near_contradiction`: the same after `normalise` (NFKC, case folded, punctuation dropped,
  whitespace collapsed) but not exactly: normalised text, not MinHash, so a match is exact on
  the normalised strings and there are no false positives by construction (beyond a 64-bit hash
  collision).
- `refusal`: the chosen response holds one of `REFUSAL_PHRASES` (compared normalised).

`ngram_overlap` is the contamination check against an evaluation set's prompts.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

REFUSAL_PHRASES: tuple[str, ...] = (
    "i'm sorry, but i can't",
    "i'm sorry, but i cannot",
    "i am sorry, but i cannot",
    "i'm sorry, i can't",
    "i'm sorry, i cannot",
    "i cannot help with",
    "i can't help with",
    "i can't assist with",
    "i cannot assist with",
    "i'm unable to help",
    "i am unable to help",
    "i'm not able to help",
    "i cannot provide",
    "i can't provide",
    "i won't be able to help",
    "as an ai language model",
    "as an ai, i cannot",
    "as an ai, i can't",
    "i'm not comfortable",
    "i don't feel comfortable",
    "i must decline",
    "i cannot fulfill",
    "i can't fulfill",
)
"""Phrases that mark a refusal, lower case, straight apostrophes (matched in the chosen response
after its apostrophes are straightened and its case folded)."""

NGRAM = 13
"""Words per n-gram in the contamination check (as GPT-3's and Skywork's decontamination)."""

_WORD = re.compile(r"\w+")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


def normalise(text: str) -> str:
    """Text compared loosely: NFKC, case folded, punctuation dropped, whitespace collapsed (the
    runs of word characters, joined by single spaces)."""
    return " ".join(_WORD.findall(unicodedata.normalize("NFKC", text).casefold()))


def _refusal_text(text: str) -> str:
    return " ".join(text.translate(_APOSTROPHES).casefold().split())


_REFUSAL_WORDS: tuple[str, ...] = ("sorry", "cannot", "can't", "unable", "not able", "won't")
_REFUSAL_WORDS += ("as an ai", "comfortable", "decline")


def is_refusal(response: str) -> bool:
    folded = _refusal_text(response)
    # Every phrase holds one of these words: most responses are ruled out by a few scans.
    if not any(word in folded for word in _REFUSAL_WORDS):
        return False
    return any(phrase in folded for phrase in REFUSAL_PHRASES)


def _key(*texts: str) -> int:
    """A 64-bit hash of the texts in order (NUL never occurs in stored text: a safe separator)."""
    digest = hashlib.blake2b("\x00".join(texts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


@dataclass
class Tagged:
    """One pair's tag: its 0-based position among the upload's pairs and the tag's number."""

    index: int
    tag: str
    value: float | None = None


@dataclass
class UploadChecks:
    """Feed pairs with `add` in file order; `results` then yields every tag found."""

    rows: array = field(default_factory=lambda: array("q"))
    exact: array = field(default_factory=lambda: array("q"))
    reversed_: array = field(default_factory=lambda: array("q"))
    loose: array = field(default_factory=lambda: array("q"))
    loose_reversed: array = field(default_factory=lambda: array("q"))
    immediate: list[Tagged] = field(default_factory=list)

    def add(self, row: int, prompt: str, chosen: str, rejected: str) -> None:
        """One pair: `row` its file row (reported as the value of duplicates)."""
        index = len(self.rows)
        self.rows.append(row)
        if chosen == rejected:
            self.immediate.append(Tagged(index, "identical"))
        if not chosen.strip() or not rejected.strip():
            self.immediate.append(Tagged(index, "empty_response"))
        if is_refusal(chosen):
            self.immediate.append(Tagged(index, "refusal"))
        self.exact.append(_key(prompt, chosen, rejected))
        self.reversed_.append(_key(prompt, rejected, chosen))
        p, c, r = normalise(prompt), normalise(chosen), normalise(rejected)
        self.loose.append(_key(p, c, r))
        self.loose_reversed.append(_key(p, r, c))

    def results(self) -> Iterator[Tagged]:
        """Every tag, the per-pair ones first, then duplicates and contradictions."""
        yield from self.immediate
        first: dict[int, int] = {}
        for index, key in enumerate(self.exact):
            if key in first:
                yield Tagged(index, "duplicate", float(self.rows[first[key]]))
            else:
                first[key] = index
        yield from self._reversed(first, self.exact, self.reversed_, "contradiction")
        loose_first: dict[int, int] = {}
        for index, key in enumerate(self.loose):
            loose_first.setdefault(key, index)
        yield from self._reversed(
            loose_first, self.loose, self.loose_reversed, "near_contradiction", skip=first
        )

    def _reversed(
        self,
        first: dict[int, int],
        keys: array,
        reversed_keys: array,
        tag: str,
        skip: dict[int, int] | None = None,
    ) -> Iterator[Tagged]:
        """Pairs whose reversed key is some pair's key (not their own: identical responses);
        with `skip`, not those whose exact reversal exists (tagged as contradictions)."""
        for index, (key, back) in enumerate(zip(keys, reversed_keys, strict=True)):
            if back == key or back not in first:
                continue
            if skip is not None and self.reversed_[index] in skip:
                continue
            yield Tagged(index, tag, float(self.rows[first[back]]))


def _ngrams(text: str, n: int) -> set[str]:
    words = normalise(text).split()
    if not words:
        return set()
    if len(words) < n:
        return {" ".join(words)}
    return {" ".join(words[k : k + n]) for k in range(len(words) - n + 1)}


def evaluation_ngrams(prompts: Iterable[str], n: int = NGRAM) -> set[str]:
    """The n-grams of an evaluation set's prompts (a prompt shorter than n words: itself)."""
    grams: set[str] = set()
    for prompt in prompts:
        grams |= _ngrams(prompt, n)
    return grams


def ngram_overlap(prompt: str, grams: set[str], n: int = NGRAM) -> float:
    """The share of the prompt's n-grams found in `grams` (0 when it has none)."""
    own = _ngrams(prompt, n)
    if not own:
        return 0.0
    return len(own & grams) / len(own)
