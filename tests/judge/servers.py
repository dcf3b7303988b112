"""A small real HTTP proxy for the judge's tests, in front of the llama.cpp server
(bench/lib/llama_server.py): it counts the chat requests and can answer 429 or answer late."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from bench.lib.llama_server import MODEL, LlamaServer, free_port, start_llama_server

__all__ = ["MODEL", "CountingProxy", "Faults", "LlamaServer", "free_port", "start_llama_server"]


CANNED = json.dumps(
    {
        "id": "canned",
        "object": "chat.completion",
        "created": 0,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "A"},
            }
        ],
    }
).encode()


@dataclass
class Faults:
    """What the proxy does to the next chat requests."""

    rate_limit: int = 0
    """Answer this many chat requests with 429 before passing any on."""
    retry_after: str = "1"
    slow_seconds: float = 0.0
    """Answer every chat request this late, with a 503 (a server slower than the client's
    timeout; the real server is not asked, so it is not kept busy by abandoned requests)."""
    canned_seconds: float = 0.0
    """Answer every chat request itself after this long with "A" (cancel tests: many quick
    requests without keeping the slow real server busy)."""
    chat_requests: int = 0
    """Chat requests that reached the proxy (429s included)."""
    forwarded: int = 0
    """Chat requests passed on to the real server."""
    times: list[tuple[float, int]] = field(default_factory=list)
    """(monotonic time, status) of every chat request, in arrival order."""
    lock: threading.Lock = field(default_factory=threading.Lock)


class CountingProxy:
    """A real HTTP server in front of the llama.cpp server: counts, and injects faults."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults = Faults()
        self.client = httpx.Client(timeout=300)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                proxy.forward(self, b"")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.forward(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def reset(self) -> Faults:
        self.faults = Faults()
        return self.faults

    def wait_for_requests(self, count: int, timeout: float) -> None:
        """Until `count` chat requests have reached the server (a job under way, to cancel)."""
        deadline = time.monotonic() + timeout
        while self.faults.chat_requests < count:
            assert time.monotonic() < deadline, f"fewer than {count} requests in {timeout} s"
            time.sleep(0.1)

    def forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        faults = self.faults
        chat = handler.path.endswith("/chat/completions")
        if chat:
            with faults.lock:
                faults.chat_requests += 1
                limited = faults.rate_limit > 0
                if limited:
                    faults.rate_limit -= 1
                faults.times.append((time.monotonic(), 429 if limited else 200))
            if limited:
                payload = b'{"error": {"message": "rate limited by the test proxy"}}'
                self._reply(handler, 429, payload, {"Retry-After": faults.retry_after})
                return
            if faults.slow_seconds:
                time.sleep(faults.slow_seconds)
                self._reply(handler, 503, b'{"error": {"message": "too late"}}')
                return
            if faults.canned_seconds:
                time.sleep(faults.canned_seconds)
                self._reply(handler, 200, CANNED)
                return
            with faults.lock:
                faults.forwarded += 1
        headers = {"Content-Type": handler.headers.get("Content-Type", "application/json")}
        if handler.headers.get("Authorization"):
            headers["Authorization"] = handler.headers["Authorization"]
        try:
            response = self.client.request(
                handler.command, self.upstream + handler.path.removeprefix("/v1"),
                content=body, headers=headers,
            )  # fmt: skip
        except httpx.HTTPError:
            handler.send_response(502)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        handler.send_response(response.status_code)
        handler.send_header("Content-Type", response.headers.get("content-type", "text/plain"))
        handler.send_header("Content-Length", str(len(response.content)))
        handler.end_headers()
        with contextlib.suppress(OSError):  # the client gave up (its timeout): nothing to say
            handler.wfile.write(response.content)

    @staticmethod
    def _reply(
        handler: BaseHTTPRequestHandler, status: int, payload: bytes, headers: dict | None = None
    ) -> None:
        with contextlib.suppress(OSError):  # the client may have given up already
            handler.send_response(status)
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.client.close()
