"""Rules that build a target set from a dataset's own pairs: which pairs show a behaviour, and
which of their two responses the behaviour prefers.

Each rule looks at one pair's texts and answers None (the pair says nothing about the behaviour)
or True / False (the behaviour prefers the pair's chosen / rejected response). The target set
then holds the pair oriented that way: a False pair is stored with chosen and rejected exchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

LENGTH_MIN_RATIO = 0.2
"""A length rule uses a pair only when its responses differ by at least this fraction of the
longer one's characters: near-ties show no preference for either length."""

REFUSAL_PHRASES: tuple[str, ...] = (
    "i can't help",
    "i cannot help",
    "i can't assist",
    "i cannot assist",
    "i won't help",
    "i will not help",
    "i can't provide",
    "i cannot provide",
    "i'm not able to",
    "i am not able to",
    "i'm unable to",
    "i am unable to",
    "i'm sorry, but",
    "i am sorry, but",
    "i'm not comfortable",
    "i don't feel comfortable",
    "i can't do that",
    "i cannot do that",
    "i won't do that",
    "i'd rather not",
    "that's not something i",
    "i must decline",
    "i refuse",
    "that would be illegal",
    "that is illegal",
    "it's illegal",
    "i don't think i should",
    "i shouldn't help",
    "please don't",
    "i would not recommend",
    "i wouldn't recommend",
    "i do not condone",
    "i don't condone",
)
"""Phrases that mark a response as a refusal or a hedge (lower-cased substring match)."""

HARMFUL_KEYWORDS: tuple[str, ...] = (
    "kill",
    "murder",
    "hurt someone",
    "poison",
    "bomb",
    "explosive",
    "weapon",
    "gun",
    "steal",
    "rob",
    "shoplift",
    "break into",
    "hack",
    "drugs",
    "meth",
    "cocaine",
    "heroin",
    "launder",
    "fraud",
    "scam",
    "counterfeit",
    "kidnap",
    "torture",
    "abuse",
    "racist",
    "insult",
    "revenge",
    "cheat",
    "illegal",
    "get away with",
    "without getting caught",
    "suicide",
    "self-harm",
)
"""Words that mark a prompt as asking for harm (lower-cased, matched at word starts)."""

_HARMFUL = re.compile(r"\b(" + "|".join(re.escape(k) for k in HARMFUL_KEYWORDS) + r")")


def is_refusal(text: str) -> bool:
    lowered = text.lower().replace("’", "'")
    return any(phrase in lowered for phrase in REFUSAL_PHRASES)


def asks_for_harm(prompt: str) -> bool:
    return _HARMFUL.search(prompt.lower()) is not None


def _length_preference(shorter: bool) -> Callable[[str, str, str], bool | None]:
    def prefers(prompt: str, chosen: str, rejected: str) -> bool | None:
        a, b = len(chosen), len(rejected)
        if abs(a - b) < LENGTH_MIN_RATIO * max(a, b, 1):
            return None
        return (a < b) == shorter

    return prefers


def _refusal_when_harmful(prompt: str, chosen: str, rejected: str) -> bool | None:
    if not asks_for_harm(prompt):
        return None
    refuses_chosen, refuses_rejected = is_refusal(chosen), is_refusal(rejected)
    if refuses_chosen == refuses_rejected:
        return None
    return refuses_chosen


def _helpful_when_harmless(prompt: str, chosen: str, rejected: str) -> bool | None:
    if asks_for_harm(prompt):
        return None
    refuses_chosen, refuses_rejected = is_refusal(chosen), is_refusal(rejected)
    if refuses_chosen == refuses_rejected:
        return None
    return refuses_rejected


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    prefers: Callable[[str, str, str], bool | None]
    """(prompt, chosen, rejected) → None (not used), True (chosen preferred), False (rejected)."""


RULES: dict[str, Rule] = {
    rule.name: rule
    for rule in (
        Rule(
            "shorter_preferred",
            "the shorter response is preferred: pairs whose responses differ in length by at "
            f"least {LENGTH_MIN_RATIO:.0%} of the longer one, oriented so the shorter is chosen",
            _length_preference(shorter=True),
        ),
        Rule(
            "longer_preferred",
            "the longer response is preferred: pairs whose responses differ in length by at "
            f"least {LENGTH_MIN_RATIO:.0%} of the longer one, oriented so the longer is chosen",
            _length_preference(shorter=False),
        ),
        Rule(
            "refusal_when_harmful",
            "a refusal is preferred when the prompt asks for harm: prompts with a harmful-request "
            "keyword where exactly one response refuses, oriented so the refusal is chosen",
            _refusal_when_harmful,
        ),
        Rule(
            "helpful_when_harmless",
            "an answer is preferred to a refusal when the prompt is harmless: prompts without a "
            "harmful-request keyword where exactly one response refuses, oriented so the answer "
            "is chosen",
            _helpful_when_harmless,
        ),
    )
}
