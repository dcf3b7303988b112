"""Target sets: build one (from reviewed pairs, by a rule, from another dataset, from given
pairs), list, show and delete them, and compare two targeted audits' rankings."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

import numpy as np
from scipy.stats import spearmanr
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from backend.errors import BadInput, NotFound
from backend.models import Dataset, Flag, Job, Pair, Score, TargetPair, TargetSet, User
from backend.schemas.targets import (
    TARGET_MAX_PAIRS,
    TARGET_MIN_PAIRS,
    FromDataset,
    FromPairs,
    FromReviewed,
    FromRule,
    RankedPair,
    TargetComparison,
    TargetSetCreate,
    TargetSource,
)
from backend.services.target_rules import RULES
from worker.influence.methods import HARM_COLUMNS

_BATCH = 2000
SAMPLE_SIZE = 5
"""Pairs shown with a target set."""

Member = tuple[int | None, str, str, str]
"""(source pair id, prompt, chosen, rejected), oriented as the target prefers."""


class TargetSizeError(BadInput):
    """A target set would hold fewer than 20 or more than 500 pairs (422)."""


def create_target_set(
    session: Session,
    dataset: Dataset,
    user: User,
    body: TargetSetCreate,
    other: Dataset | None = None,
) -> TargetSet:
    """Build the members from the source, check the size, write the set and its pairs.
    `other` is the dataset a 'dataset' source names, access already checked by the caller."""
    members, source, description = _members(session, dataset, body.source, other)
    if not TARGET_MIN_PAIRS <= len(members) <= TARGET_MAX_PAIRS:
        raise TargetSizeError(
            f"the target set from {description} would hold {len(members)} pair(s); a target "
            f"set holds {TARGET_MIN_PAIRS}–{TARGET_MAX_PAIRS} pairs"
            + (
                " (review more pairs: keep or swap them)"
                if source == "reviewed" and len(members) < TARGET_MIN_PAIRS
                else ""
            )
        )
    target = TargetSet(
        dataset_id=dataset.id,
        owner_id=user.id,
        name=body.name or f"{source} ({len(members)} pairs)",
        source=source,
        description=description,
        n_pairs=len(members),
    )
    session.add(target)
    session.flush()
    session.execute(
        insert(TargetPair),
        [
            {
                "target_set_id": target.id,
                "position": k,
                "pair_id": pair_id,
                "prompt": prompt,
                "chosen": chosen,
                "rejected": rejected,
            }
            for k, (pair_id, prompt, chosen, rejected) in enumerate(members)
        ],
    )
    session.commit()
    return target


def _members(
    session: Session, dataset: Dataset, source: TargetSource, other: Dataset | None
) -> tuple[list[Member], str, str]:
    """(members, stored source, description in words)."""
    if isinstance(source, FromReviewed):
        return (
            _reviewed(session, dataset),
            "reviewed",
            f"the reviewed pairs of dataset {dataset.id}",
        )
    if isinstance(source, FromRule):
        rule = RULES[source.rule]
        return (
            _by_rule(session, dataset, source),
            f"rule:{rule.name}",
            f"rule {rule.name!r} ({rule.description})",
        )
    if isinstance(source, FromDataset):
        assert other is not None and other.id == source.dataset_id
        if other.n_pairs > TARGET_MAX_PAIRS:
            raise TargetSizeError(
                f"dataset {other.id} holds {other.n_pairs} pairs; a target set holds "
                f"{TARGET_MIN_PAIRS}–{TARGET_MAX_PAIRS} pairs"
            )
        rows = session.execute(
            select(Pair.id, Pair.prompt, Pair.chosen, Pair.rejected)
            .where(Pair.dataset_id == other.id)
            .order_by(Pair.source_index)
        ).all()
        copied: list[Member] = [(None, r.prompt, r.chosen, r.rejected) for r in rows]
        return copied, f"dataset:{other.id}", f"the pairs of dataset {other.id}, as labelled"
    assert isinstance(source, FromPairs)
    pairs: list[Member] = [(None, p.prompt, p.chosen, p.rejected) for p in source.pairs]
    return pairs, "pairs", "pairs given in the request"


def _reviewed(session: Session, dataset: Dataset) -> list[Member]:
    """Kept pairs as labelled, swapped pairs with chosen and rejected exchanged, in file order."""
    rows = session.execute(
        select(Pair.id, Pair.prompt, Pair.chosen, Pair.rejected, Flag.state)
        .join(Flag, Flag.pair_id == Pair.id)
        .where(Flag.dataset_id == dataset.id, Flag.state.in_(("kept", "swapped")))
        .order_by(Pair.source_index)
        .limit(TARGET_MAX_PAIRS + 1)
    ).all()
    return [
        (r.id, r.prompt, r.chosen, r.rejected)
        if r.state == "kept"
        else (r.id, r.prompt, r.rejected, r.chosen)
        for r in rows
    ]


def _by_rule(session: Session, dataset: Dataset, source: FromRule) -> list[Member]:
    """Every pair the rule uses, oriented; a seeded sample of `limit` when more qualify."""
    prefers = RULES[source.rule].prefers
    found: list[Member] = []
    rows: Iterable = session.execute(
        select(Pair.id, Pair.prompt, Pair.chosen, Pair.rejected)
        .where(Pair.dataset_id == dataset.id)
        .order_by(Pair.source_index)
        .execution_options(yield_per=_BATCH)
    )
    for row in rows:
        verdict = prefers(row.prompt, row.chosen, row.rejected)
        if verdict is True:
            found.append((row.id, row.prompt, row.chosen, row.rejected))
        elif verdict is False:
            found.append((row.id, row.prompt, row.rejected, row.chosen))
    if len(found) > source.limit:
        keep = sorted(random.Random(source.seed).sample(range(len(found)), source.limit))
        found = [found[k] for k in keep]
    return found


# --- reading ----------------------------------------------------------------------------------


def list_target_sets(session: Session, dataset: Dataset) -> list[TargetSet]:
    return list(
        session.scalars(
            select(TargetSet).where(TargetSet.dataset_id == dataset.id).order_by(TargetSet.id)
        )
    )


def get_target_set(session: Session, dataset: Dataset, target_set_id: int) -> TargetSet:
    target = session.get(TargetSet, target_set_id)
    if target is None or target.dataset_id != dataset.id:
        raise NotFound(f"target set {target_set_id} of dataset {dataset.id} not found")
    return target


def sample(session: Session, target: TargetSet, size: int = SAMPLE_SIZE) -> list[TargetPair]:
    return list(
        session.scalars(
            select(TargetPair)
            .where(TargetPair.target_set_id == target.id)
            .order_by(TargetPair.position)
            .limit(size)
        )
    )


def delete_target_set(session: Session, target: TargetSet) -> None:
    session.execute(delete(TargetPair).where(TargetPair.target_set_id == target.id))
    session.delete(target)
    session.commit()


# --- comparing two targeted audits --------------------------------------------------------------


def compare(
    session: Session, dataset: Dataset, job_ids: Sequence[int], column: str, k: int
) -> TargetComparison:
    """Two audits of one dataset by one harm column: their top-k lists, overlap and scatter."""
    if column not in HARM_COLUMNS:
        raise BadInput(f"column {column!r}: compare by one of {', '.join(HARM_COLUMNS)}")
    jobs = [_audit_of(session, dataset, job_id) for job_id in job_ids]
    values = [_column(session, job.id, column) for job in jobs]
    tops = [_top(v, k) for v in values]
    shared = sorted(set(values[0]) & set(values[1]))
    a = np.array([values[0][p] for p in shared], dtype=float)
    b = np.array([values[1][p] for p in shared], dtype=float)
    rho = float(spearmanr(a, b).statistic) if len(shared) > 2 else None
    step = max(1, len(shared) // 2000)
    ids_a, ids_b = {r.pair_id for r in tops[0]}, {r.pair_id for r in tops[1]}
    union = ids_a | ids_b
    return TargetComparison(
        column=column,
        k=k,
        job_a=jobs[0].id,
        job_b=jobs[1].id,
        target_a=_target_name(jobs[0]),
        target_b=_target_name(jobs[1]),
        overlap=len(ids_a & ids_b),
        jaccard=len(ids_a & ids_b) / len(union) if union else 0.0,
        spearman=rho if rho is None or np.isfinite(rho) else None,
        top_a=tops[0],
        top_b=tops[1],
        scatter=[(float(x), float(y)) for x, y in zip(a[::step], b[::step], strict=True)],
    )


def _audit_of(session: Session, dataset: Dataset, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.dataset_id != dataset.id or job.kind != "audit":
        raise NotFound(f"audit job {job_id} of dataset {dataset.id} not found")
    if job.status != "succeeded":
        raise BadInput(f"job {job_id} is {job.status}; compare succeeded audits")
    return job


def _target_name(job: Job) -> str | None:
    """'<name> (target set <id>)' of a targeted audit, None for an untargeted one."""
    target = (job.metrics or {}).get("target") or {}
    if target.get("target_set_id") is None:
        return None
    return f"{target.get('name')} (target set {target['target_set_id']})"


def _column(session: Session, job_id: int, column: str) -> dict[int, float]:
    """{pair id: value} of a job's scored training pairs (NULLs left out)."""
    field = getattr(Score, column)
    rows = session.execute(
        select(Score.pair_id, field).where(
            Score.job_id == job_id, Score.split == "train", field.is_not(None)
        )
    ).all()
    if not rows:
        raise BadInput(f"job {job_id} has no {column!r} scores; pick a column it computed")
    return {int(r[0]): float(r[1]) for r in rows}


def _top(values: dict[int, float], k: int) -> list[RankedPair]:
    ranked = sorted(values.items(), key=lambda item: (-item[1], item[0]))[:k]
    return [RankedPair(pair_id=p, rank=i + 1, harm=h) for i, (p, h) in enumerate(ranked)]
