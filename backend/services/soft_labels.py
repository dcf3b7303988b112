"""Soft labels for the export: a per-pair confidence that the label is right, from one scoring
job's columns, usable as label smoothing or a margin in DPO / reward-model training.

For each pair the first source with a value is used (its name goes in `confidence_source`):

1. `rm_mean` - the outside reward models' mean margin (an audit naming `reward_models`):
   confidence = σ(mean margin), margin = the mean margin.
2. `judge_p_chosen` - an LLM judge job's probability that chosen is better, both orders
   averaged: confidence = p, margin = logit(p) (clipped to ±`MAX_MARGIN`).
3. `oof_margin` - the audit's cross-fitted margin (models that never saw the pair):
   confidence = σ(margin).
4. `margin` - the audit's own reward model's margin on the pair (it trained on it, so it is
   over-confident on memorised pairs): confidence = σ(margin).

Columns written: `confidence` (P(label right), 0 to 1), `label_smoothing` (1 − confidence,
capped at 0.5: a DPO label-smoothing ε; a pair the evidence reverses is better swapped or
dropped than smoothed past 0.5), `margin` (the source's margin, for a reward trainer's
`margin` column) and `confidence_source`. A pair without any source's value (the audit's
validation pairs, say) gets nulls. A swapped pair, written with chosen and rejected
exchanged, gets 1 − confidence and −margin. A pair is *ambiguous* when the job tagged it
`ambiguous` (worker/influence/tags.py: its reward models split, rm_ambiguous = 1, or a judge job's
two orders disagree), the one definition the pairs list's `tag=ambiguous` uses too; a `band` > 0
(0 by default) also counts a pair whose confidence is within `band` of 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import and_, exists
from sqlalchemy.orm import Session, aliased

from backend.models import Dataset, Pair, PairTag, Score
from backend.services.query import scored_job
from worker.influence.methods import SCORE_COLUMNS

AmbiguousMode = Literal["include", "exclude", "only"]

SOFT_COLUMNS: tuple[str, ...] = ("confidence", "label_smoothing", "margin", "confidence_source")
"""The columns a soft-label export adds to each record, in order."""

SOURCES: tuple[tuple[str, Literal["margin", "probability"]], ...] = (
    ("rm_mean", "margin"),
    ("judge_p_chosen", "probability"),
    ("oof_margin", "margin"),
    ("margin", "margin"),
)
"""Where a confidence comes from, in order of preference: a score column and what it holds."""

AMBIGUOUS_TAG = "ambiguous"
MAX_MARGIN = 10.0
DEFAULT_BAND = 0.0


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return max(-MAX_MARGIN, min(MAX_MARGIN, math.log(p / (1 - p))))


@dataclass
class SoftLabels:
    """The soft labels of one scoring job, and which pairs an export keeps by ambiguity."""

    job_id: int
    ambiguous: AmbiguousMode = "include"
    band: float = DEFAULT_BAND

    def __post_init__(self) -> None:
        self.sources = [(c, kind) for c, kind in SOURCES if c in SCORE_COLUMNS]
        self.scores: Any = aliased(Score, name="soft_scores")

    def columns(self) -> list[Any]:
        """The score columns to select (after the export's own), from `self.scores`, then
        whether the job tagged the pair `ambiguous` (an indexed lookup by pair id)."""
        tagged = exists().where(
            and_(
                PairTag.pair_id == Pair.id,
                PairTag.tag == AMBIGUOUS_TAG,
                PairTag.job_id == self.job_id,
            )
        )
        return [getattr(self.scores, c) for c, _ in self.sources] + [tagged]

    def values(self, raw: Sequence[Any], swapped: bool) -> tuple[dict[str, Any], bool]:
        """(the soft-label columns, whether the pair is ambiguous) from `columns()`'s values."""
        out: dict[str, Any] = dict.fromkeys(SOFT_COLUMNS)
        split = bool(raw[len(self.sources)])
        for (name, kind), value in zip(self.sources, raw, strict=False):
            if value is None or not math.isfinite(value):
                continue
            if kind == "probability":
                confidence, margin = float(value), _logit(float(value))
            else:
                confidence, margin = _sigmoid(float(value)), float(value)
            if swapped:
                confidence, margin = 1.0 - confidence, -margin
            out.update(
                confidence=confidence,
                label_smoothing=min(0.5, 1.0 - confidence),
                margin=margin,
                confidence_source=name,
            )
            return out, split or abs(confidence - 0.5) < self.band
        return out, split

    def keeps(self, ambiguous: bool) -> bool:
        if self.ambiguous == "only":
            return ambiguous
        return self.ambiguous == "include" or not ambiguous


def soft_labels(
    session: Session, dataset: Dataset, job_id: int, ambiguous: AmbiguousMode, band: float
) -> SoftLabels:
    """The soft labels of `job_id`, a succeeded scoring job of the dataset (NotFound or
    ReviewError otherwise)."""
    scored_job(session, dataset, job_id)
    return SoftLabels(job_id, ambiguous, band)
