"""Celery tasks: ids in, nothing out. The logic is `worker.pipeline` and `worker.shards`,
testable without Celery. Tasks are enqueued by name (backend.job_states.RUN_JOB_TASK), so the API
never imports this module."""

from __future__ import annotations

from typing import Any

from celery.exceptions import Ignore

from worker import pipeline, shards
from worker.celery_app import celery_app


@celery_app.task(name="prefaudit.run_job", bind=True)
def run_job(self: Any, job_id: int, resume: bool = False) -> str:
    """Start job `job_id`: dispatch a sharded audit's canvas, or run any other job here."""
    return pipeline.run_job(job_id, resume=resume)


def _stage(task: Any, job_id: int, stage: str, shard: int, work: Any) -> str:
    try:
        return shards.run_stage(job_id, stage, shard, work, celery_id=task.request.id)
    except shards.Busy:
        # A live process runs this task; its own delivery finishes the canvas.
        raise Ignore() from None


@celery_app.task(name="prefaudit.train", bind=True)
def train(self: Any, job_id: int) -> str:
    return _stage(self, job_id, "train", 0, shards.train)


@celery_app.task(name="prefaudit.gradients", bind=True, ignore_result=False)
def gradients(self: Any, job_id: int, shard: int) -> str:
    return _stage(self, job_id, "gradients", shard, lambda c, r: shards.gradients(c, r, shard))


@celery_app.task(name="prefaudit.reduce", bind=True)
def reduce(self: Any, job_id: int) -> str:
    return _stage(self, job_id, "reduce", 0, shards.reduce)


@celery_app.task(name="prefaudit.scores", bind=True, ignore_result=False)
def scores(self: Any, job_id: int, shard: int) -> str:
    return _stage(self, job_id, "scores", shard, lambda c, r: shards.scores(c, r, shard))


@celery_app.task(name="prefaudit.finalize", bind=True)
def finalize(self: Any, job_id: int) -> str:
    return _stage(self, job_id, "finalize", 0, shards.finalize)


@celery_app.task(name="prefaudit.features", bind=True, ignore_result=False)
def features(self: Any, job_id: int, shard: int) -> str:
    return _stage(self, job_id, "features", shard, lambda c, r: shards.features(c, r, shard))


@celery_app.task(name="prefaudit.head", bind=True)
def head(self: Any, job_id: int) -> str:
    return _stage(self, job_id, "head", 0, shards.head)
