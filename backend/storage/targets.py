"""A target set's pairs as the worker reads them (written by backend/services/targets.py)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.models import TargetPair, TargetSet


def target_rows(
    session: Session, target_set_id: int
) -> tuple[TargetSet, list[tuple[str, str, str]]]:
    """(the set, its (prompt, chosen, rejected) in order, oriented as the target prefers)."""
    target = session.get(TargetSet, target_set_id)
    if target is None:
        raise LookupError(f"target set {target_set_id} no longer exists")
    rows = session.execute(
        select(TargetPair.prompt, TargetPair.chosen, TargetPair.rejected)
        .where(TargetPair.target_set_id == target_set_id)
        .order_by(TargetPair.position)
    ).all()
    return target, [(r.prompt, r.chosen, r.rejected) for r in rows]
