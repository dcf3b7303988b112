"""Browsing scored pairs and flagging them, one by one or the most harmful fraction at once."""

from __future__ import annotations

import math

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from backend.db import upsert
from backend.models import Dataset, Flag, Job, Pair, Score, User, utcnow
from backend.models import Interaction as InteractionRow
from backend.schemas import (
    Histogram,
    Interaction,
    Interactions,
    PairPublic,
    PairScores,
    PairsPage,
)
from worker.influence.config import budget_count
from worker.influence.methods import HARM_COLUMNS, SCORE_COLUMNS

# HARM_COLUMNS (higher = more harmful) is what "flag the top fraction" and verify jobs rank by.

SORT_KEYS: tuple[str, ...] = ("index", *SCORE_COLUMNS)
"""What the pairs list sorts by: the dataset's order or any score column of the registry."""


class ReviewError(ValueError):
    pass


def _to_public(pair: Pair, flag: Flag | None, score: Score | None) -> PairPublic:
    return PairPublic(
        id=pair.id,
        index=pair.source_index,
        prompt=pair.prompt,
        chosen=pair.chosen,
        rejected=pair.rejected,
        metadata=pair.meta or {},
        flagged=bool(flag and flag.flagged),
        note=flag.note if flag else None,
        scores=PairScores.model_validate(score) if score is not None else None,
    )


def _scored_job(session: Session, dataset: Dataset, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.dataset_id != dataset.id:
        raise LookupError(f"job {job_id} is not a job of dataset {dataset.id}")
    if job.status != "succeeded":
        raise ReviewError(f"job {job_id} is {job.status}; scores exist once it has succeeded")
    return job


def list_pairs(
    session: Session,
    dataset: Dataset,
    *,
    job_id: int | None,
    sort: str,
    flagged: bool | None,
    split: str,
    offset: int,
    limit: int,
) -> PairsPage:
    descending = sort.startswith("-")
    key = sort.lstrip("-+")
    if key not in SORT_KEYS:
        raise ReviewError(f"unknown sort key {key!r}; use one of {', '.join(SORT_KEYS)}")
    if key != "index" and job_id is None:
        raise ReviewError(f"sorting by {key!r} needs a job_id whose scores to use")

    query: Select
    if job_id is not None:
        _scored_job(session, dataset, job_id)
        query = (
            select(Pair, Flag, Score)
            .select_from(Pair)
            .join(Score, Score.pair_id == Pair.id)
            .where(Score.job_id == job_id)
        )
        if split != "all":
            query = query.where(Score.split == split)
    else:
        query = select(Pair, Flag).select_from(Pair)
    query = query.outerjoin(Flag, Flag.pair_id == Pair.id).where(Pair.dataset_id == dataset.id)
    if flagged is True:
        query = query.where(Flag.flagged.is_(True))
    elif flagged is False:
        query = query.where((Flag.id.is_(None)) | (Flag.flagged.is_(False)))

    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    column = Pair.source_index if key == "index" else getattr(Score, key)
    order = column.desc() if descending else column.asc()
    query = query.order_by(column.is_(None), order, Pair.source_index).offset(offset).limit(limit)
    items = []
    for row in session.execute(query):
        pair, flag = row[0], row[1]
        score = row[2] if job_id is not None else None
        items.append(_to_public(pair, flag, score))
    return PairsPage(items=items, total=total)


def get_pair(session: Session, dataset: Dataset, pair_id: int) -> Pair:
    pair = session.get(Pair, pair_id)
    if pair is None or pair.dataset_id != dataset.id:
        raise LookupError(f"pair {pair_id} is not in dataset {dataset.id}")
    return pair


def set_flag(
    session: Session, dataset: Dataset, pair_id: int, user: User, flagged: bool, note: str | None
) -> PairPublic:
    """Write the pair's whole review state in one upsert: concurrent writers never mix (one's
    flag with another's note) and the first flag of a pair cannot race into a duplicate."""
    pair = get_pair(session, dataset, pair_id)
    state = {
        "pair_id": pair.id,
        "flagged": flagged,
        "note": note,
        "user_id": user.id,
        "updated_at": utcnow(),
    }
    session.execute(upsert(session, Flag, state, ["pair_id"]))
    session.commit()
    return _to_public(pair, Flag(**state), None)  # what this request wrote, not a later writer


def flag_top(
    session: Session,
    dataset: Dataset,
    user: User,
    job_id: int,
    top_fraction: float,
    method: str,
    rule: str = "top",
    budget: float | None = None,
) -> int:
    """Flag the ceil(fraction × n) training pairs with the highest `method` score (rule 'top') or
    the first `budget` pairs of a group audit's greedy selection (rule 'greedy'); return how many
    were newly flagged. Pairs already flagged stay flagged; nothing is unflagged."""
    job = _scored_job(session, dataset, job_id)
    if rule == "greedy":
        top_ids = greedy_selection(session, job, budget)
    else:
        top_ids = most_harmful(session, job_id, top_fraction, method)
    existing = {
        f.pair_id: f for f in session.scalars(select(Flag).where(Flag.pair_id.in_(top_ids)))
    }
    newly = 0
    now = utcnow()
    for pair_id in top_ids:
        flag = existing.get(pair_id)
        if flag is None:
            session.add(
                Flag(pair_id=pair_id, flagged=True, note=None, user_id=user.id, updated_at=now)
            )
            newly += 1
        elif not flag.flagged:
            flag.flagged, flag.user_id, flag.updated_at = True, user.id, now
            newly += 1
    session.commit()
    return newly


def most_harmful(session: Session, job_id: int, fraction: float, method: str) -> list[int]:
    """Pair ids of the ceil(fraction × n) scored training pairs with the highest `method`."""
    if method not in HARM_COLUMNS:
        raise ReviewError(f"rank by a harm column, one of {', '.join(HARM_COLUMNS)}")
    column = getattr(Score, method)
    scored = (Score.job_id == job_id, Score.split == "train", column.is_not(None))
    n_scored = session.scalar(select(func.count()).where(*scored)) or 0
    if n_scored == 0:
        raise ReviewError(f"job {job_id} has no {method!r} scores; pick a method it computed")
    k = math.ceil(fraction * n_scored)
    query = select(Score.pair_id).where(*scored).order_by(column.desc(), Score.pair_id).limit(k)
    return list(session.scalars(query))


def greedy_selection(session: Session, job: Job, budget: float | None) -> list[int]:
    """Pair ids of the first `budget` pairs (round(b · n) of the n scored pairs when b < 1) in
    the job's greedy group order; the audit's own budget when `budget` is None."""
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
    query = (
        select(Score.pair_id)
        .where(*scored, Score.group_order.is_not(None))
        .order_by(Score.group_order)
        .limit(count)
    )
    return list(session.scalars(query))


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


def interactions(session: Session, dataset: Dataset, job_id: int, pair_id: int) -> Interactions:
    """A pair's strongest interactions in a group audit, strongest |κ| first."""
    job = _scored_job(session, dataset, job_id)
    pair = session.get(Pair, pair_id)
    if pair is None or pair.dataset_id != dataset.id:
        raise LookupError(f"pair {pair_id} is not in dataset {dataset.id}")
    if "group" not in ((job.config or {}).get("methods") or []):
        raise ReviewError(f"job {job.id} did not run the 'group' method: it has no interactions")
    rows = session.execute(
        select(InteractionRow.kappa, Pair.id, Pair.source_index, Pair.prompt, Score.group_order)
        .join(Pair, Pair.id == InteractionRow.other_id)
        .outerjoin(Score, (Score.pair_id == Pair.id) & (Score.job_id == job.id))
        .where(InteractionRow.job_id == job.id, InteractionRow.pair_id == pair_id)
        .order_by(func.abs(InteractionRow.kappa).desc(), Pair.id)
    ).all()
    items = [
        Interaction(
            pair_id=other,
            index=index,
            prompt=prompt[:300],
            kappa=kappa,
            kind="redundant" if kappa > 0 else "complementary",
            group_order=order,
        )
        for kappa, other, index, prompt, order in rows
    ]
    return Interactions(pair_id=pair_id, job_id=job.id, items=items)


def histogram(session: Session, job: Job, column: str, bins: int) -> Histogram:
    """Equal-width histogram of a score column over the job's scored training pairs."""
    import numpy as np

    if column not in SCORE_COLUMNS:
        raise ReviewError(f"unknown score column {column!r}; use one of {', '.join(SCORE_COLUMNS)}")
    if job.kind != "audit" or job.status != "succeeded":
        raise ReviewError(f"job {job.id} is not a succeeded audit: it has no scores")
    values = np.array(
        session.scalars(
            select(getattr(Score, column)).where(
                Score.job_id == job.id, Score.split == "train", getattr(Score, column).is_not(None)
            )
        ).all(),
        dtype=np.float64,
    )
    if values.size == 0:
        raise ReviewError(f"job {job.id} has no {column!r} scores; pick a method it computed")
    counts, edges = np.histogram(values, bins=bins)
    p10, p50, p90 = np.quantile(values, [0.1, 0.5, 0.9])
    return Histogram(
        column=column,
        n=int(values.size),
        edges=edges.tolist(),
        counts=counts.tolist(),
        quantiles={"p10": float(p10), "p50": float(p50), "p90": float(p90)},
    )


def clear_flags(session: Session, dataset: Dataset) -> int:
    pair_ids = select(Pair.id).where(Pair.dataset_id == dataset.id)
    count = (
        session.scalar(
            select(func.count()).where(Flag.pair_id.in_(pair_ids), Flag.flagged.is_(True))
        )
        or 0
    )
    session.execute(delete(Flag).where(Flag.pair_id.in_(pair_ids)))
    session.commit()
    return count
