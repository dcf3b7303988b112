"""A finished audit's score statistics (row counts and 1,001 quantiles per column, cached in
`score_stats` and in memory): the review's percentiles and counts, written when a job finishes."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from backend.models import Job, Score, ScoreStat
from worker.influence.methods import SCORE_COLUMNS

N_QUANTILES = 1001


_STATS_CACHE: dict[tuple[str, int, str], dict[str, ScoreStat]] = {}
_TABLES: dict[tuple[str, int, str], PercentileTable] = {}
"""Per process: a finished job's statistics, keyed by (database, job id, finish time). A rerun of
the job finishes at another time, so it never reads an earlier run's entry."""


def _stats_key(session: Session, job: Job) -> tuple[str, int, str]:
    return (str(session.get_bind().engine.url), job.id, str(job.finished_at))


def ensure_stats(session: Session, job: Job) -> dict[str, ScoreStat]:
    """The job's cached score statistics, computed once (the worker does it when it saves the
    scores; jobs from before the cache get it on first use), held in memory once read."""
    key = _stats_key(session, job)
    cached = _STATS_CACHE.get(key)
    if cached is not None:
        return cached
    stats = _load_stats(session, job)
    if len(_STATS_CACHE) > 256:
        _STATS_CACHE.clear()
        _TABLES.clear()
    _STATS_CACHE[key] = stats
    return stats


def _load_stats(session: Session, job: Job) -> dict[str, ScoreStat]:
    stats = {s.key: s for s in session.scalars(select(ScoreStat).where(ScoreStat.job_id == job.id))}
    if stats:
        for stat in stats.values():
            session.expunge(stat)  # kept across requests: detached, read-only
        return stats
    for split in ("train", "val"):
        n = session.scalar(select(func.count()).where(Score.job_id == job.id, Score.split == split))
        stats[f"rows:{split}"] = ScoreStat(job_id=job.id, key=f"rows:{split}", n=n or 0)
    present = [
        c
        for c in SCORE_COLUMNS
        if session.scalar(
            select(getattr(Score, c))
            .where(Score.job_id == job.id, Score.split == "train", getattr(Score, c).is_not(None))
            .limit(1)
        )
        is not None
    ]
    for column in present:
        values = np.fromiter(
            session.scalars(
                select(getattr(Score, column)).where(
                    Score.job_id == job.id,
                    Score.split == "train",
                    getattr(Score, column).is_not(None),
                )
            ),
            dtype=np.float64,
        )
        if (found := _stat(job, column, values)) is not None:
            stats[column] = found
    session.add_all(stats.values())
    try:
        session.commit()
    except Exception:  # another request cached them first
        session.rollback()
        stats = {
            s.key: s for s in session.scalars(select(ScoreStat).where(ScoreStat.job_id == job.id))
        }
    for stat in stats.values():
        session.expunge(stat)
    return stats


def _stat(job: Job, column: str, raw: Any) -> ScoreStat | None:
    """The column's N_QUANTILES quantiles over its finite training values (None if none)."""
    values = np.asarray(raw, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    quantiles = np.quantile(values, np.linspace(0.0, 1.0, N_QUANTILES)).tolist()
    return ScoreStat(job_id=job.id, key=column, n=int(values.size), quantiles=quantiles)


def refresh_stats(
    session: Session,
    job: Job,
    columns: dict[str, Any] | None = None,
    rows: dict[str, int] | None = None,
) -> None:
    """Recompute a just-finished audit's statistics (its scores may have been replaced): from
    the training scores the caller still holds (`columns`, `rows` per split), else read back. A
    failure leaves them to be computed on first use."""

    try:
        session.execute(delete(ScoreStat).where(ScoreStat.job_id == job.id))
        session.commit()
        _STATS_CACHE.pop(_stats_key(session, job), None)
        _TABLES.pop(_stats_key(session, job), None)
        if columns is None or rows is None:
            ensure_stats(session, job)
            return
        stats = [ScoreStat(job_id=job.id, key=f"rows:{k}", n=n) for k, n in rows.items()]
        stats.extend(
            stat
            for column, values in columns.items()
            if (stat := _stat(job, column, values)) is not None
        )
        session.add_all(stats)
        session.commit()
    except Exception:
        session.rollback()


def _quantiles(stat: ScoreStat) -> Any:
    """The stat's quantiles as a numpy array, converted once per loaded row."""
    cached = stat.__dict__.get("_array")
    if cached is None:
        cached = np.asarray(stat.quantiles, dtype=np.float64)
        stat.__dict__["_array"] = cached
    return cached


def _levels(size: int) -> Any:
    return np.linspace(0.0, 100.0, size)


def percentiles(stat: ScoreStat, values: Any) -> Any:
    """percentile() of many values at once."""
    q = _quantiles(stat)
    levels = _levels(q.size)
    values = np.asarray(values, dtype=np.float64)
    hi = np.clip(np.searchsorted(q, values, side="right"), 1, q.size - 1)
    lo = hi - 1
    span = q[hi] - q[lo]
    frac = np.where(span > 0, (values - q[lo]) / np.where(span > 0, span, 1.0), 0.0)
    out = levels[lo] + np.clip(frac, 0.0, 1.0) * (levels[hi] - levels[lo])
    out = np.where(values < q[0], 0.0, out)
    return np.where(values >= q[-1], 100.0, out)


def percentile(stat: ScoreStat, value: float) -> float:
    """Percentage of training pairs at or below `value` (interpolated between quantiles)."""
    q = _quantiles(stat)
    levels = _levels(q.size)
    if value < q[0]:
        return 0.0
    if value >= q[-1]:
        return 100.0
    # The highest level whose quantile is ≤ value: ties (plateaus) count as at or below.
    hi = int(np.searchsorted(q, value, side="right"))
    lo = hi - 1
    span = q[hi] - q[lo]
    frac = 0.0 if span <= 0 else (value - q[lo]) / span
    return float(levels[lo] + frac * (levels[hi] - levels[lo]))


def value_at(stat: ScoreStat, pct: float) -> float:
    q = _quantiles(stat)
    return float(np.interp(pct, np.linspace(0.0, 100.0, q.size), q))


class PercentileTable:
    """A job's quantiles of every score column it has, stacked (columns × N_QUANTILES), built
    once per job and process: a page's percentiles for all its rows and columns cost a handful
    of numpy operations (one binary search per column), not one lookup per row and column."""

    def __init__(self, stats: dict[str, ScoreStat]) -> None:
        self.columns = [c for c in SCORE_COLUMNS if c in stats and stats[c].quantiles]
        self.quantiles = (
            np.vstack([_quantiles(stats[c]) for c in self.columns])
            if self.columns
            else np.empty((0, N_QUANTILES))
        )
        self.levels = _levels(self.quantiles.shape[1])

    def percentiles(self, values: Any) -> Any:
        """percentile() of a (rows × columns) array, NaN where a value is NaN."""
        q, levels = self.quantiles, self.levels
        values = np.asarray(values, dtype=np.float64)
        hi = np.empty(values.shape, dtype=np.intp)
        for j in range(q.shape[0]):
            hi[:, j] = np.searchsorted(q[j], values[:, j], side="right")
        hi = np.clip(hi, 1, q.shape[1] - 1)
        lo = hi - 1
        rows = np.arange(q.shape[0])[None, :]
        q_lo, q_hi = q[rows, lo], q[rows, hi]
        span = q_hi - q_lo
        with np.errstate(invalid="ignore"):
            frac = np.where(span > 0, (values - q_lo) / np.where(span > 0, span, 1.0), 0.0)
            out = levels[lo] + np.clip(frac, 0.0, 1.0) * (levels[hi] - levels[lo])
            out = np.where(values < q[:, 0], 0.0, out)
            out = np.where(values >= q[:, -1], 100.0, out)
        return np.where(np.isnan(values), np.nan, out)


def percentile_table(session: Session, job: Job) -> PercentileTable:
    """The job's PercentileTable, cached per process beside its statistics."""
    key = _stats_key(session, job)
    table = _TABLES.get(key)
    if table is None:
        table = _TABLES[key] = PercentileTable(ensure_stats(session, job))
    return table
