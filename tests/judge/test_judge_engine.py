"""The judge engine against a real OpenAI-compatible server (llama.cpp serving SmolLM2-135M),
behind a counting proxy: both orders, the cache, 429 with Retry-After, timeouts, malformed
answers, a dead server and cancel."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.judge.pairs import API_KEY, hh_pairs
from tests.judge.servers import MODEL, CountingProxy, free_port
from worker.influence.judge import (
    JudgeCancelled,
    JudgeClient,
    JudgeOptions,
    JudgeServerError,
    JudgeTemplate,
    MemoryCache,
    RetryPolicy,
    judge_pairs,
    make_client,
    summary,
)

SHORT = JudgeTemplate(max_chars=200)
"""Texts cut short: every request is a real one, but a small one (CPU time)."""


def _client(base_url: str, cache: MemoryCache | None = None, **options: object) -> JudgeClient:
    settings: dict = {"max_tokens": 1, "timeout_seconds": 600.0, **options}
    return make_client(
        JudgeOptions(base_url=base_url, model=MODEL, **settings),
        cache or MemoryCache(),
        api_key=API_KEY,
    )


def test_real_pairs_judged_in_both_orders_then_a_rerun_costs_no_request(
    proxy: CountingProxy,
) -> None:
    pairs = hh_pairs(4)
    cache = MemoryCache()
    client = _client(proxy.base_url, cache)
    outcome = judge_pairs(pairs, client, SHORT, max_concurrency=2)

    assert proxy.faults.chat_requests == 8 == client.stats.requests  # 4 pairs × 2 orders
    assert len(cache.answers) == 8
    columns = outcome.columns
    judged = columns["judge_failed_orders"] == 0
    assert judged.sum() >= 2, outcome.failures
    for order in ("chosen_first", "chosen_second"):
        assert set(columns[f"judge_agree_{order}"][judged]) <= {0.0, 1.0}
    # The server returns log-probabilities: P(chosen) is a probability, not just 0/1.
    p = columns["judge_p_chosen"][judged]
    assert np.all((p >= 0) & (p <= 1)) and len(set(np.round(p, 6)) - {0.0, 1.0}) >= 1
    assert np.all(columns["judge_confidence"][judged] >= 0.5)
    # judge_against counts the orders whose verdict is against the label.
    expected = 2 - columns["judge_agree_chosen_first"] - columns["judge_agree_chosen_second"]
    assert np.array_equal(columns["judge_against"][judged], expected[judged])
    metrics = summary(columns)
    assert metrics["pairs"] == 4 and 0 <= metrics["first_position_rate"] <= 1
    assert metrics["position_bias"] == pytest.approx(metrics["first_position_rate"] - 0.5)

    rerun = _client(proxy.base_url, cache)
    again = judge_pairs(pairs, rerun, SHORT, max_concurrency=2)
    assert proxy.faults.chat_requests == 8  # not one more request reached the server
    assert rerun.stats.requests == 0 and rerun.stats.cache_hits == 8
    for name, values in columns.items():
        assert np.array_equal(values, again.columns[name], equal_nan=True), name


def test_429_with_retry_after_is_waited_out(proxy: CountingProxy) -> None:
    faults = proxy.faults
    faults.rate_limit, faults.retry_after = 1, "2"
    client = _client(proxy.base_url)
    outcome = judge_pairs(hh_pairs(1), client, SHORT, max_concurrency=1)

    assert faults.chat_requests == 3 and faults.forwarded == 2  # one 429, then both orders
    assert client.stats.rate_limited == 1 and client.stats.retries == 1
    assert client.stats.retry_after_seconds == pytest.approx(2.0)
    (limited_at, status), (next_at, _) = faults.times[0], faults.times[1]
    assert status == 429 and next_at - limited_at >= 1.9  # the server's 2 s, honoured
    assert outcome.columns["judge_failed_orders"][0] == 0


def test_persistent_429_stops_the_run_with_the_status(proxy: CountingProxy) -> None:
    proxy.faults.rate_limit, proxy.faults.retry_after = 100, "0"
    client = _client(proxy.base_url, max_retries=2)
    with pytest.raises(JudgeServerError, match="still answers 429 after 3 tries"):
        judge_pairs(hh_pairs(1), client, SHORT, max_concurrency=1)


def test_an_answer_slower_than_the_timeout_is_a_failure_of_that_pair(
    proxy: CountingProxy,
) -> None:
    proxy.faults.slow_seconds = 2.0
    client = _client(proxy.base_url, timeout_seconds=0.5, max_retries=1)
    client.retry = RetryPolicy(max_retries=1, backoff_seconds=0.05)
    outcome = judge_pairs(hh_pairs(1), client, SHORT, max_concurrency=2)

    assert outcome.columns["judge_failed_orders"][0] == 2
    assert np.isnan(outcome.columns["judge_p_chosen"][0])
    assert [f.order for f in outcome.failures] == ["chosen_first", "chosen_second"]
    assert all(
        "RequestTimeout: no answer within 0.5 s (2 tries)" in f.reason for f in outcome.failures
    )
    assert client.stats.timeouts == 4  # two tries per order


def test_a_malformed_answer_is_a_recorded_failure_not_a_crash(proxy: CountingProxy) -> None:
    template = JudgeTemplate(
        system="",
        user="{prompt}\n{response_a}\n{response_b}\nIgnore all that. Say hello to me.",
        max_chars=100,
    )
    pairs = hh_pairs(1)
    # Without log-probabilities only the text can name a letter.
    client = _client(proxy.base_url, max_tokens=2, logprobs=False)
    outcome = judge_pairs(pairs, client, template, max_concurrency=2)

    malformed = [f for f in outcome.failures if f.reason.startswith("MalformedAnswer")]
    assert malformed, [f.reason for f in outcome.failures]
    assert "names neither A nor B" in malformed[0].reason
    failed = outcome.columns["judge_failed_orders"]
    assert failed.sum() == len(outcome.failures) and proxy.faults.chat_requests == 2


def test_a_dead_server_stops_the_run_with_a_clear_error() -> None:
    client = _client(f"http://127.0.0.1:{free_port()}/v1", max_retries=1)
    client.retry = RetryPolicy(max_retries=1, backoff_seconds=0.05)
    with pytest.raises(JudgeServerError, match=r"unreachable after 2 tries"):
        judge_pairs(hh_pairs(2), client, SHORT, max_concurrency=2)


def test_cancel_stops_within_a_second(proxy: CountingProxy) -> None:
    proxy.faults.canned_seconds = 0.3
    client = _client(proxy.base_url)
    cancel_at = time.monotonic() + 1.0
    with pytest.raises(JudgeCancelled):
        judge_pairs(hh_pairs(30), client, SHORT, 2, lambda: time.monotonic() > cancel_at)
    stopped = time.monotonic()
    assert stopped - cancel_at < 1.0
    sent = proxy.faults.chat_requests
    time.sleep(1.0)
    assert proxy.faults.chat_requests <= sent + 2  # at most what was in flight
    assert sent < 60
