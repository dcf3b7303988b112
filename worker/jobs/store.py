"""What the job runner reads and writes in the database: a job's options, its pairs (whole or in
bounded batches), its scores and interactions, and its outcome."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from backend.db import upsert
from backend.job_states import CANCELLED, RUNNING, SUCCEEDED
from backend.models import Dataset, Interaction, Job, Pair, Score, utcnow
from backend.storage.job_config import (
    AuditOptions,
    audit_options,
    validation_source,
    verify_options,
)
from backend.storage.scores import ensure_partition, replace_scores
from backend.storage.stats import refresh_stats
from backend.storage.tags import replace_tags
from worker.influence.checks import truncated_identical
from worker.influence.columns import SCORE_COLUMNS
from worker.influence.data import Pair as EnginePair
from worker.influence.data import split_validation
from worker.influence.results import (
    AnyJobMetrics,
    AuditMetrics,
    read_metrics,
    stored_json,
    with_fields,
)

__all__ = ["audit_options", "validation_source", "verify_options"]

Factory = Callable[[], Session]

_LOAD_BATCH = 2000  # pairs per query when texts are read in bounded memory
_WRITE_BATCH = 2000  # rows per multi-row INSERT / upsert


# --- pairs ----------------------------------------------------------------------------------


def load_pairs(session: Session, dataset_id: int) -> tuple[list[int], list[EnginePair]]:
    """(pair ids, engine pairs) of a whole dataset, in file order."""
    rows = session.execute(
        select(Pair.id, Pair.prompt, Pair.chosen, Pair.rejected)
        .where(Pair.dataset_id == dataset_id)
        .order_by(Pair.source_index)
    ).all()
    return [r.id for r in rows], [EnginePair(r.prompt, r.chosen, r.rejected) for r in rows]


def dataset_pair_ids(session: Session, dataset_id: int) -> np.ndarray:
    ids = session.scalars(
        select(Pair.id).where(Pair.dataset_id == dataset_id).order_by(Pair.source_index)
    ).all()
    return np.asarray(ids, dtype=np.int64)


def split_ids(
    session: Session, dataset_id: int, options: AuditOptions, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(training, validation, validation pairs of the dataset itself) pair ids: the validation
    dataset, or the seeded split of the dataset the single-task engine makes too."""
    all_ids = dataset_pair_ids(session, dataset_id)
    if options.val_dataset_id is not None:
        val_ids = dataset_pair_ids(session, options.val_dataset_id)
        return all_ids, val_ids, np.zeros(0, dtype=np.int64)
    train_pos, val_pos = split_validation(len(all_ids), options.val_fraction, seed)
    return all_ids[train_pos], all_ids[val_pos], all_ids[val_pos]


def row_batches(session: Session, pair_ids: np.ndarray) -> Iterator[tuple[list[int], list[Any]]]:
    """(positions in `pair_ids`, (id, prompt, chosen, rejected) rows) a batch at a time, so texts
    are held one batch at a time; raises if any of the pairs is gone."""
    position = {int(pid): k for k, pid in enumerate(pair_ids)}
    found = 0
    for start in range(0, len(pair_ids), _LOAD_BATCH):
        chunk = [int(p) for p in pair_ids[start : start + _LOAD_BATCH]]
        rows = session.execute(
            select(Pair.id, Pair.prompt, Pair.chosen, Pair.rejected).where(Pair.id.in_(chunk))
        ).all()
        found += len(rows)
        yield [position[row.id] for row in rows], list(rows)
    if found < len(pair_ids):
        raise LookupError(f"{len(pair_ids) - found} pair(s) of the job were deleted while it ran")


def pairs_by_ids(session: Session, pair_ids: np.ndarray) -> list[EnginePair]:
    """The engine's pairs of the given ids, in the given order."""
    pairs: list[Any] = [None] * len(pair_ids)
    for positions, rows in row_batches(session, pair_ids):
        for k, row in zip(positions, rows, strict=True):
            pairs[k] = EnginePair(row.prompt, row.chosen, row.rejected)
    return pairs


def model_dir(factory: Factory, dataset_id: int, job_id: int) -> Path:
    """Where a job saves its trained model: beside the dataset's stored original, so deleting
    the dataset deletes its models too."""
    with factory() as session:
        dataset = session.get(Dataset, dataset_id)
        assert dataset is not None
        return Path(dataset.original_path).parent / "models" / f"job-{job_id}"


def tag_truncation(
    session: Session, job_id: int, dataset_id: int, tokenizer: Any, max_length: int
) -> int:
    """Tag the dataset's pairs whose chosen and rejected are identical once truncated as this
    job truncates them (tag `truncated_identical` of the job, value: the tokens they differ in
    before truncation), replacing the job's earlier ones; commits. Returns how many."""
    found: list[tuple[int, float | None]] = []
    for _, rows in row_batches(session, dataset_pair_ids(session, dataset_id)):
        pairs = [EnginePair(r.prompt, r.chosen, r.rejected) for r in rows]
        for k, diff in truncated_identical(tokenizer, pairs, max_length):
            found.append((rows[k].id, float(diff)))
    replace_tags(session, dataset_id, "truncated_identical", found, job_id=job_id)
    session.commit()
    return len(found)


def tag_ambiguous(
    session: Session, job: Job, pair_ids: Sequence[int] | np.ndarray, ambiguous: np.ndarray
) -> int:
    """Make the job's `ambiguous` tags (worker/influence/tags.py) the pairs whose flag is set
    (the reward models' rm_ambiguous, or a judge's split orders); the caller commits."""
    found = [(int(pid), None) for pid, flag in zip(pair_ids, ambiguous, strict=True) if flag]
    return replace_tags(session, job.dataset_id, "ambiguous", found, job_id=job.id)


# --- scores and interactions ----------------------------------------------------------------


def _clean(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else value


def upsert_scores(
    session: Session,
    job_id: int,
    pair_ids: np.ndarray,
    split: str,
    columns: dict[str, np.ndarray],
    progress: Callable[[float], None] | None = None,
) -> None:
    """Insert or replace the (job, pair) rows: a shard that runs twice leaves one row per pair."""
    ensure_partition(session, job_id)
    names = sorted(columns)
    for start in range(0, len(pair_ids), _WRITE_BATCH):
        rows = []
        for k in range(start, min(start + _WRITE_BATCH, len(pair_ids))):
            row: dict[str, Any] = {"job_id": job_id, "pair_id": int(pair_ids[k]), "split": split}
            for name in names:
                row[name] = _clean(float(columns[name][k]))
            rows.append(row)
        session.execute(upsert(session, Score, rows, ["job_id", "pair_id"]))
        if progress is not None:
            progress(min(1.0, (start + _WRITE_BATCH) / max(1, len(pair_ids))))


def replace_interactions(
    session: Session, job_id: int, links: Iterable[Sequence[float]] = ()
) -> None:
    """Make the job's interactions exactly these (pair id, other pair id, κ); a κ that is not
    finite is left out."""
    session.execute(delete(Interaction).where(Interaction.job_id == job_id))
    rows = [
        {"job_id": job_id, "pair_id": int(i), "other_id": int(j), "kappa": float(k)}
        for i, j, k in links
        if math.isfinite(k)
    ]
    for start in range(0, len(rows), _WRITE_BATCH):
        session.execute(insert(Interaction), rows[start : start + _WRITE_BATCH])


def train_columns(session: Session, job_id: int, names: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """Stored training score columns of a job, in pair id order (NULL as NaN)."""
    rows = session.execute(
        select(*(getattr(Score, n) for n in names))
        .where(Score.job_id == job_id, Score.split == "train")
        .order_by(Score.pair_id)
    ).all()
    data = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(names))
    return tuple(data[:, k] for k in range(len(names)))


def save_scores(
    factory: Factory,
    job_id: int,
    train_ids: list[int],
    val_ids: list[int],
    scores: dict[str, np.ndarray],
    metrics: AuditMetrics,
    interactions: Sequence[tuple[int, int, float]] = (),
) -> str:
    """Replace the job's scores (and the group method's strongest interactions, given as
    training positions) and mark it succeeded, in one transaction; returns the job's status."""
    unknown = set(scores) - set(SCORE_COLUMNS)
    if unknown:
        raise ValueError(f"the engine returned unknown score columns {sorted(unknown)}")
    columns = {name: np.asarray(values, dtype=np.float64) for name, values in scores.items()}
    for name, values in columns.items():
        if len(values) != len(train_ids):
            raise ValueError(f"score {name!r} has {len(values)} values for {len(train_ids)} pairs")
    with factory() as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None or job.status != RUNNING:
            return job.status if job else "missing"
        replace_scores(session, job_id, train_ids, val_ids, columns)
        links = [(train_ids[i], train_ids[j], kappa) for i, j, kappa in interactions]
        replace_interactions(session, job_id, links)
        if "rm_ambiguous" in columns:
            tag_ambiguous(session, job, train_ids, columns["rm_ambiguous"] == 1)
        status = succeed(session, job, metrics, stats=False)
        # The review's percentiles and counts, from the arrays at hand (not read back).
        refresh_stats(session, job, columns, {"train": len(train_ids), "val": len(val_ids)})
        return status


# --- the job's outcome ----------------------------------------------------------------------


def write_metrics(job: Job, metrics: AnyJobMetrics) -> None:
    """The one place a job's metrics are written: the model's set fields, as JSON."""
    job.metrics = stored_json(metrics)


def succeed(session: Session, job: Job, metrics: AnyJobMetrics, stats: bool = True) -> str:
    """Mark the job succeeded with its metrics (commits); an audit's review statistics are
    computed once here unless the caller writes them (`stats=False`)."""
    write_metrics(job, metrics)
    job.status, job.stage, job.progress = SUCCEEDED, "done", 1.0
    job.finished_at = utcnow()
    session.commit()
    if job.kind == "audit" and stats:
        refresh_stats(session, job)  # percentiles and counts for the review, once
    return SUCCEEDED


def finish_job(
    factory: Factory,
    job_id: int,
    *,
    status: str,
    error: str | None = None,
    details: str | None = None,
) -> str:
    """Record a running job's end (failed or cancelled; a traceback kept in its metrics); a job
    that already ended keeps its state. Returns the job's status."""
    with factory() as session:
        job = session.get(Job, job_id)
        if job is None:
            return "missing"
        if job.status == RUNNING or (status == CANCELLED and job.status == CANCELLED):
            job.status = status
            job.error = error
            job.finished_at = job.finished_at or utcnow()
            if details:
                stored = read_metrics(job.kind, job.metrics or {})
                write_metrics(job, with_fields(stored, traceback=details[-8000:]))
            session.commit()
        return job.status


def job_status(factory: Factory, job_id: int) -> str | None:
    with factory() as session:
        return session.scalar(select(Job.status).where(Job.id == job_id))


def current_stage(factory: Factory, job_id: int) -> str | None:
    with factory() as session:
        return session.scalar(select(Job.stage).where(Job.id == job_id))
