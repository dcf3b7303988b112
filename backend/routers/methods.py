"""The score methods an audit can compute: the engine's registry, for clients to list them."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from backend.deps import get_current_user
from backend.schemas import MethodInfo
from worker.influence.methods import METHODS

# Signed-in users only, like every other route but /health.
router = APIRouter(tags=["methods"], dependencies=[Depends(get_current_user)])


@router.get("/methods", response_model=list[MethodInfo])
def list_methods() -> list[MethodInfo]:
    """Every method a job's `methods` can name, in the registry's order: its label, what it
    computes, what a high harm means, the columns it fills and what it needs."""
    return [MethodInfo.model_validate(spec) for spec in METHODS.values()]
