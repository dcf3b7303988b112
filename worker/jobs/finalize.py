"""The LoRA canvas's last stage: the global columns (corrected_loss, harm, group), the trust
figures and the job's metrics, then the job marked succeeded, in one transaction.

The global columns are the method registry's finalisers (`stream.finalise_global`), run over
the stored rows of every training pair."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.job_states import RUNNING
from backend.models import Job, JobTask, Score, as_utc, utcnow
from worker.influence.benchmark_table import method_benchmark
from worker.influence.results import AuditMetrics
from worker.influence.trust import mislabelled_estimate, validation_trust
from worker.jobs import canary, rewards, stages, store
from worker.jobs.claims import TaskRun, await_stage, peak_rss_mb
from worker.jobs.context import JobContext, artifact_store, plan, shard_count
from worker.jobs.group import group_stage, needs_group


def finalize(context: JobContext, run: TaskRun) -> None:
    """Global columns, trust and metrics; marks the job succeeded (one transaction)."""
    artifacts, config = artifact_store(), context.config
    job_plan = plan(context)
    await_stage(run, "scores", shard_count(job_plan))
    meta = artifacts.get_json(context.key("train.json"))
    solution_meta = artifacts.get_json(context.key("solution.json"))
    val = artifacts.get_arrays(context.key("val.npz"))
    n_train = len(job_plan["train_ids"])
    n_models = len(context.options.reward_models)
    await_stage(run, "rewards", rewards.task_count(n_models, n_train, config))
    reward_columns: dict[str, np.ndarray] = {}
    stored_ids = canary.kept_ids(job_plan)  # the canaries' rows are never stored
    reward_summary = rewards.merge(context, run.factory, stored_ids, reward_columns)
    with run.factory() as session:
        job = session.get(Job, context.job_id, with_for_update=True)
        if job is None or job.status != RUNNING:
            return
        count = session.scalar(
            select(func.count()).where(Score.job_id == job.id, Score.split == "train")
        )
        if count != len(stored_ids):
            raise RuntimeError(f"{count} score rows for {len(stored_ids)} training pairs")
        group = None
        if needs_group(config):
            group = group_stage(context, session, job_plan, solution_meta, val)
        metrics = canary.global_columns(session, context, job_plan, val["margins"])
        if group is not None:
            metrics["group"] = group
        if reward_summary is not None:
            store.upsert_scores(session, job.id, stored_ids, "train", reward_columns)
            store.tag_ambiguous(session, job, stored_ids, reward_columns["rm_ambiguous"] == 1)
            metrics["reward_models"] = reward_summary
        if len(job_plan["val_in_dataset"]):
            store.upsert_scores(session, job.id, job_plan["val_in_dataset"], "val", {})
        metrics.update(_metrics(context, session, job, job_plan, meta, solution_meta, val))
        store.succeed(session, job, AuditMetrics.model_validate({"kind": "audit", **metrics}))


def _metrics(
    context: JobContext,
    session: Session,
    job: Job,
    job_plan: dict[str, np.ndarray],
    meta: dict[str, Any],
    solution_meta: dict[str, Any],
    val: dict[str, np.ndarray],
) -> dict[str, Any]:
    """The job's metrics: the training's record, accuracies and losses, trust, the tasks'
    seconds and memory, where the artifacts are."""
    config = context.config
    margins, harm = store.train_columns(session, job.id, ("margin", "harm"))
    val_margins = val["margins"]
    trust = validation_trust(val_margins)
    warnings = list(meta.get("warnings", [])) + list(solution_meta.get("warnings", []))
    if not trust["is_evidence"]:
        warnings.append(trust["message"])
    rows = session.execute(
        select(JobTask.stage, JobTask.seconds, JobTask.peak_rss_mb, JobTask.owner).where(
            JobTask.job_id == job.id
        )
    ).all()
    seconds: dict[str, float] = {}
    for stage, secs, _, _ in rows:
        seconds[stage] = seconds.get(stage, 0.0) + (secs or 0.0)
    peak = max((r.peak_rss_mb or 0.0) for r in rows) if rows else peak_rss_mb()
    n_train = len(canary.kept_ids(job_plan))
    metrics: dict[str, Any] = dict(
        engine="sharded",
        device=meta["device"],
        model=config.model,
        mode=config.mode,
        n_train=n_train,
        n_val=len(job_plan["val_ids"]),
        n_trainable_params=meta["n_trainable_params"],
        history=meta["history"],
        epoch_seconds=meta["epoch_seconds"],
        truncation_rate=meta["truncation_rate"],
        gradient_space=meta["space"],
        projection=meta["projection"],
        shards=meta["shards"],
        worker_processes=len({(r.owner or "").rsplit(":", 1)[0] for r in rows}),
        val_accuracy=float((val_margins > 0).mean()),
        val_loss=float(np.logaddexp(0.0, -val_margins).mean()),
        train_accuracy=float((margins > 0).mean()),
        train_loss=float(np.logaddexp(0.0, -margins).mean()),
        trust=trust,
        method_benchmark=method_benchmark(config.mode, n_train),
        mislabelled=mislabelled_estimate(margins, harm, source="in_sample"),
        # Seconds per stage summed over its tasks (the single-task engine's stage names).
        seconds={stages.label(k): round(v, 3) for k, v in seconds.items()},
        peak_memory_mb={"cpu_rss_mb": peak},
        artifacts=context.prefix,
        validation_source=store.validation_source(context.options, config.seed),
        warnings=warnings,
    )
    if meta.get("model_dir"):
        metrics["model_dir"] = meta["model_dir"]
    if solution_meta.get("solve") is not None:
        metrics["influence"] = solution_meta["solve"]
    if "val_gradient_norm" in solution_meta:
        metrics["val_gradient_norm"] = solution_meta["val_gradient_norm"]
    started = as_utc(job.started_at)
    if started is not None:
        metrics["seconds_total"] = round((utcnow() - started).total_seconds(), 3)
    return metrics
