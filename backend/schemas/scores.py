"""Score columns and methods as the API shows them, built from the engine's registry.

`PairScores` (a pair's scores) and `ScoreColumn` (an enum of the column names, with each column's
label, unit and orientation beside it in the OpenAPI document) are derived from
worker/influence/methods.py, so a method added there needs no edit here.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, create_model
from pydantic_core import CoreSchema

from worker.influence.methods import SCORE_COLUMN_SPECS, ColumnSpec, MethodName


class _ScoreColumnBase(StrEnum):
    """A score column's name (a str enum; its members are made from the registry)."""


def score_column_enum(columns: Sequence[ColumnSpec] = SCORE_COLUMN_SPECS) -> type[Enum]:
    """`ScoreColumn`: a str enum of the columns' names, in table order. Its JSON schema carries
    `x-enum-labels`, `x-enum-units`, `x-enum-orientations`, `x-enum-descriptions` (what a high
    value means), `x-enum-ranked` and `x-enum-shown`, parallel to `enum`, for clients to label
    and list the columns without a copy of them."""
    enum: Any = _ScoreColumnBase("ScoreColumn", [(c.name, c.name) for c in columns])  # type: ignore[call-arg]
    enum.__doc__ = "A per-pair score column (worker/influence/methods.py)."
    extra = {
        "x-enum-labels": [c.label for c in columns],
        "x-enum-units": [c.unit for c in columns],
        "x-enum-orientations": [c.orientation for c in columns],
        "x-enum-descriptions": [c.higher for c in columns],
        "x-enum-ranked": [c.ranked for c in columns],
        "x-enum-shown": [c.shown for c in columns],
    }

    def json_schema(
        cls: type, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        schema = handler(core_schema)
        handler.resolve_ref_schema(schema).update(extra)
        return schema

    enum.__get_pydantic_json_schema__ = classmethod(json_schema)
    return enum


def pair_scores_model(columns: Sequence[ColumnSpec] = SCORE_COLUMN_SPECS) -> type[BaseModel]:
    """`PairScores`: the split, then one optional float per column, in table order."""
    fields: dict[str, Any] = {
        c.name: (float | None, Field(None, description=f"{c.label} ({c.unit}); high: {c.higher}."))
        for c in columns
    }
    return create_model(  # type: ignore[call-overload,no-any-return]
        "PairScores", __config__=ConfigDict(from_attributes=True), split=(str, ...), **fields
    )


if TYPE_CHECKING:
    # Built at import, so type checkers see their bases: a column name, a model.
    ScoreColumn = str
    PairScores = BaseModel
else:
    ScoreColumn = score_column_enum()
    """The registry's score columns as an enum (the OpenAPI's `ScoreColumn`)."""

    PairScores = pair_scores_model()
    """A pair's scores under one audit: `split`, then every registry column (null when not
    computed)."""


class ColumnInfo(BaseModel):
    """One score column of the registry: how to label it and which end is harmful."""

    model_config = ConfigDict(from_attributes=True)
    name: ScoreColumn
    label: str
    unit: str
    orientation: str = Field(
        description="higher_harmful, lower_harmful or unsigned: which end is the harmful one."
    )
    higher: str = Field(description="What a high value means, in a few words.")
    ranked: bool = Field(description="Offered as a ranking and filter column.")
    shown: bool = Field(description="Listed among a pair's scores (false: repeats another).")


class MethodInfo(BaseModel):
    """One score method of the registry (worker/influence/methods.py)."""

    model_config = ConfigDict(from_attributes=True)
    name: MethodName
    label: str
    description: str
    orientation: str = Field(description="What a high harm means.")
    harm_column: ScoreColumn
    columns: list[ScoreColumn] = Field(description="Every score column the method fills.")
    needs_gradients: bool
    needs_validation: bool
    needs_curvature: bool
    needs_checkpoints: bool
    lora_only: bool


class Histogram(BaseModel):
    """Counts of one score column over a job's training pairs, in equal-width bins."""

    column: str
    n: int
    edges: list[float] = Field(description="len(counts) + 1 bin edges, ascending.")
    counts: list[int]
    quantiles: dict[str, float] = Field(description="p10, p50, p90 of the column.")
    estimated: bool = Field(
        False,
        description="True above 20,000 scores: counts from 1,001 stored quantiles (each bin "
        "within 0.1% of n of the exact count).",
    )
