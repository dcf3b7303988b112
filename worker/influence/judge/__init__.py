"""An LLM judge on any OpenAI-compatible chat server: the prompt, the parsing of answers, the
cached and retried client, judging pairs in both orders, and the estimate before launch.
Torch-free; the job runner (worker/jobs/judge.py) gives it pairs, a cache and a cancel flag."""

from worker.influence.judge.client import (
    Answer,
    AnswerCache,
    JudgeClient,
    JudgeServerError,
    MemoryCache,
    RetryPolicy,
    request_key,
)
from worker.influence.judge.options import JudgeOptions, TokenEstimate, estimate_tokens
from worker.influence.judge.parse import MalformedAnswer, Verdict, parse_answer
from worker.influence.judge.run import (
    JUDGE_COLUMNS,
    ORDERS,
    JudgeCancelled,
    JudgeOutcome,
    JudgePair,
    OrderFailure,
    judge_pairs,
    order_split,
    summary,
)
from worker.influence.judge.template import JudgeTemplate

__all__ = [
    "JUDGE_COLUMNS",
    "ORDERS",
    "Answer",
    "AnswerCache",
    "JudgeCancelled",
    "JudgeClient",
    "JudgeOptions",
    "JudgeOutcome",
    "JudgePair",
    "JudgeServerError",
    "JudgeTemplate",
    "MalformedAnswer",
    "MemoryCache",
    "OrderFailure",
    "RetryPolicy",
    "TokenEstimate",
    "Verdict",
    "estimate_tokens",
    "judge_pairs",
    "order_split",
    "parse_answer",
    "request_key",
    "summary",
]


def make_client(options: JudgeOptions, cache: AnswerCache, api_key: str | None) -> JudgeClient:
    """The client for a job's options."""
    return JudgeClient(
        options.base_url,
        options.model,
        options.params(),
        cache,
        api_key=api_key,
        timeout=options.timeout_seconds,
        retry=RetryPolicy(max_retries=options.max_retries),
    )
