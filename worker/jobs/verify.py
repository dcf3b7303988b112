"""A verify job, in one task: retrain on all / pruned / randomly thinned training pairs of a
succeeded audit and compare on held-out pairs."""

from __future__ import annotations

import dataclasses
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.job_states import RUNNING, SUCCEEDED
from backend.models import Flag, Job, Pair, Score
from backend.storage.job_config import AuditOptions, VerifyOptions
from backend.storage.ranking import first_order_top, greedy_selection, most_harmful
from worker.influence.config import EngineConfig, HeadFeatures
from worker.influence.data import Pair as EnginePair
from worker.influence.results import AuditMetrics, read_metrics, with_fields
from worker.influence.verify import run_verify
from worker.jobs import store
from worker.jobs.reporter import JobReporter
from worker.jobs.store import Factory


def verify_config(audit_config: EngineConfig, audit_metrics: AuditMetrics) -> EngineConfig:
    """The recipe a verify job retrains with: the audit's, with the head choices the audit made.

    A head-mode audit picks its L2 (left at weight_decay 0), its feature view (head_features
    'auto') and its length weight (0) on the validation pairs; the retrains must use those
    values, not pick again on the pairs they are evaluated on. An audit from before a choice
    was recorded keeps the option as given.
    """
    if audit_config.mode != "head":
        return audit_config
    config = audit_config
    if config.weight_decay == 0 and audit_metrics.head_l2 is not None:
        config = dataclasses.replace(config, weight_decay=audit_metrics.head_l2)
    if config.head_features == "auto" and audit_metrics.head_features is not None:
        view = cast(HeadFeatures, audit_metrics.head_features)  # a view the audit ran with
        config = dataclasses.replace(config, head_features=view)
    if config.head_length_weight == 0 and audit_metrics.head_length_weight is not None:
        config = dataclasses.replace(config, head_length_weight=audit_metrics.head_length_weight)
    return config


def _pruned(
    session: Session, options: VerifyOptions, audit: Job, dataset_id: int
) -> tuple[set[int], dict[str, set[int]], str]:
    """(the pair ids the rule prunes, alternative selections to compare with, the rule in words)."""
    if options.use_flags:
        pruned = set(
            session.scalars(
                select(Flag.pair_id)
                .join(Pair, Pair.id == Flag.pair_id)
                .where(Pair.dataset_id == dataset_id, Flag.state == "flagged")
            )
        )
        return pruned, {}, "the dataset's flagged pairs"
    if options.rule == "greedy":
        ordered = greedy_selection(session, audit, options.budget)
        top_k = set(first_order_top(session, audit.id, len(ordered)))
        return set(ordered), {"top_k": top_k}, f"greedy group selection of {len(ordered)} pairs"
    pruned = set(most_harmful(session, audit.id, options.fraction, options.method))
    return pruned, {}, f"top {options.fraction:.0%} by {options.method}"


def _evaluation(
    session: Session, options: VerifyOptions, audit_options: AuditOptions, rows: list[Any]
) -> tuple[list[EnginePair], str]:
    """(the pairs the retrains are evaluated on, where they come from in words)."""
    if options.test_dataset_id is not None:
        _, evaluation = store.load_pairs(session, options.test_dataset_id)
        return evaluation, f"test dataset {options.test_dataset_id}"
    if audit_options.val_dataset_id is not None:
        _, evaluation = store.load_pairs(session, audit_options.val_dataset_id)
        return evaluation, f"the audit's validation dataset {audit_options.val_dataset_id}"
    evaluation = [EnginePair(r.prompt, r.chosen, r.rejected) for r in rows if r.split == "val"]
    return evaluation, "the audit's validation split"


def run_verify_job(
    job_id: int,
    dataset_id: int,
    config: dict[str, Any],
    factory: Factory,
    reporter: JobReporter,
) -> str:
    """Retrain on all / pruned / randomly thinned training pairs of an audit and compare."""
    options = store.verify_options(config)
    reporter.progress("loading_data", 0.0)
    with factory() as session:
        audit = session.get(Job, options.audit_job_id)
        if audit is None or audit.status != SUCCEEDED:
            raise ValueError(f"audit job {options.audit_job_id} is gone or has not succeeded")
        audit_options = store.audit_options(audit.config)
        audit_metrics = read_metrics("audit", audit.metrics or {})
        engine_config = verify_config(audit_options.engine_config(), audit_metrics)
        rows = session.execute(
            select(Score.split, Pair.id, Pair.prompt, Pair.chosen, Pair.rejected)
            .join(Pair, Pair.id == Score.pair_id)
            .where(Score.job_id == audit.id)
            .order_by(Pair.source_index)
        ).all()
        train_rows = [r for r in rows if r.split == "train"]
        pruned, alternatives, rule = _pruned(session, options, audit, dataset_id)
        evaluation, evaluated_on = _evaluation(session, options, audit_options, list(rows))
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
    metrics = with_fields(result, audit_job_id=audit.id, rule=rule, evaluated_on=evaluated_on)
    if alternatives:
        overlap = {name: len(pruned & chosen) for name, chosen in alternatives.items()}
        metrics = with_fields(metrics, overlap=overlap)
    with factory() as session:
        job = session.get(Job, job_id)
        if job is None or job.status != RUNNING:
            return job.status if job else "missing"
        return store.succeed(session, job, metrics)
