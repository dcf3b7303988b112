"""Pairs and their review: pages, filters, review states, bulk actions, flags, interactions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from backend.schemas.common import DB_ID_MAX, DbId
from backend.schemas.scores import PairScores

ReviewState = Literal["unreviewed", "kept", "flagged", "swapped"]


class PairPublic(BaseModel):
    id: int
    index: int = Field(
        description="0-based position among the dataset's stored pairs (rows an upload skipped "
        "are not counted)."
    )
    row: int = Field(
        description="The pair's 1-based row in the uploaded file, numbered as upload errors name "
        "rows: the line of a JSONL, CSV or TSV file (a CSV header is line 1), the record's "
        "number in a JSON array, Parquet or Arrow file. Rows an upload skipped keep their "
        "numbers out of the sequence."
    )
    prompt: str
    chosen: str
    rejected: str
    metadata: dict[str, Any]
    state: ReviewState = "unreviewed"
    flagged: bool = Field(description="state == 'flagged' (kept for older clients).")
    note: str | None
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    lengths: dict[str, int] = Field(
        default_factory=dict, description="prompt / chosen / rejected length in characters."
    )
    rank: int | None = Field(None, description="1-based position in this sorted, filtered list.")
    percentiles: dict[str, float] = Field(
        default_factory=dict,
        description="Per score column: the percentage of the job's training pairs with a value "
        "at or below this pair's (from 1,001 stored quantiles, so within 0.1 points).",
    )
    scores: PairScores | None = None


class PairsPage(BaseModel):
    items: list[PairPublic]
    total: int
    total_is_estimate: bool = Field(
        False,
        description="True when `total` is the planner's estimate (a filter matching "
        "more than 10,000 pairs on Postgres).",
    )
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for the next page; null on the last page."
    )


class ScoreRange(BaseModel):
    """`min` ≤ column ≤ `max` (either bound optional)."""

    column: str = Field(max_length=64)
    min: float | None = None
    max: float | None = None


class LengthRange(BaseModel):
    """A length range in characters; `total` is prompt + chosen + rejected."""

    field: Literal["prompt", "chosen", "rejected", "total"]
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)


MetaValue = str | bool | int | float


class PairFilter(BaseModel):
    """Which pairs: one model for the pairs list, the bulk actions and the export. Every given
    condition must hold."""

    job_id: DbId | None = Field(None, description="The audit whose scores the score filters use.")
    split: Literal["train", "val", "all"] = Field(
        "train", description="With `job_id`: the job's training pairs, validation pairs or both."
    )
    q: str | None = Field(
        None,
        max_length=500,
        description="Words that must all occur in the prompt, chosen or rejected text.",
    )
    states: list[ReviewState] | None = Field(None, description="Any of these review states.")
    flagged: bool | None = Field(None, description="Flagged (true) or not (false).")
    scores: list[ScoreRange] = Field(default_factory=list, max_length=32)
    percentiles: list[ScoreRange] = Field(
        default_factory=list,
        max_length=32,
        description="Ranges of a score's percentile among the job's training pairs, 0 to 100.",
    )
    lengths: list[LengthRange] = Field(default_factory=list, max_length=8)
    metadata: dict[str, MetaValue] = Field(
        default_factory=dict, max_length=16, description="Metadata fields equal to these values."
    )
    tags: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="Pairs with any of these exact-check tags (GET /methods/tags lists them).",
    )
    exclude_tags: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="Pairs with none of these tags (the same tags; with job_id, that job's).",
    )


class ReviewUpdate(BaseModel):
    """One pair's whole review state: the state and the note (null clears it)."""

    state: ReviewState
    note: str | None = Field(None, max_length=10_000)


BulkKind = Literal["flag", "keep", "swap", "clear"]


class BulkAction(BaseModel):
    """Set every pair matching `filter` to one state in one transaction. 'clear' returns them to
    unreviewed; notes are kept unless `note` is given."""

    action: BulkKind
    filter: PairFilter = Field(default_factory=PairFilter)
    override_kept: bool = Field(
        False, description="Also change pairs a reviewer marked 'kept' (skipped by default)."
    )
    note: str | None = Field(None, max_length=10_000, description="Set this note on each.")
    dry_run: bool = Field(False, description="Count what would change; write nothing.")


class BulkResult(BaseModel):
    matched: int = Field(description="Pairs matching the filter.")
    changed: int = Field(description="Pairs whose state changed (or would, in a dry run).")
    protected: int = Field(0, description="Matching pairs left alone because they are kept.")
    action_id: int | None = Field(None, description="The history entry (null in a dry run).")
    dry_run: bool = False


class ReviewActionPublic(BaseModel):
    id: int
    kind: str
    state: str | None
    description: str
    count: int
    user: str | None = None
    undoes: int | None
    created_at: datetime
    undone_at: datetime | None


class ReviewEventPublic(BaseModel):
    action_id: int
    kind: str
    description: str
    user: str | None
    at: datetime
    old_state: str
    old_note: str | None
    new_state: str
    new_note: str | None
    undone: bool


class FlagUpdate(BaseModel):
    flagged: bool
    note: str | None = Field(None, max_length=10_000)


class FlagTop(BaseModel):
    """Flag pairs of a finished audit in one call: the top fraction by a score (`rule: "top"`),
    or the interaction-aware greedy selection of a `group` audit (`rule: "greedy"`)."""

    job_id: DbId
    rule: Literal["top", "greedy"] = Field(
        "top",
        description=(
            "'top': the `top_fraction` highest by `method`. 'greedy': the first `budget` pairs "
            "of the job's greedy group selection (the audit must have run method 'group')."
        ),
    )
    top_fraction: float = Field(0.1, gt=0, le=1, description="Fraction of scored pairs to flag.")
    method: str = Field(
        "harm", description="Score column to rank by (default: the job's default `harm`)."
    )
    budget: float | None = Field(
        None,
        gt=0,
        le=DB_ID_MAX,
        description=(
            "rule 'greedy': pairs to flag, a fraction of the scored pairs (0 < b < 1) or a "
            "count (b ≥ 1); default the audit's prune_budget."
        ),
    )
    override_kept: bool = Field(
        False, description="Also flag pairs a reviewer marked 'kept' (left alone by default)."
    )


class Interaction(BaseModel):
    """One partner of a pair in a `group` audit: κ > 0 redundant (removing both lowers the
    validation loss by less than the two alone), κ < 0 complementary (by more)."""

    pair_id: int
    index: int = Field(description="The partner's 0-based position among the stored pairs.")
    row: int = Field(description="The partner's 1-based row in the uploaded file.")
    prompt: str
    kappa: float
    kind: Literal["redundant", "complementary"]
    group_order: float | None = None


class Interactions(BaseModel):
    pair_id: int
    job_id: int
    items: list[Interaction]


class FlagCount(BaseModel):
    flagged: int = 0
    unflagged: int = 0
    protected: int = Field(0, description="Matching pairs left alone because they are kept.")
