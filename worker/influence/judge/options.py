"""A judge job's options (what the API validates and the job's config stores; never the key),
the request parameters they make, and the token and time estimate shown before launch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from worker.influence.judge.run import ORDERS
from worker.influence.judge.template import PLACEHOLDERS, JudgeTemplate

CHARS_PER_TOKEN = 4.0
"""The estimate's tokens: characters / 4, the usual English average of BPE vocabularies (GPT-2's,
Llama's, SmolLM2's); code and non-Latin text run higher. The chat template's own wrapping adds
`MESSAGE_OVERHEAD_TOKENS` per message."""

MESSAGE_OVERHEAD_TOKENS = 4


@dataclass(frozen=True)
class JudgeOptions:
    base_url: str = field(
        metadata={"help": "The server's OpenAI-compatible API root, e.g. http://127.0.0.1:8080/v1."}
    )
    model: str = field(metadata={"help": "The model name the server expects."})
    template: JudgeTemplate = field(default_factory=JudgeTemplate)
    max_concurrency: int = field(default=4, metadata={"help": "Requests in flight at once."})
    timeout_seconds: float = field(default=60.0, metadata={"help": "Per request."})
    max_retries: int = field(
        default=4, metadata={"help": "Tries after the first on 429/5xx/timeouts."}
    )
    max_tokens: int = field(default=4, metadata={"help": "The answer's token budget."})
    temperature: float = 0.0
    logprobs: bool = field(
        default=True,
        metadata={"help": "Ask for the first token's log-probabilities (the confidence column)."},
    )
    top_logprobs: int = 5
    seed: int | None = 0
    shard_size: int = field(
        default=32,
        metadata={
            "help": "Pairs judged and stored per step (progress, cancel and resume granularity)."
        },
    )

    def params(self) -> dict[str, Any]:
        """The request's parameters besides model and messages (part of the cache key)."""
        params: dict[str, Any] = {"max_tokens": self.max_tokens, "temperature": self.temperature}
        if self.logprobs:
            params.update(logprobs=True, top_logprobs=self.top_logprobs)
        if self.seed is not None:
            params["seed"] = self.seed
        return params


@dataclass(frozen=True)
class TokenEstimate:
    requests: int
    prompt_tokens: int
    completion_tokens: int
    method: str


def estimate_tokens(lengths: np.ndarray, options: JudgeOptions) -> TokenEstimate:
    """Tokens of every request of a job over pairs of these lengths ((n, 3) characters of
    prompt, chosen, rejected): each text cut as the template cuts it, the template's own text
    added, both orders; the answer counted at its full `max_tokens` budget (an upper bound).

    Tokens are characters / CHARS_PER_TOKEN: the judge's own tokenizer is on the server, and
    the estimate must not need the texts of every pair (the lengths are stored at upload)."""
    template = options.template
    fixed = len(template.system) + len(template.user) - sum(len(p) for p in PLACEHOLDERS)
    messages = 2 if template.system else 1
    cut = np.minimum(np.asarray(lengths, dtype=np.int64).reshape(-1, 3), template.max_chars)
    chars = cut.sum(axis=1) + fixed
    per_request = np.ceil(chars / CHARS_PER_TOKEN) + messages * MESSAGE_OVERHEAD_TOKENS
    requests = len(cut) * len(ORDERS)
    return TokenEstimate(
        requests=requests,
        prompt_tokens=int(per_request.sum()) * len(ORDERS),
        completion_tokens=requests * options.max_tokens,
        method=(
            f"approximate: characters / {CHARS_PER_TOKEN:g} + {MESSAGE_OVERHEAD_TOKENS} per message"
        ),
    )
