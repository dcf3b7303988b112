"""A running job's time left, from measured stage rates: the job's `timing` (written by the
worker as its stages run) and the rates the same stages had in recent jobs of the same key.

`timing` is a JSON object the worker keeps on the job row:

    key      jobs that share it share stage rates ("audit/head/tiny/cpu")
    order    the flow's stages, in order
    steady   stages whose fraction grows evenly with their work, so its rate extrapolates
    units    each stage's work (pairs, or retrains × pairs): history is scaled by it
    history  seconds per unit of each stage in recent finished jobs of the key (null: none yet)
    current  the stage running now
    cold     some task of it was its worker process's first run of that stage
    stages   {stage: {start, first: [t, f] | null, last: [t, f], end | null}} (epoch seconds)

The current stage's time left is extrapolated from its own rate (between its first and latest
measured fraction), blended with its recorded time by how far it got (an early rate is a short
sample); every later stage counts its recorded time, scaled by the pace of this job so far
against the records (a busier machine slows every stage). With no history for the key the ETA
is unknown (None) until the last stage: a figure from the current stage alone would say seconds
for a job that has minutes to go.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.job_states import SUCCEEDED
from backend.models import Job

HISTORY_JOBS = 5
"""Rates are the median over this many most recent finished jobs of the key."""
MIN_RATE_SECONDS = 1.0
"""A stage's own rate counts once its measurements span this long ..."""
MIN_RATE_FRACTION = 0.03
"""... and this much of the stage."""
MAX_PACE = 4.0
"""This job runs at most this many times slower (or faster) than the recorded rates."""

Timing = dict[str, Any]


def new_timing(
    key: str,
    order: Iterable[str],
    steady: Iterable[str],
    units: dict[str, float],
    history: dict[str, float] | None,
) -> Timing:
    return {
        "key": key,
        "order": list(order),
        "steady": sorted(steady),
        "units": units,
        "history": history,
        "current": None,
        "stages": {},
    }


def record(timing: Timing, stage: str, fraction: float, now: float) -> Timing:
    """`timing` with `stage` at `fraction` measured at `now` (a new stage ends the current)."""
    stages = timing["stages"]
    current = timing.get("current")
    if current != stage:
        if current in stages and stages[current].get("end") is None:
            stages[current]["end"] = now
        stages[stage] = {"start": now, "first": None, "last": [now, fraction], "end": None}
        timing["current"] = stage
    entry = stages[stage]
    entry["last"] = [now, fraction]
    if entry["first"] is None and fraction > 0:
        entry["first"] = [now, fraction]
    return timing


def finish(timing: Timing, now: float) -> Timing:
    """`timing` with its current stage ended (the job succeeded)."""
    current = timing.get("current")
    entry = timing["stages"].get(current) if current else None
    if entry is not None and entry.get("end") is None:
        entry["end"] = now
    return timing


def _own_rate_left(entry: dict[str, Any], now: float) -> float | None:
    """Seconds left in a stage from its own measured rate, or None before it has one."""
    first, last = entry.get("first"), entry.get("last")
    if not first or not last:
        return None
    span, done = last[0] - first[0], last[1] - first[1]
    if span < MIN_RATE_SECONDS or done < MIN_RATE_FRACTION:
        return None
    return (1.0 - last[1]) * span / done - (now - last[0])


def _pace(timing: Timing, left: float | None, now: float) -> float:
    """How fast this job runs against the recorded rates: its stages' seconds so far (the
    current one's projected with `left` seconds to go, or left out) over what the rates expected
    of them. A busier or quieter machine moves every stage alike, so later stages scale by it."""
    history, units = timing.get("history") or {}, timing.get("units", {})
    actual = expected = 0.0
    for stage, entry in timing["stages"].items():
        if stage not in history:
            continue
        if entry.get("end") is not None:
            actual += entry["end"] - entry["start"]
        elif left is not None:
            actual += now - entry["start"] + max(0.0, left)
        else:
            continue
        expected += history[stage] * units.get(stage, 1.0)
    if expected < MIN_RATE_SECONDS or actual <= 0:
        return 1.0
    return min(MAX_PACE, max(1.0 / MAX_PACE, actual / expected))


def eta_seconds(timing: Timing | None, now: float) -> float | None:
    """Seconds left of a running job, or None while there is nothing measured to say it from."""
    if not timing or not timing.get("current"):
        return None
    current, order = timing["current"], timing.get("order", [])
    history, units = timing.get("history") or {}, timing.get("units", {})
    entry = timing["stages"][current]
    later = [stage for stage in order if stage not in timing["stages"]]
    if not history and later:
        return None
    own = _own_rate_left(entry, now) if current in timing.get("steady", []) else None
    prior = None
    if current in history:
        # The stage's recorded time at the pace of this job's finished stages.
        expected = _pace(timing, None, now) * history[current] * units.get(current, 1.0)
        prior = expected - (now - entry["start"])
    if own is not None and prior is not None:
        # Its own rate counts more the further the stage got (an early rate is a short sample).
        weight = min(1.0, max(0.0, entry["last"][1]))
        left = weight * own + (1.0 - weight) * prior
    elif own is not None or prior is not None:
        left = own if own is not None else prior  # type: ignore[assignment]
    else:
        return None
    pace = _pace(timing, left, now)
    rest = sum(pace * history.get(stage, 0.0) * units.get(stage, 1.0) for stage in later)
    return round(max(0.0, left) + rest, 1)


def stage_rates(session: Session, kind: str, key: str) -> dict[str, float] | None:
    """Seconds per unit of each stage: the median over the key's most recent finished jobs
    (None when none finished yet)."""
    rows = session.scalars(
        select(Job.timing)
        .where(Job.kind == kind, Job.status == SUCCEEDED, Job.timing.is_not(None))
        .order_by(Job.finished_at.desc())
        .limit(10 * HISTORY_JOBS)
    ).all()
    recent = [t for t in rows if isinstance(t, dict) and t.get("key") == key]
    # A job its worker process ran first paid one-time costs: warm jobs say the rate better.
    recent = ([t for t in recent if not t.get("cold")] or recent)[:HISTORY_JOBS]
    if not recent:
        return None
    per_unit: dict[str, list[float]] = {}
    for timing in recent:
        units = timing.get("units", {})
        for stage, entry in timing.get("stages", {}).items():
            if entry.get("end") is not None and units.get(stage):
                seconds = entry["end"] - entry["start"]
                per_unit.setdefault(stage, []).append(max(0.0, seconds) / units[stage])
    return {stage: statistics.median(values) for stage, values in per_unit.items()}
