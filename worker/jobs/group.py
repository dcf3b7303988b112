"""The group method over a LoRA canvas's shards (run inside finalize): candidates by first-order
effect from the stored scores, their Δθ in the job's gradient space through the reduction's one
Cholesky factor, greedy selection, then the group columns and the strongest interactions.

Keeps the sharded path's own maths (not yet dispatched through the engine's method registry)."""

from __future__ import annotations

import time

import numpy as np
from scipy.linalg import cho_solve
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.models import Score
from worker.influence.config import EngineConfig
from worker.influence.curvature import sigmoid
from worker.influence.group import GroupInfluence
from worker.influence.group import select as select_greedy
from worker.influence.stream import Solution
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
    started = time.perf_counter()
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
    group = _candidates_influence(context, plan, solution, val, candidates, started)
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


def _candidates_influence(
    context: JobContext,
    plan: dict[str, np.ndarray],
    solution: Solution,
    val: dict[str, np.ndarray],
    candidates: np.ndarray,
    started: float,
) -> GroupInfluence:
    """The candidates' GroupInfluence: each one's Δθ = (G + λI)⁻¹ g / n seen through the
    validation gradients, read shard by shard from the gradient artifacts."""
    slot = {int(pid): k for k, pid in enumerate(candidates)}
    d_val = val["grads"].astype(np.float64)
    m, n = len(val["margins"]), solution.n
    q = cho_solve((solution.factor, True), d_val.T)  # (G + λI)⁻¹ D_valᵀ [d, m]
    projected = np.zeros((m, len(candidates)))  # D_val Δθ_C
    for shard in range(shard_count(plan)):
        ids = plan["train_ids"][shard_positions(plan, shard)]
        inside = np.isin(ids, candidates)
        if not inside.any():
            continue
        data = artifact_store().get_arrays(gradient_key(context, shard))
        g = data["grads"][inside].astype(np.float64) * (-sigmoid(-data["margins"][inside]))[:, None]
        projected[:, [slot[int(i)] for i in ids[inside]]] = (q.T @ g.T) / n
    c_val = -sigmoid(-val["margins"])
    prob = sigmoid(val["margins"])
    return GroupInfluence(
        candidates=np.arange(len(candidates)),
        effect=(c_val @ projected) / m,
        factor=np.sqrt(prob * (1.0 - prob) / m)[:, None] * projected,
        seconds=time.perf_counter() - started,
    )
