"""The tag registry: every exact data check a pair can be tagged by, written once.

A tag is a fact about one pair (identical responses, an empty response, a duplicate, a label
reversed elsewhere in the file, ...), computed at upload (`backend.ingest.checks`), on request
against an evaluation set (contamination) or by an audit that has the tokenizer
(`worker.influence.checks`), or by the outside evidence of a job (`ambiguous`: an audit's reward
models or a judge job split on the pair). The table `pair_tags` stores them, the API lists them
(`GET /methods/tags`) with their counts in a dataset's summary, and the pairs list, the bulk
actions and the export filter by them (`tag=`). A tag's optional number (`value`) is described
by `value_label`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TagStage = Literal["upload", "audit", "evaluation"]


@dataclass(frozen=True)
class TagSpec:
    """One check: its name (the `tag=` value), a short label, what it means, when it is computed
    and, when the tag carries a number, what that number is."""

    name: str
    label: str
    description: str
    stage: TagStage
    value_label: str | None = None


TAG_SPECS: tuple[TagSpec, ...] = (
    TagSpec(
        "identical",
        "identical responses",
        "The chosen and rejected responses are the same text: the pair carries no preference "
        "(its Bradley-Terry loss is ln 2 and its gradient zero, whatever its label).",
        "upload",
    ),
    TagSpec(
        "empty_response",
        "empty response",
        "The chosen or the rejected response is empty or only whitespace (HH-RLHF's own files "
        "have such pairs: the transcripts end where they stop sharing text).",
        "upload",
    ),
    TagSpec(
        "duplicate",
        "exact duplicate",
        "The same prompt, chosen and rejected texts as an earlier pair of the file (the first "
        "occurrence is not tagged, so flagging the tag keeps one copy).",
        "upload",
        value_label="file row of the first occurrence",
    ),
    TagSpec(
        "contradiction",
        "label reversed elsewhere",
        "Another pair of the file has the same prompt and the same two responses with chosen "
        "and rejected exchanged: one of the two labels is wrong. Both pairs are tagged.",
        "upload",
        value_label="file row of the first reversed pair",
    ),
    TagSpec(
        "near_contradiction",
        "near-duplicate, opposite preference",
        "Another pair has the same prompt and responses after normalisation (Unicode NFKC, case "
        "folded, punctuation dropped, whitespace collapsed) with chosen and rejected "
        "exchanged, but the texts differ exactly (those are `contradiction`).",
        "upload",
        value_label="file row of the first reversed pair",
    ),
    TagSpec(
        "refusal",
        "refusal in the chosen response",
        "The chosen response contains a refusal phrase of a fixed list ('I'm sorry, but I "
        "can't', 'As an AI language model', ...): in a helpful-only set a refusal is rarely "
        "the better answer.",
        "upload",
    ),
    TagSpec(
        "contamination",
        "overlaps the evaluation set",
        "The prompt shares a 13-word n-gram (after normalisation; a shorter prompt: the whole "
        "prompt) with a prompt of the evaluation dataset it was checked against.",
        "evaluation",
        value_label="share of the prompt's n-grams found in the evaluation set",
    ),
    TagSpec(
        "truncated_identical",
        "identical after truncation",
        "Under the audit's tokenizer and max_length (left truncation, as the engine encodes) "
        "the chosen and rejected token sequences are the same: training cannot see the "
        "difference. Per audit job.",
        "audit",
        value_label="tokens in which chosen and rejected differ before truncation",
    ),
    TagSpec(
        "ambiguous",
        "ambiguous (the evidence splits)",
        "The outside evidence of one job is split on the pair. An audit naming two or more "
        "reward models: the models disagree in sign (some prefer chosen, some rejected) or "
        "agree in sign with |mean margin| < spread (one model's large margin carries the "
        "vote), exactly its column rm_ambiguous = 1. A judge job: both orders answered and "
        "the two verdicts pick different responses (the judge follows the position, not the "
        "texts). Per job; the soft-label export's ambiguous file is these pairs.",
        "audit",
    ),
)

TAGS: dict[str, TagSpec] = {spec.name: spec for spec in TAG_SPECS}
TAG_NAMES: tuple[str, ...] = tuple(TAGS)
UPLOAD_TAGS: tuple[str, ...] = tuple(s.name for s in TAG_SPECS if s.stage == "upload")
