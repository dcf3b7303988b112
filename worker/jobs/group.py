"""The group method over a LoRA canvas's shards (run inside finalize): candidates by first-order
effect from the stored scores, their Δθ in the job's gradient space through the reduction's one
Cholesky factor, greedy selection, then the group columns and the strongest interactions.
The maths is the engine's (`stream.group_over_shards`, `group.select`); this module reads the
stored scores and the shards' gradient artifacts and writes the columns back."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.models import Score
from worker.influence.config import EngineConfig
from worker.influence.group import select as select_greedy
from worker.influence.stream import Solution, group_over_shards
from worker.jobs import store
from worker.jobs.context import (
    JobContext,
    artifact_store,
    gradient_key,
    shard_count,
    shard_positions,
)


def needs_group(config: EngineConfig) -> bool:
    return "group" in config.methods


def _factor_damping(solve: dict) -> float | None:
    """λ of the reduction's Cholesky factor (self-influence's and group's damping)."""
    return solve.get("self_influence_damping_absolute", solve.get("damping_absolute"))


def group_stage(
    context: JobContext,
    session: Session,
    plan: dict[str, np.ndarray],
    solution_meta: dict,
    val: dict[str, np.ndarray],
) -> dict:
    """Run the group method over the shards and write its columns and interactions inside the
    session's transaction. Returns the job's `group` metrics."""
    job_id, config = context.job_id, context.config
    if solution_meta.get("in_memory"):
        # The single-task scorer ran in the reduction: its columns are stored; add the rest.
        stored = solution_meta.get("group") or {}
        store.replace_interactions(session, job_id, stored.get("interactions", []))
        return stored.get("metrics", {})
    solution = Solution.from_arrays(artifact_store().get_arrays(context.key("solution.npz")), {})
    if "grads" not in val:
        raise RuntimeError("the group method needs the validation gradients (val.npz 'grads')")
    where = (Score.job_id == job_id, Score.split == "train")
    rows = session.execute(
        select(Score.pair_id)
        .where(*where, Score.removal_effect_influence.is_not(None))
        .order_by(Score.removal_effect_influence, Score.pair_id)
        .limit(config.group_candidates)
    ).all()
    candidates = np.asarray([r.pair_id for r in rows], dtype=np.int64)
    group = group_over_shards(
        solution,
        val["margins"],
        val["grads"],
        len(candidates),
        _candidate_shards(context, plan, candidates),
    )
    selection = select_greedy(
        group,
        len(plan["train_ids"]),
        config.prune_budget,
        damping_absolute=_factor_damping(solution_meta.get("solve") or {}),
    )
    session.execute(update(Score).where(*where).values(harm_group=0.0))
    store.upsert_scores(
        session,
        job_id,
        candidates,
        "train",
        {
            "group_order": selection.order,
            "group_gain": selection.gain,
            "harm_group": selection.harm,
        },
    )
    links = [[int(candidates[i]), int(candidates[j]), k] for i, j, k in selection.interactions]
    store.replace_interactions(session, job_id, links)
    return selection.metrics


def _candidate_shards(
    context: JobContext, plan: dict[str, np.ndarray], candidates: np.ndarray
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per shard holding candidates: their slots, margins and margin gradients, read from the
    shard's gradient artifact (what `stream.group_over_shards` consumes)."""
    slot = {int(pid): k for k, pid in enumerate(candidates)}
    for shard in range(shard_count(plan)):
        ids = plan["train_ids"][shard_positions(plan, shard)]
        inside = np.isin(ids, candidates)
        if not inside.any():
            continue
        data = artifact_store().get_arrays(gradient_key(context, shard))
        slots = np.asarray([slot[int(i)] for i in ids[inside]], dtype=np.int64)
        yield slots, data["margins"][inside], data["grads"][inside]
