"""The LoRA canvas's stages before the fan-in: train, per-shard gradients, the reduction and
per-shard scores (finalize is worker/jobs/finalize.py).

    train ─▶ chord(gradients[shard]) ─▶ reduce ─▶ chord(scores[shard]) ─▶ finalize

Tasks pass ids, never tensors: arrays go through the artifact store under a hash of the
configuration (worker/jobs/context.py), so a rerun of the same configuration reuses them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import numpy as np
import torch

from worker.influence import canaries
from worker.influence.audit import Fitted, save_reward_model, score_fitted
from worker.influence.features import truncation_rate
from worker.influence.methods import MethodName
from worker.influence.model import Encoded
from worker.influence.stream import (
    Reduction,
    ShardStats,
    Solution,
    local_methods,
    needs_solution,
    score_shard,
    shard_gradients,
    shard_positions,
    shard_stats,
    validation_gradient_streamed,
)
from worker.influence.train import Cancelled, check_cancel, train_reward_model
from worker.jobs import canary, models, store
from worker.jobs.claims import TaskRun, await_stage, peak_rss_mb
from worker.jobs.context import (
    JobContext,
    artifact_store,
    effective_shard_size,
    gradient_key,
    plan,
    shard_count,
    split_ids,
)
from worker.jobs.context import shard_positions as positions_of
from worker.jobs.group import needs_group


def train(context: JobContext, run: TaskRun) -> None:
    """Tokenise, split, train; write the adapter, the plan and the validation gradient."""
    config, factory = context.config, run.factory
    if artifact_store().exists(context.key("train.json")):
        return  # a rerun of the same configuration: the model and plan exist
    models.fresh_adapters()
    run.label = "loading_model"
    rm, tokenizer = models.reward_model(context, trained=False)
    run.label = "loading_data"
    with factory() as session:
        train_ids, val_ids, val_in_dataset = split_ids(session, context)
        train_tokens, train_diffs = models.encode_by_ids(
            session, tokenizer, train_ids, config.max_length
        )
        val_tokens, val_diffs = models.encode_by_ids(session, tokenizer, val_ids, config.max_length)
        store.tag_truncation(
            session, context.job_id, context.dataset_id, tokenizer, config.max_length
        )
    if len(train_ids) < 2 or len(val_ids) < 1:
        raise ValueError(f"{len(train_ids)} training and {len(val_ids)} validation pairs: too few")
    # Canaries (worker/jobs/canary.py): these training pairs are trained on swapped.
    canary_positions = canaries.select_canaries(len(train_ids), config.seed)
    canary.swap_tokens(train_tokens, train_diffs, np.arange(len(train_ids)), canary_positions)
    pad = int(tokenizer.pad_token_id)
    train_enc, val_enc = Encoded(train_tokens, pad), Encoded(val_tokens, pad)
    run.pairs = len(train_enc)

    def progress(stage: str, fraction: float, message: str | None = None) -> None:
        run.progress(0.9 * fraction, message)

    run.label = "training"
    training = train_reward_model(rm, train_enc, val_enc, config, progress, run.should_cancel)
    model_dir = None
    if config.save_model:
        target = store.model_dir(factory, context.dataset_id, context.job_id)
        model_dir = str(save_reward_model(rm, tokenizer, target))
    run.label = "per_pair_gradients"
    space = models.space(context, rm.n_params, len(train_enc))
    projector = models.projector(context, rm, space)
    chunk = config.chunk_size(rm.device.type)
    val_margins, g_val, val_grads = validation_gradient_streamed(
        rm, val_enc, chunk, projector, should_cancel=run.should_cancel, keep=needs_group(config)
    )
    run.progress(1.0)
    order = shard_positions(train_enc.lengths(), effective_shard_size(config), chunk)
    ids = {
        "train_ids": train_ids,
        "val_ids": val_ids,
        "val_in_dataset": val_in_dataset,
        "canaries": canary_positions,
    }
    _write_training(
        context,
        rm,
        ids,
        order,
        {"train_length_diff": train_diffs, "val_length_diff": val_diffs},
        {"margins": val_margins, "g_val": g_val, "grads": val_grads},
    )
    artifact_store().put_json(
        context.key("train.json"),
        {
            "history": training.history,
            "epoch_seconds": training.seconds_per_epoch,
            "n_trainable_params": rm.n_params,
            "space": space.kind,
            "projection": projector.describe() if projector is not None else None,
            "warnings": list(space.warnings),
            "shards": len(order),
            "device": str(rm.device),
            "truncation_rate": {
                "train": truncation_rate(train_enc, config.max_length),
                "val": truncation_rate(val_enc, config.max_length),
            },
            "train_peak_rss_mb": peak_rss_mb(),
            "model_dir": model_dir,
        },
    )


def _write_training(
    context: JobContext,
    rm: Any,
    ids: dict[str, np.ndarray],
    order: list[np.ndarray],
    lengths: dict[str, np.ndarray],
    val: dict[str, Any],
) -> None:
    """The adapter weights, the plan (ids, the shards' order, length differences) and the
    validation margins and gradient (its per-pair gradients when the group method needs them)."""
    artifacts = artifact_store()
    artifacts.put_arrays(
        context.key("adapter.npz"),
        {name: p.detach().cpu().numpy() for name, p in rm.params.items()},
    )
    artifacts.put_arrays(
        context.key("plan.npz"),
        {
            **ids,
            "order": np.concatenate(order),
            "shard_size": np.asarray(len(order[0])),
            **lengths,
        },
    )
    artifacts.put_arrays(context.key("val.npz"), {k: v for k, v in val.items() if v is not None})


def gradients(context: JobContext, run: TaskRun, shard: int) -> None:
    """Per-pair margin gradients of one shard (projected when the job projects)."""
    key = gradient_key(context, shard)
    if artifact_store().exists(key):
        return
    job_plan = plan(context)
    positions = positions_of(job_plan, shard)
    if len(positions) == 0:
        raise ValueError(f"shard {shard} is empty: the plan has {len(job_plan['order'])} pairs")
    meta = artifact_store().get_json(context.key("train.json"))
    # A cancel that lands while the shard loads its model is seen before the next step, not only
    # once the gradient loop polls: loading takes seconds on a busy machine.
    check_cancel(run.should_cancel)
    rm, tokenizer = models.reward_model(context, trained=True)
    check_cancel(run.should_cancel)
    space = models.space(context, rm.n_params, len(job_plan["train_ids"]))
    if meta.get("space") != space.kind:
        raise RuntimeError("the shard's gradient space differs from the training task's")
    projector = models.projector(context, rm, space)
    pair_ids = job_plan["train_ids"][positions]
    with run.factory() as session:
        tokens, _ = models.encode_by_ids(session, tokenizer, pair_ids, context.config.max_length)
    canary.swap_tokens(tokens, None, positions, canary.plan_positions(job_plan))
    check_cancel(run.should_cancel)
    run.pairs = len(tokens)
    margins, grads = shard_gradients(
        rm,
        Encoded(tokens, int(tokenizer.pad_token_id)),
        context.config.chunk_size(rm.device.type),
        projector,
        run.progress,
        run.should_cancel,
    )
    stats = shard_stats(margins, grads, models.blocks(rm, projector))
    artifact_store().put_arrays(key, {"margins": margins, "grads": grads, **stats.as_arrays()})


def reduce(context: JobContext, run: TaskRun) -> None:
    """The curvature over every shard, one factorisation, the solve."""
    artifacts = artifact_store()
    if artifacts.exists(context.key("solution.json")):
        return
    job_plan = plan(context)
    await_stage(run, "gradients", shard_count(job_plan))
    meta = artifacts.get_json(context.key("train.json"))
    keys = [gradient_key(context, s) for s in range(shard_count(job_plan))]
    if meta["space"] == "in_memory":
        _reduce_in_memory(context, run, job_plan, keys)
        return
    if not needs_solution(context.config.methods):
        artifacts.put_json(context.key("solution.json"), {"solve": None})
        return
    stats = [ShardStats.from_arrays(artifacts.get_arrays(k)) for k in keys]
    val = artifacts.get_arrays(context.key("val.npz"))
    rm, _ = models.reward_model(context, trained=False)
    space = models.space(context, rm.n_params, len(job_plan["train_ids"]))
    blocks = models.blocks(rm, models.projector(context, rm, space))
    reduction = Reduction.start(stats, blocks, val["g_val"], n_params=rm.n_params)
    for k, key in enumerate(keys):
        shard = artifacts.get_arrays(key)
        reduction.add(shard["margins"], shard["grads"], "datainf" in context.config.methods)
        run.progress(0.9 * (k + 1) / len(keys))
        if run.should_cancel():
            raise Cancelled("cancelled by request")
    # u fills the influence columns; asked only for group, they are group's first-order effects,
    # damped like its factor (as the single-task engine's group does).
    config = context.config
    influence = config.influence_solve_damping() if "influence" in config.methods else None
    solution = reduction.solve(config.damping, influence)
    artifacts.put_arrays(context.key("solution.npz"), solution.as_arrays())
    artifacts.put_json(
        context.key("solution.json"),
        {
            "solve": solution.metrics,
            "max_scaled_norm": max(s.max_scaled_norm for s in stats),
            "val_gradient_norm": float(np.linalg.norm(val["g_val"])),
        },
    )


def _reduce_in_memory(
    context: JobContext, run: TaskRun, job_plan: dict[str, np.ndarray], keys: list[str]
) -> None:
    """Exact gradients too many for a dense curvature: the single-task engine's scorer on all of
    them (small jobs only), each shard's scores written back as an artifact."""
    artifacts = artifact_store()
    shards = [artifacts.get_arrays(k) for k in keys]
    val = artifacts.get_arrays(context.key("val.npz"))
    rm, _ = models.reward_model(context, trained=False)
    fitted = Fitted(
        rm=None,
        margins=np.concatenate([s["margins"] for s in shards]),
        grads=torch.from_numpy(np.concatenate([s["grads"] for s in shards])),
        val_margins=val["margins"],
        val_grads=torch.from_numpy(val["grads"]) if "grads" in val else None,
        blocks=rm.blocks(),
        g_val=torch.from_numpy(val["g_val"]),
    )
    # Methods with a global finaliser (length, corrected_loss) run in finalize over every pair.
    methods = cast(list[MethodName], local_methods(context.config.methods) or ["loss"])
    config = dataclasses.replace(context.config, methods=methods)
    scores, metrics, warnings = score_fitted(fitted, config)
    start = 0
    for k, shard in enumerate(shards):
        stop = start + len(shard["margins"])
        columns = {name: values[start:stop] for name, values in scores.items() if name != "harm"}
        artifacts.put_arrays(context.key(f"scores/{k:05d}.npz"), columns)
        start = stop
        run.progress((k + 1) / len(shards))
    group = None
    if "group" in metrics:
        # Positions of `fitted` follow the shards: the plan's order.
        ids = job_plan["train_ids"][job_plan["order"]]
        group = {
            "metrics": metrics["group"],
            "interactions": [[int(ids[i]), int(ids[j]), k] for i, j, k in fitted.interactions],
        }
    artifacts.put_json(
        context.key("solution.json"),
        {
            "solve": metrics.get("influence"),
            "warnings": warnings,
            "in_memory": True,
            "group": group,
        },
    )


def scores(context: JobContext, run: TaskRun, shard: int) -> None:
    """Every per-pair score of one shard, upserted by (job, pair)."""
    artifacts = artifact_store()
    job_plan = plan(context)
    positions = positions_of(job_plan, shard)
    pair_ids = job_plan["train_ids"][positions]
    solution_meta = artifacts.get_json(context.key("solution.json"))
    methods = context.config.methods
    if solution_meta.get("in_memory"):
        columns = artifacts.get_arrays(context.key(f"scores/{shard:05d}.npz"))
    else:
        data = artifacts.get_arrays(gradient_key(context, shard))
        solution = None
        if solution_meta.get("solve") is not None:
            solution = Solution.from_arrays(
                artifacts.get_arrays(context.key("solution.npz")), solution_meta["solve"]
            )
        columns = score_shard(
            data["margins"],
            data["grads"],
            solution,
            methods,
            float(solution_meta.get("max_scaled_norm", 0.0)),
        )
    # The canaries' rows go to an artifact for finalize, never to the database.
    positions, columns = canary.split_shard(context, job_plan, shard, positions, columns)
    pair_ids = job_plan["train_ids"][positions]
    run.pairs = len(pair_ids)
    with run.factory() as session:
        store.upsert_scores(session, context.job_id, pair_ids, "train", columns, run.progress)
        session.commit()
