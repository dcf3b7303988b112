"""The ranking queries a review and a verify job share: the pairs an audit ranks most harmful by
a column, its greedy group selection, and the first-order top-K beside it."""

from __future__ import annotations

import math

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from backend.models import Job, Score
from backend.storage.errors import ReviewError
from worker.influence.config import budget_count
from worker.influence.methods import HARM_COLUMNS


def most_harmful(session: Session, job_id: int, fraction: float, method: str) -> list[int]:
    """Pair ids of the ceil(fraction × n) scored training pairs with the highest `method`."""
    return list(session.scalars(most_harmful_query(session, job_id, fraction, method)))


def most_harmful_query(session: Session, job_id: int, fraction: float, method: str) -> Select:
    """The ids of most_harmful, as a subquery (no bound parameter per pair)."""
    if method not in HARM_COLUMNS:
        raise ReviewError(f"rank by a harm column, one of {', '.join(HARM_COLUMNS)}")
    column = getattr(Score, method)
    scored = (Score.job_id == job_id, Score.split == "train", column.is_not(None))
    n_scored = session.scalar(select(func.count()).where(*scored)) or 0
    if n_scored == 0:
        raise ReviewError(f"job {job_id} has no {method!r} scores; pick a method it computed")
    k = math.ceil(fraction * n_scored)
    return select(Score.pair_id).where(*scored).order_by(column.desc(), Score.pair_id).limit(k)


def greedy_selection(session: Session, job: Job, budget: float | None) -> list[int]:
    """Pair ids of the first `budget` pairs (round(b · n) of the n scored pairs when b < 1) in
    the job's greedy group order; the audit's own budget when `budget` is None."""
    return list(session.scalars(greedy_query(session, job, budget)))


def greedy_query(session: Session, job: Job, budget: float | None) -> Select:
    """The ids of greedy_selection, as a subquery."""
    config = (job.config or {}) if isinstance(job.config, dict) else {}
    if "group" not in (config.get("methods") or []):
        raise ReviewError(
            f"job {job.id} did not run the 'group' method; audit with methods including 'group' "
            "to prune a budget greedily"
        )
    scored = (Score.job_id == job.id, Score.split == "train")
    n_scored = session.scalar(select(func.count()).where(*scored)) or 0
    candidates = (
        session.scalar(select(func.count()).where(*scored, Score.group_order.is_not(None))) or 0
    )
    stored = ((job.metrics or {}).get("group") or {}).get("budget")
    if budget is None and stored is not None:
        count = int(stored)
    else:
        value = float(config.get("prune_budget", 0.1) if budget is None else budget)
        # A count is taken as asked (above the candidates it is refused below).
        count = budget_count(value, n_scored) if value < 1 else int(value)
    if count > candidates:
        raise ReviewError(
            f"budget {count} exceeds the {candidates} candidates job {job.id} ordered greedily; "
            "raise group_candidates in a new audit or flag fewer"
        )
    return (
        select(Score.pair_id)
        .where(*scored, Score.group_order.is_not(None))
        .order_by(Score.group_order)
        .limit(count)
    )


def first_order_top(session: Session, job_id: int, count: int) -> list[int]:
    """Pair ids of the `count` training pairs with the most negative first-order removal effect
    (the top-K a greedy group selection is compared with)."""
    column = Score.removal_effect_influence
    query = (
        select(Score.pair_id)
        .where(Score.job_id == job_id, Score.split == "train", column.is_not(None))
        .order_by(column, Score.pair_id)
        .limit(count)
    )
    return list(session.scalars(query))
