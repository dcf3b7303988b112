"""Celery tasks: ids in, status out. The logic is `worker.pipeline`, testable without Celery."""

from __future__ import annotations

from worker import pipeline
from worker.celery_app import celery_app


@celery_app.task(name="prefaudit.run_job")
def run_job(job_id: int) -> str:
    """Run job `job_id` to completion; returns its final status."""
    return pipeline.run_job(job_id)
