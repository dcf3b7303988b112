"""A job start to finish: `run_job` sends a sharded audit's canvas (worker/jobs/canvas.py), and
runs every other job here, in one claimed task: load pairs, split, call the engine, store scores,
record the outcome.

Job state lives in the database. Every write is guarded by `status == 'running'`, so a job
cancelled through the API is never flipped back, and a redelivered task for a finished job
does nothing.
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import Any

from backend.db import get_sessionmaker
from backend.job_states import CANCELLED, FAILED, FINISHED, SUCCEEDED
from backend.models import Job, utcnow
from worker.influence.audit import run_audit
from worker.influence.data import split_validation
from worker.influence.model import load_tokenizer
from worker.influence.results import with_fields
from worker.influence.train import Cancelled
from worker.jobs import canary, rewards, store
from worker.jobs.canvas import dispatch_sharded, sharded
from worker.jobs.claims import TaskRun
from worker.jobs.judge import run_judge_job
from worker.jobs.reporter import JobReporter
from worker.jobs.store import Factory
from worker.jobs.targets import load_target
from worker.jobs.verify import run_verify_job

log = logging.getLogger(__name__)


def run_job(job_id: int, session_factory: Factory | None = None, resume: bool = False) -> str:
    """Start a queued job; return its status. Safe to call twice for the same job.

    An audit that runs as a canvas (LoRA, head and pretrained modes) is sent and this returns
    'running' at once; `resume` re-dispatches a running one whose tasks were lost (done tasks
    return at once). Every other job runs here, in this process, to completion.
    """
    factory = session_factory or get_sessionmaker()
    with factory() as session:
        job = session.get(Job, job_id)
        if job is None:
            log.warning("job %s no longer exists; nothing to do", job_id)
            return "missing"
        if job.status in FINISHED:
            return job.status
        kind, config, dataset_id = job.kind, dict(job.config), job.dataset_id
    if kind == "audit" and sharded(config):
        return dispatch_sharded(factory, job_id, resume)
    return run_here(factory, job_id, kind, config, dataset_id)


def run_here(
    factory: Factory,
    job_id: int,
    kind: str,
    config: dict[str, Any],
    dataset_id: int,
) -> str:
    """The single-task path, claimed and heartbeaten like a shard (stage 'job')."""
    claim = TaskRun(factory, job_id, "job")
    outcome = claim.claim()
    if outcome != "run":
        status = store.job_status(factory, job_id)
        if outcome == "done" or status in FINISHED:
            return status or "missing"
    with factory() as session:
        job = session.get(Job, job_id)
        if job is None:
            claim.finish(FAILED, "job deleted")
            return "missing"
        if job.status in FINISHED:
            claim.finish(job.status)
            return job.status
        job.status, job.stage, job.progress = "running", "loading_data", 0.0
        job.started_at, job.error = utcnow(), None
        session.commit()
    reporter = JobReporter(job_id, kind, factory)
    status = FAILED
    try:
        if kind == "audit":
            status = _run_audit(job_id, dataset_id, config, factory, reporter)
        elif kind == "verify":
            status = run_verify_job(job_id, dataset_id, config, factory, reporter)
        elif kind == "judge":
            status = run_judge_job(job_id, dataset_id, config, factory, reporter)
        else:
            raise ValueError(f"unknown job kind {kind!r}")
        return status
    except Exception as exc:
        if isinstance(exc, Cancelled) or reporter.should_cancel():
            status = store.finish_job(factory, job_id, status=CANCELLED)
            return status
        log.exception("job %s failed", job_id)
        stage = store.current_stage(factory, job_id)
        message = f"{type(exc).__name__} during {stage}: {exc}"
        status = store.finish_job(
            factory, job_id, status=FAILED, error=message, details=traceback.format_exc()
        )
        return status
    finally:
        claim.finish(SUCCEEDED if status == SUCCEEDED else status)


def _run_audit(
    job_id: int,
    dataset_id: int,
    config: dict[str, Any],
    factory: Factory,
    reporter: JobReporter,
) -> str:
    options = store.audit_options(config)
    engine_config = options.engine_config()
    reporter.progress("loading_data", 0.0)
    with factory() as session:
        pair_ids, pairs = store.load_pairs(session, dataset_id)
        if options.val_dataset_id is not None:
            _, val_pairs = store.load_pairs(session, options.val_dataset_id)
        # The exact checks that need the job's tokenizer (tags, worker/influence/checks.py).
        tokenizer = load_tokenizer(engine_config)
        store.tag_truncation(session, job_id, dataset_id, tokenizer, engine_config.max_length)
        target = load_target(session, options.target_set_id)
    if options.val_dataset_id is not None:
        train_ids, train_pairs = pair_ids, pairs
        val_in_dataset: list[int] = []
    else:
        train_pos, val_pos = split_validation(len(pairs), options.val_fraction, engine_config.seed)
        train_ids = [pair_ids[i] for i in train_pos]
        train_pairs = [pairs[i] for i in train_pos]
        val_in_dataset = [pair_ids[i] for i in val_pos]
        val_pairs = [pairs[i] for i in val_pos]
    reporter.progress("loading_data", 1.0, f"{len(train_pairs)} train, {len(val_pairs)} val")

    started = time.perf_counter()
    save_to = None
    if engine_config.save_model:
        save_to = store.model_dir(factory, dataset_id, job_id)
    # Canaries (worker/jobs/canary.py): planted before training, evaluated and dropped after.
    planted = canary.plant(train_pairs, engine_config.seed)
    result = run_audit(
        planted.pairs,
        val_pairs,
        engine_config,
        progress=reporter.progress,
        should_cancel=reporter.should_cancel,
        save_model_to=save_to,
        keep_state=True,
        target=target.pairs if target is not None else None,
    )
    train_ids, val_in_dataset = canary.finish_result(
        result, engine_config, planted, train_ids, val_in_dataset
    )
    outside = rewards.in_process(
        factory, job_id, train_ids, result.scores, reporter.progress, reporter.should_cancel
    )
    reporter.progress("saving", 0.0)
    metrics = with_fields(
        result.metrics,
        **outside,
        **(target.metrics(result.metrics) if target is not None else {}),
        n_train=len(train_ids),
        n_val=len(val_pairs),
        validation_source=store.validation_source(options, engine_config.seed),
        seconds_total=round(time.perf_counter() - started, 3),
    )
    return store.save_scores(
        factory, job_id, train_ids, val_in_dataset, result.scores, metrics, result.interactions
    )
