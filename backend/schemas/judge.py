"""The LLM judge: its prompt template (defaults shown, editable per job), a judge job's options
and the estimate before launch. The server's key is never a field: it comes from the server's
settings (PREFAUDIT_JUDGE_API_KEY)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from worker.influence.judge.template import (
    DEFAULT_MAX_CHARS,
    DEFAULT_SYSTEM,
    DEFAULT_USER,
    PLACEHOLDERS,
    JudgeTemplate,
)

WITHHELD = "(withheld)"
_SECRET_WORDS = ("key", "secret", "token", "password", "auth")


class JudgeTemplateIn(BaseModel):
    """What the judge is asked: `user` must hold {prompt}, {response_a} and {response_b} once
    each; the response shown first is A. Each text is cut to `max_chars`."""

    model_config = ConfigDict(extra="forbid")

    system: str = Field(DEFAULT_SYSTEM, max_length=20_000)
    user: str = Field(DEFAULT_USER, min_length=1, max_length=20_000)
    max_chars: int = Field(DEFAULT_MAX_CHARS, ge=16, le=200_000)

    @model_validator(mode="after")
    def _placeholders(self) -> JudgeTemplateIn:
        problems = JudgeTemplate(self.system, self.user, self.max_chars).problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self


class JudgeCreate(BaseModel):
    """A judge job: every pair of the dataset asked twice (chosen shown first, then second)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(
        min_length=8,
        max_length=2000,
        description="The server's OpenAI-compatible API root, e.g. http://127.0.0.1:8080/v1.",
    )
    model: str = Field(min_length=1, max_length=256, description="The model the server serves.")
    template: JudgeTemplateIn = Field(default_factory=JudgeTemplateIn)
    max_concurrency: int = Field(4, ge=1, le=64, description="Requests in flight at once.")
    timeout_seconds: float = Field(60.0, gt=0, le=600, description="Per request.")
    max_retries: int = Field(
        4, ge=0, le=10, description="Tries after the first (429/5xx/timeouts)."
    )
    max_tokens: int = Field(4, ge=1, le=256, description="The answer's token budget.")
    temperature: float = Field(0.0, ge=0, le=2)
    logprobs: bool = Field(
        True,
        description="Ask for log-probabilities (the confidence column); off for servers "
        "that refuse them.",
    )
    top_logprobs: int = Field(5, ge=1, le=20)
    seed: int | None = Field(0, ge=0, le=2**31 - 1)
    shard_size: int = Field(
        32, ge=1, le=2000, description="Pairs judged and stored per step (progress and cancel)."
    )

    @model_validator(mode="before")
    @classmethod
    def _withhold_secrets(cls, data: Any) -> Any:
        """A 422 echoes what it refuses: an unknown field that looks like a secret, or a URL's
        credentials, are replaced before validation refuses them, so no error shows them."""
        if not isinstance(data, dict):
            return data
        out = {
            name: WITHHELD
            if name not in cls.model_fields and any(w in name.lower() for w in _SECRET_WORDS)
            else value
            for name, value in data.items()
        }
        url = out.get("base_url")
        if isinstance(url, str) and "@" in url.partition("://")[2].split("/")[0]:
            scheme, _, rest = url.partition("://")
            out["base_url"] = f"{scheme}://{WITHHELD}@{rest.split('@', 1)[1]}"
        return out

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an http(s) URL, got {value!r}")
        if parts.username or parts.password:
            raise ValueError("base_url must not carry credentials: the key is a server setting")
        return value.strip().rstrip("/")


class JudgeEstimateCreate(JudgeCreate):
    probe: bool = Field(
        False, description="Time one real request to the server (the first pair, chosen first)."
    )


class JudgeDefaults(BaseModel):
    """The default prompt and options, and whether the server has a judge key configured."""

    template: JudgeTemplateIn
    placeholders: list[str] = Field(default_factory=lambda: list(PLACEHOLDERS))
    key_configured: bool = Field(description="PREFAUDIT_JUDGE_API_KEY is set (never shown).")
    columns: list[str] = Field(description="The score columns a judge job fills.")


class JudgeEstimate(BaseModel):
    """What a judge job over the dataset would cost, before launch."""

    pairs: int
    requests: int = Field(description="Both orders of every pair.")
    cached_requests: int | None = Field(
        None, description="Of those, answered already (free); None when not counted (large sets)."
    )
    prompt_tokens: int
    completion_tokens: int = Field(description="At the full max_tokens budget: an upper bound.")
    token_method: str
    seconds_per_request: float | None = Field(
        None, description="Wall time per request, from the rate source; None: no rate yet."
    )
    rate_source: str = Field(description="Where the rate comes from, in words.")
    seconds: float | None = Field(None, description="Estimated wall time of the uncached requests.")
