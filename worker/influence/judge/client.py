"""One judge request through the `openai` client: the cache first (keyed by the exact request),
then the server, retried with backoff on 429, 5xx, timeouts and lost connections, honouring the
server's `Retry-After`. Thread-safe: the runner calls it from a pool."""

from __future__ import annotations

import email.utils
import hashlib
import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import openai


@dataclass(frozen=True)
class Answer:
    """What the server said: the message and the first token's top log-probabilities."""

    content: str | None
    top_logprobs: list[dict[str, Any]] | None = None


class AnswerCache(Protocol):
    """Answers by request key; `put` may be called from several threads at once."""

    def get(self, key: str) -> Answer | None: ...

    def put(self, key: str, answer: Answer, model: str) -> None: ...


class MemoryCache:
    """A dict cache (tests and benchmarks)."""

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Answer | None:
        with self._lock:
            return self.answers.get(key)

    def put(self, key: str, answer: Answer, model: str) -> None:
        with self._lock:
            self.answers[key] = answer


class JudgeServerError(RuntimeError):
    """The server cannot be used (unreachable, refusing the key or the model, or still failing
    after every retry): the job stops instead of recording a failure for every pair."""


class RequestTimeout(RuntimeError):
    """One request stayed slower than the timeout on every try: a failure of that pair."""


class RequestRejected(RuntimeError):
    """The server refused this one request (400, 413, 422: too long, say): a pair's failure."""


class Stopped(Exception):
    """The caller asked to stop (a cancelled job) while a request waited to be retried."""


@dataclass
class RequestStats:
    """Counts over a client's lifetime (the job's metrics)."""

    requests: int = 0
    cache_hits: int = 0
    retries: int = 0
    rate_limited: int = 0
    retry_after_seconds: float = 0.0
    timeouts: int = 0
    server_errors: int = 0
    request_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: float) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


def request_key(base_url: str, model: str, messages: list[dict[str, str]], params: dict) -> str:
    """sha256 of the exact request: the same server, model, messages and parameters (the key is
    not part of it) give the same key, anything else another."""
    blob = json.dumps(
        {"base_url": base_url.rstrip("/"), "model": model, "messages": messages, "params": params},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def retry_after(exc: openai.APIStatusError, cap: float) -> float | None:
    """Seconds the server asked to wait (`retry-after-ms`, `Retry-After` as seconds or an
    HTTP date), capped; None when it said nothing usable."""
    headers = exc.response.headers
    try:
        if "retry-after-ms" in headers:
            return min(cap, max(0.0, float(headers["retry-after-ms"]) / 1000))
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return min(cap, max(0.0, float(value)))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return min(cap, max(0.0, when.timestamp() - time.time()))
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 4
    """Tries after the first, for 429, 5xx, timeouts and lost connections."""
    backoff_seconds: float = 0.5
    """The first wait; doubled each try (with up to 25% jitter) when the server names none."""
    max_wait_seconds: float = 60.0
    """No single wait is longer, whatever `Retry-After` says."""


class JudgeClient:
    """Sends judge requests to one server and model, through the cache."""

    def __init__(
        self,
        base_url: str,
        model: str,
        params: dict[str, Any],
        cache: AnswerCache,
        api_key: str | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        http_client: Any = None,
    ) -> None:
        self.base_url, self.model, self.params = base_url.rstrip("/"), model, dict(params)
        self.cache, self.timeout = cache, timeout
        self.retry = retry or RetryPolicy()
        self.stats = RequestStats()
        self.stop = threading.Event()
        # The client's own retries are off: these are counted and honour `Retry-After` here.
        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=api_key or "not-needed",
            timeout=timeout,
            max_retries=0,
            http_client=http_client,
        )

    def key(self, messages: list[dict[str, str]]) -> str:
        return request_key(self.base_url, self.model, messages, self.params)

    def answer(self, messages: list[dict[str, str]]) -> Answer:
        """The cached answer to these messages, or the server's (then cached)."""
        key = self.key(messages)
        cached = self.cache.get(key)
        if cached is not None:
            self.stats.add(cache_hits=1)
            return cached
        answer = self._ask(messages)
        self.cache.put(key, answer, self.model)
        return answer

    def _ask(self, messages: list[dict[str, str]]) -> Answer:
        attempt = 0
        while True:
            if self.stop.is_set():
                raise Stopped()
            started = time.perf_counter()
            self.stats.add(requests=1)
            try:
                response = self._client.chat.completions.create(
                    model=self.model,
                    messages=messages,  # type: ignore[arg-type]
                    **self.params,
                )
                self.stats.add(request_seconds=time.perf_counter() - started)
                return _answer_of(response)
            except openai.APIStatusError as exc:
                wait = self._on_status(exc, attempt)
            except openai.APITimeoutError as exc:
                self.stats.add(timeouts=1)
                if attempt >= self.retry.max_retries:
                    raise RequestTimeout(
                        f"no answer within {self.timeout:g} s ({attempt + 1} tries)"
                    ) from exc
                wait = self._backoff(attempt)
            except openai.APIConnectionError as exc:
                if attempt >= self.retry.max_retries:
                    raise JudgeServerError(
                        f"the judge server at {self.base_url} is unreachable after "
                        f"{attempt + 1} tries: {exc.__cause__ or exc}"
                    ) from exc
                wait = self._backoff(attempt)
            attempt += 1
            self.stats.add(retries=1)
            if self.stop.wait(wait):
                raise Stopped()

    def _on_status(self, exc: openai.APIStatusError, attempt: int) -> float:
        """The wait before the next try after an error status, or raise what it means."""
        status = exc.status_code
        detail = f"{status} from {self.base_url}: {_message(exc)}"
        if status in (400, 413, 422):
            raise RequestRejected(detail) from exc
        if status != 429 and status < 500 and status != 408:
            raise JudgeServerError(f"the judge server refused the request: {detail}") from exc
        if status == 429:
            self.stats.add(rate_limited=1)
        else:
            self.stats.add(server_errors=1)
        if attempt >= self.retry.max_retries:
            raise JudgeServerError(
                f"the judge server still answers {status} after {attempt + 1} tries: {detail}"
            ) from exc
        asked = retry_after(exc, self.retry.max_wait_seconds)
        if asked is not None:
            self.stats.add(retry_after_seconds=asked)
            return asked
        return self._backoff(attempt)

    def _backoff(self, attempt: int) -> float:
        base = self.retry.backoff_seconds * 2**attempt
        return min(self.retry.max_wait_seconds, base * (1 + 0.25 * random.random()))

    def close(self) -> None:
        self._client.close()


def _message(exc: openai.APIStatusError) -> str:
    try:
        return str(exc.message)[:300]
    except Exception:  # a body that is not what the client expects
        return type(exc).__name__


def _answer_of(response: Any) -> Answer:
    """The first choice's content and its first token's top log-probabilities, as plain data."""
    if not response.choices:
        return Answer(None, None)
    choice = response.choices[0]
    content = choice.message.content if choice.message is not None else None
    top = None
    logprobs = getattr(choice, "logprobs", None)
    tokens = getattr(logprobs, "content", None) if logprobs is not None else None
    if tokens:
        first = tokens[0]
        alternatives = getattr(first, "top_logprobs", None) or [first]
        top = [{"token": str(a.token), "logprob": float(a.logprob)} for a in alternatives]
    return Answer(content, top)
