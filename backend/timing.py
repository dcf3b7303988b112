"""Server-Timing on every HTTP response: how long the server spent on the request, how much of it
waiting on the database, and the process's CPU time meanwhile, so that a client on a loaded
machine can tell the server's work from the time its request queued (the review benchmark
records them beside its own latencies).

    Server-Timing: app;dur=12.3, db;dur=4.1;desc="9 statements", cpu;dur=7.9

`app` is the wall time from the request reaching the app to its response's headers (a streamed
body is not included); `db` the wall time spent in the database driver's execute calls of this
request (statements run on the request's threads); `cpu` the CPU time of the whole process over
the same span, which is this request's own only when it is the only one in flight.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_CURRENT: ContextVar[list[float] | None] = ContextVar("server_timing", default=None)
"""The request's [database seconds, statements]: a list shared with the threads a sync route runs
on (they get a copy of the context, so they add to the same list)."""


@event.listens_for(Engine, "before_cursor_execute")
def _statement_started(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
    if _CURRENT.get() is not None:
        conn.info.setdefault("server_timing_start", []).append(time.perf_counter())


@event.listens_for(Engine, "after_cursor_execute")
def _statement_done(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
    spent = _CURRENT.get()
    started = conn.info.get("server_timing_start")
    if spent is not None and started:
        spent[0] += time.perf_counter() - started.pop()
        spent[1] += 1


class ServerTiming:
    """Pure ASGI middleware adding the `Server-Timing` header (streams pass through untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        spent = [0.0, 0.0]
        token = _CURRENT.set(spent)
        wall, cpu = time.perf_counter(), time.process_time()

        async def send_timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                app_ms = 1000 * (time.perf_counter() - wall)
                cpu_ms = 1000 * (time.process_time() - cpu)
                value = (
                    f'app;dur={app_ms:.1f}, db;dur={1000 * spent[0]:.1f};desc="'
                    f'{int(spent[1])} statements", cpu;dur={cpu_ms:.1f}'
                )
                headers = [*message.get("headers", []), (b"server-timing", value.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_timed)
        finally:
            _CURRENT.reset(token)
