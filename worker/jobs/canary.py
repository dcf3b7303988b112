"""A job's canaries (worker/influence/canaries.py) in the one-task and head paths: planted in the
training pairs before the engine runs, evaluated and dropped after it, before anything is stored.

The held-aside originals are stored as unscored rows beside the validation pairs (they were not
trained on); the canaries themselves are never stored: their rows are cut from every column, and
the group method's interactions that touch one are left out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sqlalchemy import delete, or_, update
from sqlalchemy.orm import Session

from backend.models import Interaction, Score
from worker.influence import canaries
from worker.influence.audit import AuditResult
from worker.influence.config import EngineConfig
from worker.influence.data import Pair
from worker.influence.methods import harm_column
from worker.influence.results import AuditMetrics, with_fields
from worker.influence.stream import GlobalInputs, finalise_global, global_reads
from worker.influence.trust import mislabelled_estimate, validation_trust
from worker.jobs import store
from worker.jobs.context import JobContext, artifact_store, shard_count


@dataclass(frozen=True)
class Planted:
    """The training pairs as the engine sees them, and where the canaries are."""

    positions: np.ndarray
    pairs: list[Pair]


def plant(pairs: Sequence[Pair], seed: int) -> Planted:
    positions = canaries.select_canaries(len(pairs), seed)
    return Planted(positions, canaries.plant(pairs, positions))


def swap_features(pooled: dict[str, Any], positions: np.ndarray) -> dict[str, Any]:
    """Head-mode pooled features {view: (chosen, rejected)} with the canaries' sides exchanged."""
    rows = torch.as_tensor(positions, dtype=torch.long)
    out = {}
    for name, (chosen, rejected) in pooled.items():
        c, r = chosen.clone(), rejected.clone()
        c[rows], r[rows] = rejected[rows], chosen[rows]
        out[name] = (c, r)
    return out


@dataclass(frozen=True)
class Finished:
    """What the job stores: the non-canary training pairs' scores and ids, the validation ids
    with the held-aside originals added, the metrics and the interactions (kept positions)."""

    scores: dict[str, np.ndarray]
    train_ids: list[int]
    val_ids: list[int]
    metrics: AuditMetrics
    interactions: list[tuple[int, int, float]]


def finish_result(
    result: AuditResult,
    config: EngineConfig,
    planted: Planted,
    train_ids: Sequence[int],
    val_ids: Sequence[int],
) -> tuple[list[int], list[int]]:
    """`finish`, written back into `result` (scores, metrics, interactions; the model state
    released); returns the (training, validation) pair ids to store."""
    done = finish(result, config, planted, train_ids, val_ids)
    result.scores, result.metrics = done.scores, done.metrics
    result.interactions, result.state = done.interactions, None
    return done.train_ids, done.val_ids


def finish(
    result: AuditResult,
    config: EngineConfig,
    planted: Planted,
    train_ids: Sequence[int],
    val_ids: Sequence[int],
) -> Finished:
    """Choose the default from the canaries, drop their rows, and fix up the metrics."""
    trust = result.metrics.trust.model_dump() if result.metrics.trust is not None else {}
    asked = canaries.explicit_default(config.default_method)
    scores, choice = canaries.apply(result.scores, config.methods, planted.positions, trust, asked)
    keep = ~canaries.canary_mask(len(train_ids), planted.positions)
    new_position = np.cumsum(keep) - 1
    links = [
        (int(new_position[i]), int(new_position[j]), kappa)
        for i, j, kappa in result.interactions
        if keep[i] and keep[j]
    ]
    fields: dict[str, Any] = {"default_method": choice["method"], "default_choice": choice}
    state = result.state
    if state is not None:
        margins = state.crossfit.oof_margin if state.crossfit is not None else state.margins
        source = "out_of_fold" if state.crossfit is not None else "in_sample"
        fields["mislabelled"] = mislabelled_estimate(
            np.asarray(margins)[keep], scores["harm"], source=source
        )
    held = [int(train_ids[i]) for i in planted.positions]
    return Finished(
        scores=scores,
        train_ids=[int(t) for t, k in zip(train_ids, keep, strict=True) if k],
        val_ids=[*map(int, val_ids), *held],
        metrics=with_fields(result.metrics, **fields),
        interactions=links,
    )


# --- the LoRA canvas (worker/jobs/lora.py, finalize.py) ---------------------------------------


def plan_positions(job_plan: Mapping[str, np.ndarray]) -> np.ndarray:
    """The canaries' positions in the plan's training ids (none in a plan written before them)."""
    return np.asarray(job_plan.get("canaries", np.zeros(0)), dtype=np.int64)


def swap_tokens(
    tokens: list,
    diffs: np.ndarray | None,
    plan_positions_: np.ndarray,
    canary_positions: np.ndarray,
) -> None:
    """Exchange chosen and rejected tokens (and negate the length difference) in place for the
    rows whose plan position is a canary; `plan_positions_[k]` is row k's plan position."""
    for k in np.flatnonzero(np.isin(plan_positions_, canary_positions)):
        chosen, rejected = tokens[k]
        tokens[k] = (rejected, chosen)
        if diffs is not None:
            diffs[k] = -diffs[k]


def canary_key(context: JobContext, shard: int) -> str:
    return context.key(f"canaries/{shard:05d}.npz")


def split_shard(
    context: JobContext,
    job_plan: Mapping[str, np.ndarray],
    shard: int,
    positions: np.ndarray,
    columns: dict[str, np.ndarray],
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A scoring shard's canary rows written to an artifact (finalize evaluates them), never to
    the database; returns the positions and columns of the rows to store."""
    is_canary = np.isin(positions, plan_positions(job_plan))
    if is_canary.any():
        rows = {name: np.asarray(v)[is_canary] for name, v in columns.items()}
        artifact_store().put_arrays(
            canary_key(context, shard), {**rows, "plan_positions": positions[is_canary]}
        )
    keep = ~is_canary
    return positions[keep], {name: np.asarray(v)[keep] for name, v in columns.items()}


def _gathered(
    context: JobContext, job_plan: Mapping[str, np.ndarray], names: Sequence[str]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(plan positions, columns) of every canary from the scoring shards' artifacts (NaN for a
    column no shard wrote: the global finalisers make those)."""
    positions, parts = [], []
    for shard in range(shard_count(dict(job_plan))):
        key = canary_key(context, shard)
        if artifact_store().exists(key):
            arrays = artifact_store().get_arrays(key)
            positions.append(arrays["plan_positions"])
            parts.append(arrays)
    if not parts:
        return np.zeros(0, dtype=np.int64), {n: np.zeros(0) for n in names}
    n = sum(len(p) for p in positions)
    columns = {
        name: np.concatenate([p[name] for p in parts])
        if all(name in p for p in parts)
        else np.full(n, np.nan)
        for name in names
    }
    return np.concatenate(positions).astype(np.int64), columns


def global_columns(
    session: Session,
    context: JobContext,
    job_plan: Mapping[str, np.ndarray],
    val_margins: np.ndarray,
) -> dict:
    """finalize's global columns with the canaries: the registry's finalisers over the stored
    rows and the canaries together, the default chosen on the canaries (`canaries.apply`), the
    new columns written to the stored rows, `harm` copied in SQL from the chosen column, and the
    held-aside originals stored as unscored rows beside the validation pairs. Returns metrics."""
    config, job_id = context.config, context.job_id
    train_ids = np.asarray(job_plan["train_ids"])
    reads = global_reads(config.methods)
    names = tuple(dict.fromkeys((*reads, *(harm_column(m) for m in config.methods))))
    values = store.train_columns(session, job_id, ("pair_id", *names))
    pair_ids = values[0].astype(np.int64)
    canary_pos, canary_cols = _gathered(context, job_plan, names)
    kept_pos = np.flatnonzero(~np.isin(np.arange(len(train_ids)), canary_pos))
    order = kept_pos[np.argsort(train_ids[kept_pos], kind="stable")]  # rows in pair id order
    if not np.array_equal(train_ids[order], pair_ids):
        raise RuntimeError("the stored training rows are not the plan's training pairs")
    columns = {
        n: np.concatenate([v, canary_cols[n]]) for n, v in zip(names, values[1:], strict=True)
    }
    everyone = np.concatenate([order, canary_pos])
    inputs = GlobalInputs(job_plan["train_length_diff"][everyone], job_plan["val_length_diff"])
    new, metrics = finalise_global(columns, config.methods, config.default_method, inputs)
    n_kept = len(order)
    _, choice = canaries.apply(
        {**columns, **new},
        config.methods,
        np.arange(n_kept, len(everyone)),
        validation_trust(val_margins),
        canaries.explicit_default(config.default_method),
    )
    metrics.update(default_method=choice["method"], default_choice=choice)
    new = {name: v[:n_kept] for name, v in new.items() if name != "harm"}
    if new:
        store.upsert_scores(session, job_id, pair_ids, "train", new)
    where = (Score.job_id == job_id, Score.split == "train")
    source = getattr(Score, harm_column(choice["method"]))
    session.execute(update(Score).where(*where).values(harm=source))
    held = train_ids[canary_pos]
    if len(held):
        session.execute(
            delete(Interaction).where(
                Interaction.job_id == job_id,
                or_(
                    Interaction.pair_id.in_(held.tolist()), Interaction.other_id.in_(held.tolist())
                ),
            )
        )
        store.upsert_scores(session, job_id, held, "val", {})
    return metrics


def kept_ids(job_plan: Mapping[str, np.ndarray]) -> np.ndarray:
    """The plan's training ids without the canaries (the pairs whose scores are stored)."""
    train_ids = np.asarray(job_plan["train_ids"])
    return train_ids[~np.isin(np.arange(len(train_ids)), plan_positions(job_plan))]
