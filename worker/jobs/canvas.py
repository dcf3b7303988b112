"""Which audits run as a Celery canvas, the canvas itself (immutable signatures by task name),
and its dispatch: task rows recorded with their Celery ids, then the canvas sent.

    lora:      train ─▶ chord(gradients[shard]) ─▶ reduce ─▶ chord(scores[shard]) ─▶ finalize
    features:  chord(features[shard]) ─▶ head
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from celery import chain, chord, group
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.db import get_sessionmaker
from backend.job_states import QUEUED, RUNNING, SUCCEEDED
from backend.models import Dataset, Job, JobTask, utcnow
from worker.celery_app import celery_app
from worker.influence.config import EngineConfig
from worker.influence.data import validation_size
from worker.influence.stream import unsupported
from worker.jobs import rewards, store
from worker.jobs.context import effective_shard_size, feature_blocks, n_shards
from worker.tasknames import STAGE_TASKS

log = logging.getLogger(__name__)


def canvas_kind(config: EngineConfig) -> str | None:
    """'lora' or 'features' (the canvas an audit with this config runs as), or None where it
    runs in one task (see worker.influence.stream.unsupported)."""
    if config.mode in ("head", "pretrained"):
        return "features"
    return "lora" if unsupported(config) is None else None


def sharded(config: dict[str, Any]) -> bool:
    """Whether an audit's stored options run as a canvas of shards (a targeted audit runs in
    one task: the canvas has no target stage)."""
    if config.get("target_set_id") is not None:
        return False
    return canvas_kind(store.audit_options(config).engine_config()) is not None


def canvas(
    job_id: int, shards: int, kind: str = "lora", reward_tasks: int = 0
) -> tuple[Any, dict[tuple[str, int], str]]:
    """The job's Celery canvas (immutable signatures by task name: ids in, nothing passed on)
    and the Celery id given to each (stage, shard), so a cancel can revoke what is queued.
    `reward_tasks` outside reward-model tasks join the first group (features, or gradients); the
    last stage (head, finalize) waits for them."""
    ids: dict[tuple[str, int], str] = {}
    # Lists, not generators: a group keeps a generator lazy, and `ids` must be complete before
    # the caller records the tasks.

    def sig(stage: str, shard: int | None = None) -> Any:
        task_id = str(uuid.uuid4())
        ids[(stage, shard or 0)] = task_id
        args = (job_id,) if shard is None else (job_id, shard)
        signature = celery_app.signature(STAGE_TASKS[stage], args=args, immutable=True)
        return signature.set(task_id=task_id)

    if kind == "features":
        first = [sig("features", s) for s in range(shards)]
        rewards_group = [sig("rewards", s) for s in range(reward_tasks)]
        return chord(group(first + rewards_group), sig("head")), ids
    flow = chain(
        sig("train"),
        chord(
            group(
                [sig("gradients", s) for s in range(shards)]
                + [sig("rewards", s) for s in range(reward_tasks)]
            ),
            sig("reduce"),
        ),
        chord(group([sig("scores", s) for s in range(shards)]), sig("finalize")),
    )
    return flow, ids


def dispatch(
    job_id: int,
    n_train: int,
    config: EngineConfig,
    factory: Callable[[], Session] | None = None,
    n_val: int = 0,
    n_reward_models: int = 0,
) -> str:
    """Record the job's tasks (queued, with their Celery ids) and send its canvas; returns the
    id of the first task. Rows of finished tasks keep their state: a re-dispatch skips them."""
    factory = factory or get_sessionmaker()
    kind = canvas_kind(config) or "lora"
    if kind == "features":
        count = len(feature_blocks(n_train, n_val, effective_shard_size(config)))
    else:
        count = n_shards(n_train, config)
    flow, ids = canvas(job_id, count, kind, rewards.task_count(n_reward_models, n_train, config))
    with factory() as session:
        existing = {
            (row.stage, row.shard): row
            for row in session.scalars(select(JobTask).where(JobTask.job_id == job_id))
        }
        for (stage, shard), task_id in ids.items():
            row = existing.get((stage, shard))
            if row is None:
                session.add(
                    JobTask(
                        job_id=job_id, stage=stage, shard=shard, status=QUEUED, celery_id=task_id
                    )
                )
            elif row.status != SUCCEEDED:
                row.celery_id = task_id
        session.commit()
    flow.apply_async()
    return ids[("features", 0) if kind == "features" else ("train", 0)]


def dispatch_sharded(factory: Callable[[], Session], job_id: int, resume: bool) -> str:
    """Claim a queued sharded audit and send its canvas (again, with `resume`, for a running one
    whose tasks were lost: done tasks return at once). Returns the job's status."""
    with factory() as session:
        claimed = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == QUEUED)
            .values(status=RUNNING, stage="queued", progress=0.0, started_at=utcnow())
        ).rowcount  # type: ignore[attr-defined]
        session.commit()
        job = session.get(Job, job_id)
        assert job is not None
        has_tasks = session.scalar(select(JobTask.id).where(JobTask.job_id == job_id).limit(1))
        if not claimed and not resume and has_tasks is not None:
            return job.status  # a second delivery of a job whose canvas is already out
        if job.status != RUNNING:
            return job.status
        options = store.audit_options(job.config)
        dataset = session.get(Dataset, job.dataset_id)
        assert dataset is not None
        if options.val_dataset_id is not None:
            n_train = dataset.n_pairs
            val_dataset = session.get(Dataset, options.val_dataset_id)
            n_val = val_dataset.n_pairs if val_dataset is not None else 0
        else:
            n_val = validation_size(dataset.n_pairs, options.val_fraction)
            n_train = dataset.n_pairs - n_val
        config = options.engine_config()
        first = dispatch(
            job_id, n_train, config, n_val=n_val, n_reward_models=len(options.reward_models)
        )
        if claimed:
            job.task_id = first
            session.commit()
    log.info("job %s: %s sharded canvas", job_id, "re-dispatched" if resume else "dispatched")
    return RUNNING
