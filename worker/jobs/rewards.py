"""An audit's outside reward models (`reward_models`): their margins shard by shard on the GPU
queue, then their vote, merged into the job's training scores by its last stage.

One `rewards` task per (model, block of training pairs), model-major, so a worker that takes them
in order loads each model once (the model is cached per process). Each writes the block's margins
as an artifact keyed by the model and max_length; the flow's last stage (head, finalize, or the
single task itself) gathers them, computes the vote (worker/influence/reward_models.py) and stores
the columns rm_margin_k, rm_mean, rm_spread, rm_votes_against, rm_ambiguous with the scores.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np

from worker.influence.config import EngineConfig
from worker.influence.model import Encoded, resolve_device
from worker.influence.results import RewardModelsSummary
from worker.influence.reward_models import load_reward_model, model_key, rewards_margins, summary
from worker.influence.reward_models import vote as vote_columns
from worker.influence.train import ShouldCancel
from worker.jobs import models as job_models
from worker.jobs.claims import TaskRun
from worker.jobs.context import (
    JobContext,
    artifact_store,
    effective_shard_size,
    load_context,
    split_ids,
)
from worker.jobs.store import Factory

Block = tuple[int, int]


def blocks(n_train: int, config: EngineConfig) -> list[Block]:
    """(start, stop) of each block of training pairs, in the split's order."""
    size = effective_shard_size(config)
    return [(s, min(s + size, n_train)) for s in range(0, n_train, size)]


def task_count(n_models: int, n_train: int, config: EngineConfig) -> int:
    """An audit's `rewards` tasks: one per (model, block); 0 for an audit naming no models."""
    return n_models * len(blocks(n_train, config))


def _key(context: JobContext, source: str, block: Block) -> str:
    name = model_key(source, context.config.max_length)
    return context.key(f"rewards/{name}/{block[0]:09d}-{block[1]:09d}.npz")


@lru_cache(maxsize=1)
def _model(source: str) -> tuple[Any, Any]:
    """One reward model per process at a time: the tasks run model-major."""
    return load_reward_model(source)


def score_block(
    context: JobContext,
    factory: Factory,
    train_ids: np.ndarray,
    task: int,
    progress: Callable[[float], None] | None = None,
    should_cancel: ShouldCancel | None = None,
) -> int:
    """Task `task`'s margins (model task // blocks, block task % blocks), written once as an
    artifact; returns the pairs it scored (0 when the artifact was already there)."""
    config, sources = context.config, context.options.reward_models
    plan = blocks(len(train_ids), context.config)
    if task >= len(sources) * len(plan):
        raise ValueError(f"reward task {task} of {len(sources) * len(plan)}: the dataset changed")
    source, block = sources[task // len(plan)], plan[task % len(plan)]
    key = _key(context, source, block)
    artifacts = artifact_store()
    if artifacts.exists(key):
        return 0
    model, tokenizer = _model(source)
    ids = train_ids[block[0] : block[1]]
    with factory() as session:
        tokens, _ = job_models.encode_by_ids(session, tokenizer, ids, config.max_length)
    device = resolve_device(config.device)
    margins = rewards_margins(
        model,
        Encoded(tokens, int(tokenizer.pad_token_id)),
        device,
        2 * config.chunk_size(device.type),
        progress,
        should_cancel,
    )
    artifacts.put_arrays(key, {"margins": margins, "pair_ids": ids})
    return len(ids)


def rewards(context: JobContext, run: TaskRun, shard: int) -> None:
    """The `rewards` stage's task `shard` (GPU queue)."""
    with run.factory() as session:
        train_ids, _, _ = split_ids(session, context)
    run.label = "scoring_reward_models"
    run.pairs = score_block(context, run.factory, train_ids, shard, run.progress, run.should_cancel)


def score_all(
    context: JobContext,
    factory: Factory,
    progress: Callable[[float], None] | None = None,
    should_cancel: ShouldCancel | None = None,
) -> None:
    """Every task of the stage in this process (the single-task path)."""
    with factory() as session:
        train_ids, _, _ = split_ids(session, context)
    count = task_count(len(context.options.reward_models), len(train_ids), context.config)
    for task in range(count):
        score_block(context, factory, train_ids, task, None, should_cancel)
        if progress is not None:
            progress((task + 1) / count)


def gather(context: JobContext, train_ids: np.ndarray) -> np.ndarray:
    """The models' margins [K, len(train_ids)] over `train_ids` (the split's order), from the
    stage's artifacts (each checked against the pairs it should hold)."""
    sources = context.options.reward_models
    margins = np.empty((len(sources), len(train_ids)))
    artifacts = artifact_store()
    for k, source in enumerate(sources):
        for block in blocks(len(train_ids), context.config):
            arrays = artifacts.get_arrays(_key(context, source, block))
            if not np.array_equal(arrays["pair_ids"], train_ids[block[0] : block[1]]):
                raise RuntimeError(f"reward margins of {source!r} hold other pairs than the job's")
            margins[k, block[0] : block[1]] = arrays["margins"]
    return margins


def merge(
    context: JobContext,
    factory: Factory,
    train_ids: np.ndarray | list[int],
    scores: dict[str, np.ndarray],
) -> RewardModelsSummary | None:
    """Add the reward-model columns of the pairs `train_ids` (the stored training pairs, in the
    caller's order: canaries left out) to `scores`; returns the summary over those pairs for the
    job's metrics, or None for an audit naming no models."""
    if not context.options.reward_models:
        return None
    started = time.perf_counter()
    with factory() as session:
        split_train, _, _ = split_ids(session, context)
    margins = gather(context, split_train)
    position = {int(pid): k for k, pid in enumerate(split_train)}
    try:
        where = np.asarray([position[int(pid)] for pid in train_ids], dtype=np.int64)
    except KeyError as exc:
        raise RuntimeError(f"pair {exc} is not among the job's training pairs") from None
    scores.update(vote_columns(margins[:, where]))
    found = summary(context.options.reward_models, margins[:, where])
    found["seconds"] = round(time.perf_counter() - started, 3)
    return RewardModelsSummary.model_validate(found)


def in_process(
    factory: Factory,
    job_id: int,
    train_ids: list[int],
    scores: dict[str, np.ndarray],
    progress: Callable[[str, float], None],
    should_cancel: ShouldCancel,
) -> dict[str, Any]:
    """The single-task path: every reward task here, then the columns added to `scores`;
    returns the metrics to add ({} for an audit naming no models)."""
    context = load_context(factory, job_id)
    if not context.options.reward_models:
        return {}
    score_all(context, factory, lambda f: progress("scoring_reward_models", f), should_cancel)
    return {"reward_models": merge(context, factory, train_ids, scores)}
