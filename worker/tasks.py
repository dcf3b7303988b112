"""Celery tasks: ids in, nothing out. The logic is `worker.jobs`, testable without Celery. Tasks
are registered under the names in worker/tasknames.py, by which the API enqueues them (it never
imports this module).

The job modules load the engine (torch) when a task first runs in a worker process, not when the
worker starts: each task imports what it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery.exceptions import Ignore

from worker import tasknames
from worker.celery_app import celery_app


def _stage(task: Any, job_id: int, stage: str, shard: int, work: Callable[..., None]) -> str:
    from worker.jobs.claims import Busy, run_stage  # torch: heavy, loaded at the first task

    try:
        return run_stage(job_id, stage, shard, work, celery_id=task.request.id)
    except Busy:
        # A live process runs this task; its own delivery finishes the canvas.
        raise Ignore() from None


@celery_app.task(name=tasknames.RUN_JOB, bind=True)
def run_job(self: Any, job_id: int, resume: bool = False) -> str:
    """Start job `job_id`: dispatch a sharded audit's canvas, or run any other job here."""
    from worker.jobs import single  # torch: heavy, loaded at the first task

    return single.run_job(job_id, resume=resume)


@celery_app.task(name=tasknames.TRAIN, bind=True)
def train(self: Any, job_id: int) -> str:
    from worker.jobs import lora  # torch: heavy, loaded at the first task

    return _stage(self, job_id, "train", 0, lora.train)


@celery_app.task(name=tasknames.GRADIENTS, bind=True, ignore_result=False)
def gradients(self: Any, job_id: int, shard: int) -> str:
    from worker.jobs import lora  # torch: heavy, loaded at the first task

    return _stage(self, job_id, "gradients", shard, lambda c, r: lora.gradients(c, r, shard))


@celery_app.task(name=tasknames.REDUCE, bind=True)
def reduce(self: Any, job_id: int) -> str:
    from worker.jobs import lora  # torch: heavy, loaded at the first task

    return _stage(self, job_id, "reduce", 0, lora.reduce)


@celery_app.task(name=tasknames.SCORES, bind=True, ignore_result=False)
def scores(self: Any, job_id: int, shard: int) -> str:
    from worker.jobs import lora  # torch: heavy, loaded at the first task

    return _stage(self, job_id, "scores", shard, lambda c, r: lora.scores(c, r, shard))


@celery_app.task(name=tasknames.FINALIZE, bind=True)
def finalize(self: Any, job_id: int) -> str:
    from worker.jobs.finalize import finalize  # torch: heavy, loaded at the first task

    return _stage(self, job_id, "finalize", 0, finalize)


@celery_app.task(name=tasknames.FEATURES, bind=True, ignore_result=False)
def features(self: Any, job_id: int, shard: int) -> str:
    from worker.jobs import head as flow  # torch: heavy, loaded at the first task

    return _stage(self, job_id, "features", shard, lambda c, r: flow.features(c, r, shard))


@celery_app.task(name=tasknames.REWARDS, bind=True, ignore_result=False)
def rewards(self: Any, job_id: int, shard: int) -> str:
    from worker.jobs import rewards as flow  # torch: heavy, loaded at the first task

    return _stage(self, job_id, "rewards", shard, lambda c, r: flow.rewards(c, r, shard))


@celery_app.task(name=tasknames.HEAD, bind=True)
def head(self: Any, job_id: int) -> str:
    from worker.jobs.head import head as fit_head  # torch: heavy, loaded at the first task

    return _stage(self, job_id, "head", 0, fit_head)
