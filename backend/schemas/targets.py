"""Target sets: a small set of pairs showing the behaviour a user wants, built from reviewed
pairs, by a rule over a dataset's pairs, from another dataset or from pairs in the request."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field

from backend.schemas.common import DbId

TARGET_MIN_PAIRS = 20
TARGET_MAX_PAIRS = 500
"""A target set holds 20–500 pairs: fewer give a noisy target gradient, more are a dataset."""

TargetRule = Literal[
    "shorter_preferred", "longer_preferred", "refusal_when_harmful", "helpful_when_harmless"
]


class TargetPairIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(max_length=100_000)
    chosen: str = Field(min_length=1, max_length=100_000)
    rejected: str = Field(min_length=1, max_length=100_000)


class FromReviewed(BaseModel):
    """The dataset's reviewed pairs: kept ones as they are, swapped ones with chosen and
    rejected exchanged (flagged and unreviewed pairs are left out)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["reviewed"]


class FromRule(BaseModel):
    """The dataset's own pairs that a rule selects, oriented as the rule prefers; a seeded
    sample of `limit` when more qualify (see README, 'Targeted audits', for each rule)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["rule"]
    rule: TargetRule
    limit: int = Field(
        200, ge=TARGET_MIN_PAIRS, le=TARGET_MAX_PAIRS, description="Pairs to keep at most."
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of the sample.")


class FromDataset(BaseModel):
    """Every pair of another dataset you can read (upload it first), as labelled."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["dataset"]
    dataset_id: DbId


class FromPairs(BaseModel):
    """Pairs given in the request, as labelled."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["pairs"]
    pairs: list[TargetPairIn] = Field(min_length=TARGET_MIN_PAIRS, max_length=TARGET_MAX_PAIRS)


TargetSource = Annotated[FromReviewed | FromRule | FromDataset | FromPairs, Discriminator("kind")]


class TargetSetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field("", max_length=256, description="Empty: named after its source.")
    source: TargetSource


class TargetPairPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    position: int
    pair_id: int | None = Field(description="The dataset pair it came from, if any.")
    prompt: str
    chosen: str
    rejected: str


class TargetSetPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    dataset_id: int
    name: str
    source: str = Field(
        description="'reviewed', 'rule:<rule>', 'dataset:<id>' or 'pairs': how it was built."
    )
    description: str
    n_pairs: int
    created_at: datetime


class TargetSetDetail(TargetSetPublic):
    sample: list[TargetPairPublic] = Field(description="The first pairs, in the set's order.")


class TargetSetsPage(BaseModel):
    items: list[TargetSetPublic]
    total: int


class RankedPair(BaseModel):
    pair_id: int
    rank: int = Field(description="1-based rank by the job's column, most harmful first.")
    harm: float | None


class TargetComparison(BaseModel):
    """Two jobs' rankings of the same dataset side by side."""

    column: str
    k: int
    job_a: int
    job_b: int
    target_a: str | None = Field(description="Job A's target set; None if it had none.")
    target_b: str | None
    overlap: int = Field(description="Pairs in both top-k lists.")
    jaccard: float
    spearman: float | None = Field(
        description="Rank correlation of the two columns over every training pair both scored."
    )
    top_a: list[RankedPair]
    top_b: list[RankedPair]
    scatter: list[tuple[float, float]] = Field(
        description="(A, B) of up to 2,000 pairs both scored, evenly sampled by pair id."
    )
