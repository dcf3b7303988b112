"""One job, start to finish: load pairs, split, call the engine, store scores, record the outcome.

Job state lives in the database. Every write is guarded by `status == 'running'`, so a job
cancelled through the API is never flipped back, and a redelivered task for a finished job
does nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from backend.db import get_sessionmaker
from backend.job_states import FINISHED
from backend.models import Interaction, Job, Pair, Score, utcnow
from worker.influence.columns import SCORE_COLUMNS
from worker.influence.config import EngineConfig
from worker.influence.data import split_validation

log = logging.getLogger(__name__)

# Share of the job's progress bar each stage takes, per job kind (measured roughly on MiniLM).
STAGE_WEIGHTS: dict[str, dict[str, float]] = {
    "audit": {
        "loading_data": 0.02,
        "loading_model": 0.03,
        "training": 0.55,
        "validation_gradient": 0.05,
        "per_pair_gradients": 0.25,
        "scoring": 0.05,
        "saving": 0.05,
    },
    "verify": {"loading_data": 0.02, "retraining": 0.96, "saving": 0.02},
}
_PROGRESS_INTERVAL_S = 0.5
_CANCEL_INTERVAL_S = 1.0
_INSERT_BATCH = 20_000  # rows per COPY / INSERT


class JobReporter:
    """Writes stage and progress to the job row (throttled) and answers "was I cancelled?"."""

    def __init__(self, job_id: int, kind: str, session_factory: Callable[[], Session]):
        self.job_id = job_id
        self._weights = STAGE_WEIGHTS.get(kind, {})
        self._session_factory = session_factory
        self._last_write = 0.0
        self._last_check = 0.0
        self._cancelled = False
        self._done: list[str] = []

    def overall(self, stage: str, fraction: float) -> float:
        before = sum(self._weights.get(s, 0.0) for s in self._done if s != stage)
        return min(0.999, before + self._weights.get(stage, 0.0) * max(0.0, min(1.0, fraction)))

    def progress(self, stage: str, fraction: float, message: str | None = None) -> None:
        if stage not in self._done:
            # Stages arrive in order; a new one means the previous ones are complete.
            self._done.append(stage)
            force = True
        else:
            force = fraction >= 1.0
        now = time.monotonic()
        if not force and now - self._last_write < _PROGRESS_INTERVAL_S:
            return
        self._last_write = now
        with self._session_factory() as session:
            session.execute(
                update(Job)
                .where(Job.id == self.job_id, Job.status == "running")
                .values(stage=stage, progress=self.overall(stage, fraction))
            )
            session.commit()
        if message:
            log.info("job %s %s: %s", self.job_id, stage, message)

    def should_cancel(self) -> bool:
        now = time.monotonic()
        if self._cancelled or now - self._last_check < _CANCEL_INTERVAL_S:
            return self._cancelled
        self._last_check = now
        with self._session_factory() as session:
            status = session.scalar(select(Job.status).where(Job.id == self.job_id))
        self._cancelled = status != "running"
        return self._cancelled


def run_job(
    job_id: int, session_factory: Callable[[], Session] | None = None, resume: bool = False
) -> str:
    """Start a queued job; return its status. Safe to call twice for the same job.

    An audit that runs as a canvas (LoRA, head and pretrained modes; worker/shards.py) is sent and
    this returns 'running' at once; `resume` re-dispatches a running one whose tasks were lost
    (done tasks return at once). Every other job runs here, in this process, to completion.
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
        return _dispatch_sharded(factory, job_id, resume)
    return _run_here(factory, job_id, kind, config, dataset_id)


def sharded(config: dict[str, Any]) -> bool:
    """Whether an audit's options run as a canvas of shards (worker/shards.py)."""
    from backend.schemas import AuditCreate
    from worker.shards import canvas_kind

    return canvas_kind(AuditCreate.model_validate(config).engine_config()) is not None


def _dispatch_sharded(factory: Callable[[], Session], job_id: int, resume: bool) -> str:
    from backend.models import Dataset, JobTask
    from backend.schemas import AuditCreate
    from worker.influence.data import validation_size
    from worker.shards import dispatch

    with factory() as session:
        claimed = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "queued")
            .values(status="running", stage="queued", progress=0.0, started_at=utcnow())
        ).rowcount  # type: ignore[attr-defined]
        session.commit()
        job = session.get(Job, job_id)
        assert job is not None
        has_tasks = session.scalar(select(JobTask.id).where(JobTask.job_id == job_id).limit(1))
        if not claimed and not resume and has_tasks is not None:
            return job.status  # a second delivery of a job whose canvas is already out
        if job.status != "running":
            return job.status
        options = AuditCreate.model_validate(job.config)
        dataset = session.get(Dataset, job.dataset_id)
        assert dataset is not None
        if options.val_dataset_id is not None:
            n_train = dataset.n_pairs
            val_dataset = session.get(Dataset, options.val_dataset_id)
            n_val = val_dataset.n_pairs if val_dataset is not None else 0
        else:
            n_val = validation_size(dataset.n_pairs, options.val_fraction)
            n_train = dataset.n_pairs - n_val
        first = dispatch(job_id, n_train, options.engine_config(), n_val=n_val)
        if claimed:
            job.task_id = first
            session.commit()
    log.info("job %s: %s sharded canvas", job_id, "re-dispatched" if resume else "dispatched")
    return "running"


def _run_here(
    factory: Callable[[], Session],
    job_id: int,
    kind: str,
    config: dict[str, Any],
    dataset_id: int,
) -> str:
    """The single-task path, claimed and heartbeaten like a shard (stage 'job')."""
    from worker.shards import TaskRun

    claim = TaskRun(factory, job_id, "job")
    outcome = claim.claim()
    if outcome != "run":
        with factory() as session:
            status = session.scalar(select(Job.status).where(Job.id == job_id))
        if outcome == "done" or status in FINISHED:
            return status or "missing"
    with factory() as session:
        job = session.get(Job, job_id)
        if job is None:
            claim.finish("failed", "job deleted")
            return "missing"
        if job.status in FINISHED:
            claim.finish(job.status)
            return job.status
        job.status, job.stage, job.progress = "running", "loading_data", 0.0
        job.started_at, job.error = utcnow(), None
        session.commit()
    reporter = JobReporter(job_id, kind, factory)
    status = "failed"
    try:
        if kind == "audit":
            status = _run_audit(job_id, dataset_id, config, factory, reporter)
        elif kind == "verify":
            status = _run_verify(job_id, dataset_id, config, factory, reporter)
        else:
            raise ValueError(f"unknown job kind {kind!r}")
        return status
    except Exception as exc:
        from worker.influence.train import Cancelled

        if isinstance(exc, Cancelled) or reporter.should_cancel():
            status = _finish(factory, job_id, status="cancelled")
            return status
        log.exception("job %s failed", job_id)
        stage = _current_stage(factory, job_id)
        message = f"{type(exc).__name__} during {stage}: {exc}"
        status = _finish(
            factory, job_id, status="failed", error=message, details=traceback.format_exc()
        )
        return status
    finally:
        claim.finish("succeeded" if status == "succeeded" else status)


def _current_stage(factory: Callable[[], Session], job_id: int) -> str | None:
    with factory() as session:
        return session.scalar(select(Job.stage).where(Job.id == job_id))


def _finish(
    factory: Callable[[], Session],
    job_id: int,
    *,
    status: str,
    error: str | None = None,
    details: str | None = None,
) -> str:
    with factory() as session:
        job = session.get(Job, job_id)
        if job is None:
            return "missing"
        if job.status == "running" or (status == "cancelled" and job.status == "cancelled"):
            job.status = status
            job.error = error
            job.finished_at = job.finished_at or utcnow()
            if details:
                job.metrics = {**(job.metrics or {}), "traceback": details[-8000:]}
            session.commit()
        return job.status


def _load_pairs(session: Session, dataset_id: int) -> tuple[list[int], list[Any]]:
    from worker.influence.data import Pair as EnginePair

    rows = session.execute(
        select(Pair.id, Pair.prompt, Pair.chosen, Pair.rejected)
        .where(Pair.dataset_id == dataset_id)
        .order_by(Pair.source_index)
    ).all()
    return [r.id for r in rows], [EnginePair(r.prompt, r.chosen, r.rejected) for r in rows]


def _run_audit(
    job_id: int,
    dataset_id: int,
    config: dict[str, Any],
    factory: Callable[[], Session],
    reporter: JobReporter,
) -> str:
    from backend.schemas import AuditCreate
    from worker.influence.audit import run_audit

    options = AuditCreate.model_validate(config)
    engine_config = options.engine_config()
    reporter.progress("loading_data", 0.0)
    with factory() as session:
        pair_ids, pairs = _load_pairs(session, dataset_id)
        if options.val_dataset_id is not None:
            val_ids, val_pairs = _load_pairs(session, options.val_dataset_id)
            train_ids, train_pairs = pair_ids, pairs
            val_in_dataset: list[int] = []
        else:
            train_pos, val_pos = split_validation(
                len(pairs), options.val_fraction, engine_config.seed
            )
            train_ids = [pair_ids[i] for i in train_pos]
            train_pairs = [pairs[i] for i in train_pos]
            val_in_dataset = [pair_ids[i] for i in val_pos]
            val_pairs = [pairs[i] for i in val_pos]
    reporter.progress("loading_data", 1.0, f"{len(train_pairs)} train, {len(val_pairs)} val")

    started = time.perf_counter()
    save_to = None
    if engine_config.save_model:
        # Beside the dataset's stored original, so deleting the dataset deletes its models too.
        from pathlib import Path

        from backend.models import Dataset

        with factory() as session:
            dataset = session.get(Dataset, dataset_id)
            assert dataset is not None
            save_to = Path(dataset.original_path).parent / "models" / f"job-{job_id}"
    result = run_audit(
        train_pairs,
        val_pairs,
        engine_config,
        progress=reporter.progress,
        should_cancel=reporter.should_cancel,
        save_model_to=save_to,
    )
    reporter.progress("saving", 0.0)
    metrics = dict(result.metrics)
    metrics.update(
        n_train=len(train_pairs),
        n_val=len(val_pairs),
        validation_source=validation_source(options, engine_config.seed),
        seconds_total=round(time.perf_counter() - started, 3),
    )
    return _save_scores(
        factory, job_id, train_ids, val_in_dataset, result.scores, metrics, result.interactions
    )


def validation_source(options: Any, seed: int) -> str:
    """Where an audit's validation pairs came from, in words (job metrics)."""
    if options.val_dataset_id is not None:
        return f"dataset {options.val_dataset_id}"
    return f"seeded {options.val_fraction:.0%} split (seed {seed})"


def _save_scores(
    factory: Callable[[], Session],
    job_id: int,
    train_ids: list[int],
    val_ids: list[int],
    scores: dict[str, np.ndarray],
    metrics: dict[str, Any],
    interactions: Sequence[tuple[int, int, float]] = (),
) -> str:
    """Replace the job's scores (and the group method's strongest interactions, given as
    training positions) and mark it succeeded, in one transaction."""
    unknown = set(scores) - set(SCORE_COLUMNS)
    if unknown:
        raise ValueError(f"the engine returned unknown score columns {sorted(unknown)}")
    columns = {name: np.asarray(values, dtype=np.float64) for name, values in scores.items()}
    for name, values in columns.items():
        if len(values) != len(train_ids):
            raise ValueError(f"score {name!r} has {len(values)} values for {len(train_ids)} pairs")
    with factory() as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None or job.status != "running":
            return job.status if job else "missing"
        from backend.services.query import refresh_stats
        from backend.services.scores import replace_scores

        replace_scores(session, job_id, train_ids, val_ids, columns)
        session.execute(delete(Interaction).where(Interaction.job_id == job_id))
        links = [
            {"job_id": job_id, "pair_id": train_ids[i], "other_id": train_ids[j], "kappa": kappa}
            for i, j, kappa in interactions
            if math.isfinite(kappa)
        ]
        for start in range(0, len(links), _INSERT_BATCH):
            session.execute(insert(Interaction), links[start : start + _INSERT_BATCH])
        status = _succeed(session, job, metrics, stats=False)
        # The review's percentiles and counts, from the arrays at hand (not read back).
        refresh_stats(session, job, columns, {"train": len(train_ids), "val": len(val_ids)})
        return status


def _succeed(session: Session, job: Job, metrics: dict[str, Any], stats: bool = True) -> str:
    job.metrics = metrics
    job.status, job.stage, job.progress = "succeeded", "done", 1.0
    job.finished_at = utcnow()
    session.commit()
    if job.kind == "audit" and stats:
        from backend.services.query import refresh_stats

        refresh_stats(session, job)  # percentiles and counts for the review, once
    return "succeeded"


def verify_config(audit_config: EngineConfig, audit_metrics: dict[str, Any]) -> EngineConfig:
    """The recipe a verify job retrains with: the audit's, with the head choices the audit made.

    A head-mode audit picks its L2 (left at weight_decay 0), its feature view (head_features
    'auto') and its length weight (0) on the validation pairs; the retrains must use those
    values, not pick again on the pairs they are evaluated on.
    """
    if audit_config.mode != "head":
        return audit_config
    config = audit_config
    if config.weight_decay == 0 and "head_l2" in audit_metrics:
        config = dataclasses.replace(config, weight_decay=float(audit_metrics["head_l2"]))
    if config.head_features == "auto" and "head_features" in audit_metrics:
        config = dataclasses.replace(config, head_features=audit_metrics["head_features"])
    if config.head_length_weight == 0 and "head_length_weight" in audit_metrics:
        weight = float(audit_metrics["head_length_weight"])
        config = dataclasses.replace(config, head_length_weight=weight)
    return config


def _run_verify(
    job_id: int,
    dataset_id: int,
    config: dict[str, Any],
    factory: Callable[[], Session],
    reporter: JobReporter,
) -> str:
    """Retrain on all / pruned / randomly thinned training pairs of an audit and compare."""
    from backend.models import Flag
    from backend.schemas import AuditCreate, VerifyCreate
    from backend.services.review import first_order_top, greedy_selection, most_harmful
    from worker.influence.data import Pair as EnginePair
    from worker.influence.verify import run_verify

    options = VerifyCreate.model_validate(config)
    alternatives: dict[str, set[int]] = {}
    reporter.progress("loading_data", 0.0)
    with factory() as session:
        audit = session.get(Job, options.audit_job_id)
        if audit is None or audit.status != "succeeded":
            raise ValueError(f"audit job {options.audit_job_id} is gone or has not succeeded")
        audit_options = AuditCreate.model_validate(audit.config)
        engine_config = verify_config(audit_options.engine_config(), audit.metrics or {})
        rows = session.execute(
            select(Score.split, Pair.id, Pair.prompt, Pair.chosen, Pair.rejected)
            .join(Pair, Pair.id == Score.pair_id)
            .where(Score.job_id == audit.id)
            .order_by(Pair.source_index)
        ).all()
        train_rows = [r for r in rows if r.split == "train"]
        if options.use_flags:
            pruned = set(
                session.scalars(
                    select(Flag.pair_id)
                    .join(Pair, Pair.id == Flag.pair_id)
                    .where(Pair.dataset_id == dataset_id, Flag.state == "flagged")
                )
            )
            rule = "the dataset's flagged pairs"
        elif options.rule == "greedy":
            ordered = greedy_selection(session, audit, options.budget)
            pruned = set(ordered)
            top_k = set(first_order_top(session, audit.id, len(ordered)))
            alternatives = {"top_k": top_k}
            rule = f"greedy group selection of {len(ordered)} pairs"
        else:
            pruned = set(most_harmful(session, audit.id, options.fraction, options.method))
            rule = f"top {options.fraction:.0%} by {options.method}"
        if options.test_dataset_id is not None:
            _, evaluation = _load_pairs(session, options.test_dataset_id)
            evaluated_on = f"test dataset {options.test_dataset_id}"
        elif audit_options.val_dataset_id is not None:
            _, evaluation = _load_pairs(session, audit_options.val_dataset_id)
            evaluated_on = f"the audit's validation dataset {audit_options.val_dataset_id}"
        else:
            evaluation = [
                EnginePair(r.prompt, r.chosen, r.rejected) for r in rows if r.split == "val"
            ]
            evaluated_on = "the audit's validation split"
    train = [EnginePair(r.prompt, r.chosen, r.rejected) for r in train_rows]
    prune = [r.id in pruned for r in train_rows]
    reporter.progress("loading_data", 1.0, f"pruning {sum(prune)} of {len(train)} pairs ({rule})")
    result = run_verify(
        train,
        evaluation,
        prune,
        engine_config,
        seeds=list(range(options.seeds)),
        progress=reporter.progress,
        should_cancel=reporter.should_cancel,
        alternatives={
            name: [r.id in chosen for r in train_rows] for name, chosen in alternatives.items()
        },
    )
    reporter.progress("saving", 0.0)
    metrics = {**result, "audit_job_id": audit.id, "rule": rule, "evaluated_on": evaluated_on}
    if alternatives:
        metrics["overlap"] = {name: len(pruned & chosen) for name, chosen in alternatives.items()}
    with factory() as session:
        job = session.get(Job, job_id)
        if job is None or job.status != "running":
            return job.status if job else "missing"
        return _succeed(session, job, metrics)
