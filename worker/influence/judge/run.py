"""Judging pairs: each pair asked twice, chosen shown first and then second, through a bounded
pool of threads; the two verdicts make the pair's columns. A pair's row exists only once both of
its orders have an outcome (a verdict or a recorded failure)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import numpy as np

from worker.influence.judge.client import JudgeClient, RequestRejected, RequestTimeout
from worker.influence.judge.parse import MalformedAnswer, Verdict, parse_answer
from worker.influence.judge.template import JudgeTemplate

ORDERS: tuple[str, ...] = ("chosen_first", "chosen_second")
"""The two orders every pair is judged in."""

JUDGE_COLUMNS: tuple[str, ...] = (
    "judge_p_chosen",
    "judge_agree_chosen_first",
    "judge_agree_chosen_second",
    "judge_against",
    "judge_confidence",
    "judge_failed_orders",
)
"""The per-pair columns a judge job fills (their specs are in worker/influence/methods.py)."""


class JudgeCancelled(Exception):
    """The caller's `should_cancel` said stop."""


@dataclass(frozen=True)
class JudgePair:
    prompt: str
    chosen: str
    rejected: str


@dataclass(frozen=True)
class OrderFailure:
    """One order of one pair that produced no verdict, and why."""

    index: int
    """The pair's position in the judged sequence."""
    order: str
    reason: str


@dataclass
class JudgeOutcome:
    columns: dict[str, np.ndarray]
    """JUDGE_COLUMNS, one value per pair (NaN where there is none)."""
    failures: list[OrderFailure]


def _messages(template: JudgeTemplate, pair: JudgePair, order: str) -> list[dict[str, str]]:
    if order == "chosen_first":
        return template.messages(pair.prompt, pair.chosen, pair.rejected)
    return template.messages(pair.prompt, pair.rejected, pair.chosen)


def _judge_one(client: JudgeClient, messages: list[dict[str, str]]) -> Verdict | str:
    """A verdict, or the reason this order has none (malformed, timed out, rejected)."""
    try:
        answer = client.answer(messages)
        return parse_answer(answer.content, answer.top_logprobs)
    except (MalformedAnswer, RequestTimeout, RequestRejected) as exc:
        return f"{type(exc).__name__}: {exc}"


def judge_pairs(
    pairs: Sequence[JudgePair],
    client: JudgeClient,
    template: JudgeTemplate,
    max_concurrency: int = 4,
    should_cancel: Callable[[], bool] = lambda: False,
    progress: Callable[[float], None] = lambda fraction: None,
) -> JudgeOutcome:
    """Judge every pair in both orders, at most `max_concurrency` requests at once.

    Raises JudgeCancelled within a fraction of a second of `should_cancel()` turning true (in-flight
    requests are abandoned, queued ones never sent), and JudgeServerError when the server cannot
    be used; either way no columns are returned, so nothing half-judged is written."""
    tasks = [(i, order) for i in range(len(pairs)) for order in ORDERS]
    results: dict[tuple[int, str], Verdict | str] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, max_concurrency), thread_name_prefix="judge")
    pending: dict[Future[Verdict | str], tuple[int, str]] = {}
    try:
        queue = iter(tasks)
        for _ in range(max(1, max_concurrency) * 2):  # a short queue: a cancel leaves little
            _submit_next(pool, pending, queue, client, template, pairs)
        while pending:
            done, _ = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            if should_cancel():
                raise JudgeCancelled("cancelled by request")
            for future in done:
                results[pending.pop(future)] = future.result()  # JudgeServerError propagates
                _submit_next(pool, pending, queue, client, template, pairs)
            progress(len(results) / max(1, len(tasks)))
    except BaseException:
        client.stop.set()  # retries waiting in the pool give up at once
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return _outcome(len(pairs), results)


def _submit_next(
    pool: ThreadPoolExecutor,
    pending: dict[Future[Verdict | str], tuple[int, str]],
    queue: object,
    client: JudgeClient,
    template: JudgeTemplate,
    pairs: Sequence[JudgePair],
) -> None:
    task = next(queue, None)  # type: ignore[call-overload]
    if task is None:
        return
    index, order = task
    messages = _messages(template, pairs[index], order)
    pending[pool.submit(_judge_one, client, messages)] = task


def _p_chosen(verdict: Verdict, order: str) -> float:
    """P(the labelled chosen is better) from one verdict: the log-probabilities where given,
    else 1 or 0 from the letter."""
    p_a = verdict.p_a if verdict.p_a is not None else float(verdict.choice == "A")
    return p_a if order == "chosen_first" else 1.0 - p_a


def _outcome(n: int, results: dict[tuple[int, str], Verdict | str]) -> JudgeOutcome:
    columns = {name: np.full(n, np.nan) for name in JUDGE_COLUMNS}
    failures: list[OrderFailure] = []
    for i in range(n):
        p, agree, confidence = [], [], []
        for order in ORDERS:
            verdict = results.get((i, order), "no result")
            if isinstance(verdict, str):
                failures.append(OrderFailure(i, order, verdict))
                continue
            chosen_letter = "A" if order == "chosen_first" else "B"
            agrees = float(verdict.choice == chosen_letter)
            columns[f"judge_agree_{order}"][i] = agrees
            agree.append(agrees)
            p.append(_p_chosen(verdict, order))
            if verdict.p_a is not None:
                confidence.append(max(verdict.p_a, 1.0 - verdict.p_a))
        columns["judge_failed_orders"][i] = len(ORDERS) - len(agree)
        if agree:
            columns["judge_p_chosen"][i] = sum(p) / len(p)
            columns["judge_against"][i] = len(agree) - sum(agree)
        if confidence:
            columns["judge_confidence"][i] = sum(confidence) / len(confidence)
    return JudgeOutcome(columns, failures)


def _rate(values: np.ndarray) -> float | None:
    finite = values[~np.isnan(values)]
    return round(float(finite.mean()), 4) if len(finite) else None


def order_split(columns: dict[str, np.ndarray]) -> np.ndarray:
    """Per pair, whether the judge answered both orders and its two verdicts pick different
    responses (it followed the position, not the texts): the judge's `ambiguous` tag."""
    first = columns["judge_agree_chosen_first"]
    second = columns["judge_agree_chosen_second"]
    return ~np.isnan(first) & ~np.isnan(second) & (first != second)


def summary(columns: dict[str, np.ndarray]) -> dict[str, float | int | None]:
    """Agreement with the labels and position bias over judged pairs (the job's metrics).

    `first_position_rate` is the share of verdicts that picked the response shown first (0.5 for
    a judge without position bias); `consistency` the share of pairs judged in both orders whose
    two verdicts pick the same response."""
    first = columns["judge_agree_chosen_first"]
    second = columns["judge_agree_chosen_second"]
    picked_a = np.concatenate([first[~np.isnan(first)], 1.0 - second[~np.isnan(second)]])
    both = ~np.isnan(first) & ~np.isnan(second)
    first_rate = _rate(picked_a)
    return {
        "pairs": int(len(first)),
        "pairs_judged_both_orders": int(both.sum()),
        "failed_orders": int(np.nansum(columns["judge_failed_orders"])),
        "agreement": _rate(np.concatenate([first, second])),
        "agreement_chosen_first": _rate(first),
        "agreement_chosen_second": _rate(second),
        "agreement_both_orders": _rate(np.where(both, first * second, np.nan)),
        "first_position_rate": first_rate,
        "position_bias": None if first_rate is None else round(first_rate - 0.5, 4),
        "consistency": _rate(np.where(both, (~order_split(columns)).astype(float), np.nan)),
        "mean_confidence": _rate(columns["judge_confidence"]),
    }
