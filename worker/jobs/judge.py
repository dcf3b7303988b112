"""A judge job: every pair of a dataset judged in both orders by an LLM on an OpenAI-compatible
server, a shard of pairs at a time. Each shard's rows are written in one transaction once all of
its pairs have both outcomes, so a job stopped mid-shard (cancel, a dead server, a lost worker)
leaves no half-judged pair; a rerun re-asks nothing already answered (the answer cache,
`judge_answers`)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sqlalchemy import select

from backend.db import upsert
from backend.job_states import RUNNING
from backend.models import Job, JudgeAnswer
from backend.storage.scores import ensure_partition
from backend.storage.secrets import judge_api_key
from backend.storage.stats import refresh_stats
from worker.influence.judge import (
    JUDGE_COLUMNS,
    Answer,
    JudgeCancelled,
    JudgeOptions,
    JudgePair,
    JudgeTemplate,
    OrderFailure,
    judge_pairs,
    make_client,
    order_split,
    summary,
)
from worker.influence.results import JudgeFailure, JudgeMetrics
from worker.influence.train import Cancelled
from worker.jobs import store
from worker.jobs.reporter import JobReporter
from worker.jobs.store import Factory

MAX_RECORDED_FAILURES = 200


class DatabaseCache:
    """The answer cache in `judge_answers`, shared by every worker; a session per call, so the
    pool's threads can use it at once."""

    def __init__(self, factory: Factory) -> None:
        self.factory = factory

    def get(self, key: str) -> Answer | None:
        with self.factory() as session:
            row = session.get(JudgeAnswer, key)
            return None if row is None else Answer(row.content, row.top_logprobs)

    def put(self, key: str, answer: Answer, model: str) -> None:
        row: dict[str, Any] = {"key": key, "model": model[:256], "content": answer.content}
        row["top_logprobs"] = answer.top_logprobs
        with self.factory() as session:
            session.execute(upsert(session, JudgeAnswer, row, ["key"]))
            session.commit()


def judge_options(config: dict[str, Any]) -> JudgeOptions:
    """A stored judge config as the engine's options (unknown keys ignored)."""
    template = JudgeTemplate(**(config.get("template") or {}))
    names = set(JudgeOptions.__dataclass_fields__) - {"template"}
    return JudgeOptions(template=template, **{k: v for k, v in config.items() if k in names})


def _write_shard(factory: Factory, job_id: int, ids: np.ndarray, columns: dict) -> bool:
    """The shard's rows, all or none, while the job still runs; False if it no longer does."""
    with factory() as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None or job.status != RUNNING:
            return False
        ensure_partition(session, job_id)
        store.upsert_scores(session, job_id, ids, "train", columns)
        session.commit()
        return True


def run_judge_job(
    job_id: int, dataset_id: int, config: dict[str, Any], factory: Factory, reporter: JobReporter
) -> str:
    """Judge the dataset's pairs shard by shard; returns the job's status."""
    options = judge_options(config)
    reporter.progress("loading_data", 0.0)
    with factory() as session:
        all_ids = store.dataset_pair_ids(session, dataset_id)
        # The launcher's own key if set, else the server's; read here, never kept in the job.
        owner_id = session.scalar(select(Job.owner_id).where(Job.id == job_id))
        key = judge_api_key(session, owner_id) if owner_id is not None else None
    client = make_client(options, DatabaseCache(factory), key)
    started = time.perf_counter()
    gathered = {name: np.full(len(all_ids), np.nan) for name in JUDGE_COLUMNS}
    failures: list[JudgeFailure] = []
    size = max(1, options.shard_size)
    try:
        for start in range(0, len(all_ids), size):
            ids = all_ids[start : start + size]
            with factory() as session:
                pairs = [
                    JudgePair(p.prompt, p.chosen, p.rejected)
                    for p in store.pairs_by_ids(session, ids)
                ]

            def progress(fraction: float, start: int = start, n: int = len(ids)) -> None:
                reporter.progress("judging", (start + fraction * n) / max(1, len(all_ids)))

            try:
                outcome = judge_pairs(
                    pairs,
                    client,
                    options.template,
                    options.max_concurrency,
                    reporter.should_cancel,
                    progress,
                )
            except JudgeCancelled as exc:
                raise Cancelled(str(exc)) from None
            if not _write_shard(factory, job_id, ids, outcome.columns):
                return store.job_status(factory, job_id) or "missing"
            for name, values in outcome.columns.items():
                gathered[name][start : start + len(ids)] = values
            failures.extend(_failure(f, ids) for f in outcome.failures)
    finally:
        client.close()
    reporter.progress("saving", 0.0)
    metrics = _metrics(options, client, gathered, failures, time.perf_counter() - started)
    return _succeed(factory, job_id, metrics, gathered, all_ids)


def _failure(failure: OrderFailure, ids: np.ndarray) -> JudgeFailure:
    return JudgeFailure(
        pair_id=int(ids[failure.index]),
        order=failure.order,
        reason=failure.reason[:300],  # type: ignore[arg-type]
    )


def _metrics(
    options: JudgeOptions,
    client: Any,
    columns: dict[str, np.ndarray],
    failures: list[JudgeFailure],
    seconds: float,
) -> JudgeMetrics:
    stats = client.stats
    answered = stats.requests - stats.retries
    return JudgeMetrics(
        kind="judge",
        base_url=options.base_url,
        model=options.model,
        **summary(columns),
        requests=stats.requests,
        cache_hits=stats.cache_hits,
        retries=stats.retries,
        rate_limited=stats.rate_limited,
        retry_after_seconds=round(stats.retry_after_seconds, 3),
        timeouts=stats.timeouts,
        server_errors=stats.server_errors,
        seconds=round(seconds, 3),
        seconds_per_request=round(stats.request_seconds / answered, 4) if answered > 0 else None,
        failures=failures[:MAX_RECORDED_FAILURES],
    )


def _succeed(
    factory: Factory,
    job_id: int,
    metrics: JudgeMetrics,
    columns: dict[str, np.ndarray],
    ids: np.ndarray,
) -> str:
    with factory() as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None or job.status != RUNNING:
            return job.status if job else "missing"
        store.tag_ambiguous(session, job, ids, order_split(columns))
        status = store.succeed(session, job, metrics, stats=False)
        refresh_stats(session, job, columns, {"train": len(ids), "val": 0})
        return status
