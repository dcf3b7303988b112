"""Domain errors: a request that fails for a reason the caller can act on. Services, dependencies
and ingest raise them; `backend.main` turns each kind into its HTTP answer in one place."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """The base of every domain error: its message is what the caller is told."""

    @property
    def detail(self) -> Any:
        """The answer's `detail`: the message, unless a subclass has more to say."""
        return str(self)


class BadInput(DomainError, ValueError):
    """The request cannot be done as asked: the message says what to change (422)."""


class NotFound(DomainError, LookupError):
    """What the request names does not exist, or the caller cannot see it (404)."""


class Forbidden(DomainError, PermissionError):
    """The caller may not do this: the message says what it needs (403)."""


class Conflict(DomainError, ValueError):
    """The request clashes with what exists, e.g. a name already taken (409)."""


class TooLarge(DomainError, ValueError):
    """The request or its file goes past a size limit (413)."""


class Unauthorized(DomainError):
    """No valid credentials (401); `challenge` is the WWW-Authenticate value to send, if any."""

    def __init__(self, message: str, challenge: str | None = None) -> None:
        super().__init__(message)
        self.challenge = challenge


class Unavailable(DomainError):
    """A service the request needs is not ready (503); `retry_after` seconds, when known."""

    retry_after: float | None = None


class Throttled(DomainError):
    """Too many attempts: try again after `retry_after` seconds (429)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
