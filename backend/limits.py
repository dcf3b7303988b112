"""Request body limits, enforced as the body arrives: a 413 before an oversized upload is read.

Starlette parses a multipart upload into a temporary file before the route runs, so a size check
in the route comes only after every byte was received and written to disk. This ASGI middleware
answers 413 at once when `Content-Length` says the body is too large, and otherwise counts the
bytes as they are received and stops the request when the count passes the limit (chunked
uploads, or a client that lies about its length).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MULTIPART_OVERHEAD = 64 * 1024
"""Room for the multipart boundaries and the form's other fields beside the file itself."""


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than the limit of {limit:,} bytes")
        self.limit = limit


class BodyLimit:
    """`upload_limit` bytes for `POST` to one of `upload_paths`, `default_limit` for every other
    request."""

    def __init__(
        self, app: ASGIApp, upload_paths: tuple[str, ...], upload_limit: int, default_limit: int
    ) -> None:
        self.app = app
        self.upload_paths = {path.rstrip("/") for path in upload_paths}
        self.upload_limit = upload_limit + MULTIPART_OVERHEAD
        self.default_limit = default_limit

    def _limit(self, scope: Scope) -> int:
        path = scope["path"].rstrip("/")
        upload = scope.get("method") == "POST" and path in self.upload_paths
        return self.upload_limit if upload else self.default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit, early=True)
            return
        received = 0
        started = exceeded = replaced = False

        async def counted() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge(limit)
            return message

        async def tracked(message: Message) -> None:
            # The app may turn the stopped body into an error of its own (FastAPI answers 400
            # "error parsing the body"): whatever it answers, the client gets the 413.
            nonlocal started, replaced
            if replaced:
                return
            if message["type"] == "http.response.start":
                if exceeded:
                    replaced = True
                    await _too_large(send, limit, early=False)
                    return
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge as exc:
            if started or replaced:
                return
            await _too_large(send, exc.limit, early=False)


async def _too_large(send: Send, limit: int, early: bool) -> None:
    detail = f"the request body is larger than the limit of {limit:,} bytes" + (
        "" if early else " (stopped while receiving it)"
    )
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
