"""Reading the judge's answer: which position it prefers ("A" or "B"), and how sure it was where
the server returned log-probabilities. An answer that names neither, or both, is malformed."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# A leading letter counts only where it cannot be the article "A": alone, before punctuation,
# or before "is"/"wins"/"because" ("A.", "**B**", "(A)", "B is better", "Response A").
_LEADING = re.compile(
    r"^[\s\"'*(\[]*(?:(?:response|answer|assistant|output)\s*:?\s*)?([AB])"
    r"(?:\s*$|[\s\"'*).,:;!\]]*$|[\"'*).,:;!\]]|\s+(?:is|wins|because)\b)",
    re.IGNORECASE,
)
# Elsewhere only a named position: "Response B is better", "the answer is: A".
_NAMED = re.compile(r"\b(?:response|answer is|assistant|output)\s*:?\s*([AB])\b", re.IGNORECASE)


class MalformedAnswer(ValueError):
    """The answer names no position, or both; the pair's order is recorded as a failure."""


@dataclass(frozen=True)
class Verdict:
    choice: str
    """'A' (the response shown first) or 'B'."""
    p_a: float | None
    """P(A) / (P(A) + P(B)) from the first answer token's log-probabilities; None without them."""


def choice_of(content: str) -> str:
    """'A' or 'B' from an answer: a leading letter ("A", "B.", "**B**", "Response A") wins;
    otherwise exactly one of the two named somewhere ("... so Response B is better")."""
    match = _LEADING.match(content)
    if match:
        return match.group(1).upper()
    found = {m.group(1).upper() for m in _NAMED.finditer(content)}
    if len(found) == 1:
        return found.pop()
    snippet = content.strip()[:80] or "(empty)"
    if not found:
        raise MalformedAnswer(f"the answer names neither A nor B: {snippet!r}")
    raise MalformedAnswer(f"the answer names both A and B: {snippet!r}")


def p_first(top: list[dict[str, float | str]] | None) -> float | None:
    """P(A) / (P(A) + P(B)) among the first token's top alternatives (tokens "A"/" A" and
    "B"/" B" summed), or None when neither letter is among them."""
    if not top:
        return None
    mass = {"A": 0.0, "B": 0.0}
    for entry in top:
        token = str(entry.get("token", "")).strip().upper()
        logprob = entry.get("logprob")
        if token in mass and isinstance(logprob, (int, float)) and math.isfinite(logprob):
            mass[token] += math.exp(float(logprob))
    total = mass["A"] + mass["B"]
    return mass["A"] / total if total > 0 else None


def parse_answer(content: str | None, top: list[dict[str, float | str]] | None) -> Verdict:
    """The verdict of one answer; MalformedAnswer if it cannot be read.

    The text decides where it names a position. Where it does not ("You are right, ...") but the
    first token's alternatives hold A or B, the likelier letter decides: the model's own
    preference between the two letters, as log-probability judges read it. Without either the
    answer is malformed."""
    p_a = p_first(top)
    try:
        if content is None:
            raise MalformedAnswer("the server returned no message content")
        return Verdict(choice_of(content), p_a)
    except MalformedAnswer:
        if p_a is None or p_a == 0.5:
            raise
        return Verdict("A" if p_a > 0.5 else "B", p_a)
