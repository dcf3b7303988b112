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
_APOSTROPHES: tuple[str, ...] = ("\u2019", "\u2018", "\u02bc")
"""Read as a straight apostrophe by the refusal check."""

MARKS = "\u2019\u2018\u201c\u201d\u2022\u2013\u2014"
"""The non-ASCII punctuation most common in English text (curly quotes, bullet, dashes; 94% of
the non-ASCII characters of HH-RLHF's test files): not word characters, unchanged by NFKC and
case folding, composing with nothing, so `normalise` may blank them and go on by the ASCII path
when nothing else is non-ASCII."""

_MARKS_UTF8 = re.compile(b"|".join(re.escape(mark.encode()) for mark in MARKS))


def _ascii_fold_table() -> bytes:
    """Byte → byte: A-Z lowered, the other ASCII word characters ([0-9a-z_], what `\\w` matches
    in ASCII) kept, every other byte a space."""
    table = bytearray(b" " * 256)
    for byte in b"0123456789_abcdefghijklmnopqrstuvwxyz":
        table[byte] = byte
    for byte in b"ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        table[byte] = byte + 32
    return bytes(table)


_ASCII_FOLD = _ascii_fold_table()


def normalise(text: str) -> str:
    """Text compared loosely: NFKC, case folded, punctuation dropped, whitespace collapsed (the
    runs of word characters, joined by single spaces).

    Text that is ASCII once `MARKS` are blanked (most of it) takes a byte-table path with the
    same result: NFKC changes no ASCII character, case folding ASCII is lowering, `\\w` on ASCII
    is [0-9A-Za-z_], and a blanked mark was a separator already (`tests/ingest/test_checks.py`
    compares the two on random text)."""
    return _normalised_utf8(text).decode("utf-8")


def _normalised_utf8(text: str) -> bytes:
    """`normalise(text)` as UTF-8 (what the checks hash)."""
    raw = text.encode("utf-8")
    if not raw.isascii():
        # ASCII and marks only: NFKC and case folding leave the marks as they are.
        raw = _MARKS_UTF8.sub(b" ", raw)
        if not raw.isascii():
            words = _WORD.findall(unicodedata.normalize("NFKC", text).casefold())
            return " ".join(words).encode("utf-8")
    return b" ".join(raw.translate(_ASCII_FOLD).split())


def _refusal_case(text: str) -> str:
    """Apostrophes straightened, case folded (whitespace as it is)."""
    if not text.isascii():
        for apostrophe in _APOSTROPHES:
            text = text.replace(apostrophe, "'")
    return text.casefold()


_REFUSAL_WORDS: tuple[str, ...] = ("sorry", "cannot", "can't", "able", "won't", "language")
_REFUSAL_WORDS += ("comfortable", "decline")
"""Every phrase holds one of these words, none of which holds whitespace: a response without any
is ruled out before its whitespace is collapsed (most are, by a few scans)."""


def is_refusal(response: str) -> bool:
    cased = _refusal_case(response)
    if not any(word in cased for word in _REFUSAL_WORDS):
        return False
    folded = " ".join(cased.split())
    return any(phrase in folded for phrase in REFUSAL_PHRASES)


def _digest(data: bytes) -> bytes:
    """A 128-bit hash of one text's UTF-8: each text of a pair is hashed once, whatever order its
    keys put it in."""
    return hashlib.blake2b(data, digest_size=16).digest()


def _key(*digests: bytes) -> int:
    """A 64-bit hash of texts in order, from their `_digest`s (fixed length: no separator
    needed)."""
    digest = hashlib.blake2b(b"".join(digests), digest_size=8).digest()
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
        p, c, r = (_digest(t.encode("utf-8")) for t in (prompt, chosen, rejected))
        self.exact.append(_key(p, c, r))
        self.reversed_.append(_key(p, r, c))
        p, c, r = (_digest(_normalised_utf8(t)) for t in (prompt, chosen, rejected))
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
