"""A targeted audit's target set, read for the engine (worker/influence/targeting.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from backend.storage.targets import target_rows
from worker.influence.data import Pair
from worker.influence.results import AuditMetrics, with_fields


@dataclass(frozen=True)
class Target:
    target_set_id: int
    name: str
    source: str
    pairs: list[Pair]

    def metrics(self, metrics: AuditMetrics) -> dict[str, Any]:
        """The job's `target` metrics: the engine's figures with the set's id, name, source."""
        assert metrics.target is not None, "a targeted audit's engine reports its target"
        summary = with_fields(
            metrics.target, target_set_id=self.target_set_id, name=self.name, source=self.source
        )
        return {"target": summary}


def load_target(session: Session, target_set_id: int | None) -> Target | None:
    if target_set_id is None:
        return None
    target, rows = target_rows(session, target_set_id)
    return Target(target.id, target.name, target.source, [Pair(*row) for row in rows])
