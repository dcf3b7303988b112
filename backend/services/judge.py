"""The LLM judge's API side: launching a judge job (validate, write, commit, then enqueue), the
defaults, and the cost and time estimate before launch."""

from __future__ import annotations

import time

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.errors import BadInput
from backend.models import Dataset, Job, JudgeAnswer, Pair, User
from backend.schemas.judge import (
    JudgeCreate,
    JudgeDefaults,
    JudgeEstimate,
    JudgeEstimateCreate,
    JudgeTemplateIn,
)
from backend.services.jobs import enqueue
from backend.settings import get_settings
from backend.storage.secrets import SecretUnreadable, judge_api_key
from worker.influence.judge import (
    JUDGE_COLUMNS,
    ORDERS,
    JudgeOptions,
    JudgeServerError,
    JudgeTemplate,
    MemoryCache,
    estimate_tokens,
    make_client,
    request_key,
)
from worker.influence.judge.run import JudgePair, judge_pairs

CACHE_COUNT_LIMIT = 50_000
"""Above this many pairs the estimate does not count cached answers (it would read every text)."""

_KEY_BATCH = 1000


def defaults() -> JudgeDefaults:
    return JudgeDefaults(
        template=JudgeTemplateIn(),
        key_configured=bool(get_settings().judge_api_key),
        columns=list(JUDGE_COLUMNS),
    )


def options_of(body: JudgeCreate) -> JudgeOptions:
    fields = body.model_dump(exclude={"template", "probe"})
    return JudgeOptions(template=JudgeTemplate(**body.template.model_dump()), **fields)


def create_judge_job(session: Session, dataset: Dataset, user: User, body: JudgeCreate) -> Job:
    """Queue a judge job over every pair of the dataset."""
    if dataset.n_pairs < 1:
        raise BadInput(f"dataset {dataset.id} has no pairs to judge")
    job = Job(
        dataset_id=dataset.id,
        owner_id=user.id,
        kind="judge",
        config={"kind": "judge", **body.model_dump(mode="json", exclude={"probe"})},
        status="queued",
        stage="queued",
        progress=0.0,
    )
    session.add(job)
    session.commit()  # the worker must never see a job that is not in the database
    enqueue(session, job)
    return job


def _lengths(session: Session, dataset_id: int) -> np.ndarray:
    """(n, 3) characters of prompt, chosen and rejected (stored at upload, else measured)."""
    rows = session.execute(
        select(
            func.coalesce(Pair.prompt_chars, func.length(Pair.prompt)),
            func.coalesce(Pair.chosen_chars, func.length(Pair.chosen)),
            func.coalesce(Pair.rejected_chars, func.length(Pair.rejected)),
        ).where(Pair.dataset_id == dataset_id)
    ).all()
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)


def _cached(session: Session, dataset_id: int, options: JudgeOptions) -> int:
    """How many of the job's requests the answer cache holds already."""
    params, template = options.params(), options.template
    found = 0
    query = select(Pair.prompt, Pair.chosen, Pair.rejected).where(Pair.dataset_id == dataset_id)
    keys: list[str] = []
    for row in session.execute(query.execution_options(yield_per=_KEY_BATCH)):
        for first, second in ((row.chosen, row.rejected), (row.rejected, row.chosen)):
            messages = template.messages(row.prompt, first, second)
            keys.append(request_key(options.base_url, options.model, messages, params))
        if len(keys) >= _KEY_BATCH:
            found += _count_keys(session, keys)
            keys = []
    return found + _count_keys(session, keys)


def _count_keys(session: Session, keys: list[str]) -> int:
    """How many of `keys` the cache holds, a repeated request (a duplicate pair, a pair's label
    reversed elsewhere, identical responses) counted each time it is asked."""
    if not keys:
        return 0
    held = set(session.scalars(select(JudgeAnswer.key).where(JudgeAnswer.key.in_(set(keys)))))
    return sum(key in held for key in keys)


def _measured_rate(session: Session, user: User, options: JudgeOptions) -> float | None:
    """Wall seconds per request of the user's latest judge job on this server and model that
    sent any (its measured throughput, concurrency included)."""
    jobs = session.scalars(
        select(Job)
        .where(Job.owner_id == user.id, Job.kind == "judge", Job.status == "succeeded")
        .order_by(Job.id.desc())
        .limit(50)
    )
    for job in jobs:
        metrics = job.metrics or {}
        same = job.config.get("base_url") == options.base_url
        if same and job.config.get("model") == options.model:
            requests, seconds = metrics.get("requests") or 0, metrics.get("seconds")
            if requests > 0 and seconds:
                return float(seconds) / requests
    return None


def _probe(session: Session, dataset_id: int, user: User, options: JudgeOptions) -> float:
    """Seconds of one real, uncached request: the first pair, chosen shown first."""
    row = session.execute(
        select(Pair.prompt, Pair.chosen, Pair.rejected)
        .where(Pair.dataset_id == dataset_id)
        .order_by(Pair.source_index)
        .limit(1)
    ).one()
    try:
        key = judge_api_key(session, user.id)
    except SecretUnreadable as exc:
        raise BadInput(str(exc)) from None
    client = make_client(options, MemoryCache(), key)
    started = time.perf_counter()
    try:
        outcome = judge_pairs([JudgePair(*row)], client, options.template, 1)
    except JudgeServerError as exc:
        raise BadInput(f"the probe request failed: {exc}") from None
    finally:
        client.close()
    del outcome  # the answer itself does not matter here: only its time
    return (time.perf_counter() - started) / len(ORDERS)


def estimate(
    session: Session, dataset: Dataset, user: User, body: JudgeEstimateCreate
) -> JudgeEstimate:
    """Requests, tokens and time of a judge job over the dataset, before it is launched."""
    options = options_of(body)
    tokens = estimate_tokens(_lengths(session, dataset.id), options)
    cached = _cached(session, dataset.id, options) if dataset.n_pairs <= CACHE_COUNT_LIMIT else None
    per_request: float | None
    if body.probe:
        per_request = _probe(session, dataset.id, user, options)
        source = "one probe request just now (two, one per order; no concurrency assumed)"
    else:
        per_request = _measured_rate(session, user, options)
        source = (
            "your latest judge job on this server and model (its wall time per request)"
            if per_request is not None
            else "none yet: probe the server or run a small job first"
        )
    to_send = tokens.requests - (cached or 0)
    return JudgeEstimate(
        pairs=dataset.n_pairs,
        requests=tokens.requests,
        cached_requests=cached,
        prompt_tokens=tokens.prompt_tokens,
        completion_tokens=tokens.completion_tokens,
        token_method=tokens.method,
        seconds_per_request=None if per_request is None else round(per_request, 4),
        rate_source=source,
        seconds=None if per_request is None else round(per_request * to_send, 1),
    )
