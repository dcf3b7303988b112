"""The score methods an audit can compute and the columns they fill: the engine's registry."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from backend.deps import get_current_user
from backend.schemas import ColumnInfo, MethodInfo, TagInfo
from worker.influence.methods import METHODS, SCORE_COLUMN_SPECS
from worker.influence.tags import TAG_SPECS

# Signed-in users only, like every other route but /health.
router = APIRouter(tags=["methods"], dependencies=[Depends(get_current_user)])


@router.get("/methods", response_model=list[MethodInfo])
def list_methods() -> list[MethodInfo]:
    """Every method a job's `methods` can name, in the registry's order: its label, what it
    computes, what a high harm means, the columns it fills and what it needs."""
    return [MethodInfo.model_validate(spec) for spec in METHODS.values()]


@router.get("/methods/columns", response_model=list[ColumnInfo])
def list_score_columns() -> list[ColumnInfo]:
    """Every per-pair score column, in table order: its label, unit, which end is harmful, and
    whether the review offers it as a ranking."""
    return [ColumnInfo.model_validate(column) for column in SCORE_COLUMN_SPECS]


@router.get("/methods/tags", response_model=list[TagInfo])
def list_tags() -> list[TagInfo]:
    """Every exact-check tag a pair can carry (the `tag=` filter's values): its label, what it
    means, when it is computed and what its number is."""
    return [TagInfo.model_validate(spec) for spec in TAG_SPECS]
