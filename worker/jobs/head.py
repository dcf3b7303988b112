"""The head canvas (modes 'head' and 'pretrained'): the backbone's pooled features shard by shard,
then one head fit that scores every pair.

    chord(features[shard]) ─▶ head

The backbone's forward passes over every pair are the whole cost: `features` (GPU queue, one task
per block of training or validation pairs) writes their pooled features, and `head` (CPU queue)
fits the head on them and scores every pair, exactly as the single-task engine does from the
same features."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from sqlalchemy import select

from backend.models import JobTask
from worker.influence.audit import run_audit
from worker.influence.features import backbone_features
from worker.influence.model import Encoded, resolve_device
from worker.influence.results import with_fields
from worker.jobs import canary, models, rewards, store
from worker.jobs.claims import TaskRun, await_stage, peak_rss_mb
from worker.jobs.context import (
    JobContext,
    artifact_store,
    effective_shard_size,
    feature_blocks,
    split_ids,
)

_POOLED_SIDES = ("chosen", "rejected")


def features(context: JobContext, run: TaskRun, shard: int) -> None:
    """The pooled backbone features of one block of training or validation pairs."""
    artifacts, config = artifact_store(), context.config
    key = context.key(f"features/{shard:05d}.npz")
    if artifacts.exists(key):
        return
    run.label = "loading_model"
    backbone, tokenizer = models.backbone(config)
    with run.factory() as session:
        train_ids, val_ids, _ = split_ids(session, context)
        blocks = feature_blocks(len(train_ids), len(val_ids), effective_shard_size(config))
        if shard >= len(blocks):
            raise ValueError(f"feature shard {shard} of {len(blocks)}: the dataset changed")
        split, start, stop = blocks[shard]
        ids = (train_ids if split == "train" else val_ids)[start:stop]
        tokens, _ = models.encode_by_ids(session, tokenizer, ids, config.max_length)
        if shard == 0:  # once per job: the exact checks that need its tokenizer (tags)
            store.tag_truncation(
                session, context.job_id, context.dataset_id, tokenizer, config.max_length
            )
    run.pairs = len(ids)
    run.label = "extracting_features"
    device = resolve_device(config.device)
    pooled = backbone_features(
        backbone,
        Encoded(tokens, int(tokenizer.pad_token_id)),
        device,
        2 * config.chunk_size(device.type),
        run.progress,
        run.should_cancel,
    )
    # The backbone computes in fp32 (or less), so fp32 storage loses nothing.
    arrays = {
        f"{name}_{side}": tensor.float().cpu().numpy()
        for name, pair in pooled.items()
        for side, tensor in zip(_POOLED_SIDES, pair, strict=True)
    }
    artifacts.put_arrays(key, {**arrays, "pair_ids": ids})


def _gather_features(
    context: JobContext, blocks: list[tuple[str, int, int]], ids: dict[str, np.ndarray]
) -> dict[str, Any]:
    """{split: Pooled} from the feature shards, checked against the split's pair ids."""
    artifacts = artifact_store()
    parts: dict[str, list[dict[str, np.ndarray]]] = {"train": [], "val": []}
    for shard, (split, start, stop) in enumerate(blocks):
        arrays = artifacts.get_arrays(context.key(f"features/{shard:05d}.npz"))
        if not np.array_equal(arrays["pair_ids"], ids[split][start:stop]):
            raise RuntimeError(f"feature shard {shard} holds other pairs than the job's {split}")
        parts[split].append(arrays)
    out: dict[str, Any] = {}
    for split, shards in parts.items():
        names = sorted({key.rsplit("_", 1)[0] for key in shards[0] if key != "pair_ids"})
        out[split] = {
            name: tuple(
                torch.from_numpy(np.concatenate([a[f"{name}_{side}"] for a in shards])).double()
                for side in _POOLED_SIDES
            )
            for name in names
        }
    return out


def head(context: JobContext, run: TaskRun) -> None:
    """Fit the head on the gathered features and score every pair (the single-task engine's
    code from `run_audit` on), then store the scores and finish the job."""
    config, factory = context.config, run.factory
    with factory() as session:
        train_ids, val_ids, val_in_dataset = split_ids(session, context)
    blocks = feature_blocks(len(train_ids), len(val_ids), effective_shard_size(config))
    await_stage(run, "features", len(blocks))
    n_models = len(context.options.reward_models)
    await_stage(run, "rewards", rewards.task_count(n_models, len(train_ids), config))
    pooled = _gather_features(context, blocks, {"train": train_ids, "val": val_ids})
    with factory() as session:
        train_pairs = store.pairs_by_ids(session, train_ids)
        val_pairs = store.pairs_by_ids(session, val_ids)
    run.pairs = len(train_pairs)
    started = time.perf_counter()

    def progress(stage: str, fraction: float, message: str | None = None) -> None:
        run.progress(fraction, message)

    # Canaries (worker/jobs/canary.py): planted before the fit, evaluated and dropped after.
    planted = canary.plant(train_pairs, config.seed)
    result = run_audit(
        planted.pairs,
        val_pairs,
        config,
        progress=progress,
        should_cancel=run.should_cancel,
        features=(canary.swap_features(pooled["train"], planted.positions), pooled["val"]),
        keep_state=True,
    )
    kept, val_stored = canary.finish_result(
        result, config, planted, train_ids.tolist(), val_in_dataset.tolist()
    )
    train_ids = np.asarray(kept, dtype=np.int64)
    with factory() as session:
        tasks = session.execute(
            select(JobTask.stage, JobTask.seconds, JobTask.peak_rss_mb).where(
                JobTask.job_id == context.job_id, JobTask.stage == "features"
            )
        ).all()
    metrics = with_fields(
        result.metrics,
        n_train=len(train_ids),
        n_val=len(val_ids),
        validation_source=store.validation_source(context.options, config.seed),
        engine="sharded features",
        shards=len(blocks),
        feature_task_seconds=round(sum(t.seconds or 0.0 for t in tasks), 3),
        worker_peak_rss_mb=max([t.peak_rss_mb or 0.0 for t in tasks] + [peak_rss_mb()]),
        head_seconds=round(time.perf_counter() - started, 3),
    )
    reward_summary = rewards.merge(context, factory, train_ids, result.scores)
    if reward_summary is not None:
        metrics = with_fields(metrics, reward_models=reward_summary)
    store.save_scores(
        factory,
        context.job_id,
        train_ids.tolist(),
        val_stored,
        result.scores,
        metrics,
        result.interactions,
    )
