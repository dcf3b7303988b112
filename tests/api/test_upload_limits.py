"""Upload limits: decompression bombs, line and row limits, body size checked as it arrives, and
staged uploads a crash leaves behind. Each is a 413 (or 422) naming the limit; nothing is kept."""

from __future__ import annotations

import gzip
import io
import json
import os
import threading
import time
import zlib

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.factories import n_stored_files, staged_uploads, stored_counts, upload

API = "/api/v1"
MIB = 1024**2


def _gzip_stream(first: bytes, filler: bytes, total: int) -> bytes:
    """A gzip member of `first` then `filler` repeated to `total` bytes, compressed in pieces so
    the test never holds the expanded text."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [packer.compress(first)]
    block = filler * (MIB // len(filler))
    for _ in range(total // len(block)):
        out.append(packer.compress(block))
    out.append(packer.flush())
    return b"".join(out)


class _PeakRss:
    """The test process's resident memory, sampled while the upload runs (the API runs in it)."""

    def __enter__(self):
        self.process = psutil.Process()
        self.base = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def grew_mb(self) -> float:
        return (self.peak - self.base) / MIB


RSS_BOUND_MB = 400
"""What one hostile upload may add to the API's memory (the line limit is 64 MiB)."""


@pytest.mark.parametrize(
    ("case", "first", "filler", "fragment", "row"),
    [
        ("one 1 GiB line", b'{"chosen": "', b"a", "expands", 1),
        # Blank lines compress so well that the line count stops them first.
        ("1 GiB of blank lines", b"", b"\n", "more than 20,000,000 lines", 20_000_001),
    ],
)
def test_decompression_bombs_are_413s_with_bounded_memory(
    client, auth, case, first, filler, fragment, row
) -> None:
    bomb = _gzip_stream(first, filler, 1024 * MIB)
    assert len(bomb) < 3 * MIB  # a small file on the wire
    before, files_before = stored_counts(), n_stored_files()
    with _PeakRss() as rss:
        started = time.perf_counter()
        response = upload(client, auth, bomb, "bomb.jsonl.gz")
        seconds = time.perf_counter() - started
    assert response.status_code == 413, response.text
    detail = response.json()["detail"]
    assert fragment in detail["message"] and detail["row"] == row, detail
    assert rss.grew_mb < RSS_BOUND_MB, f"{case}: the API grew by {rss.grew_mb:.0f} MB"
    assert seconds < 60
    assert stored_counts() == before and n_stored_files() == files_before and staged_uploads() == 0


@pytest.fixture
def small_limits(client):
    """The upload route with small limits (the dependency the route reads its settings from)."""
    from backend.settings import Settings, get_settings

    settings = get_settings().model_copy(
        update={"max_line_bytes": 1000, "max_rows": 50, "max_expansion": 1e9}
    )
    client.app.dependency_overrides[get_settings] = lambda: settings
    yield settings
    client.app.dependency_overrides.pop(get_settings, None)
    assert isinstance(settings, Settings)


def _rows(n: int) -> bytes:
    return "".join(
        json.dumps({"prompt": f"q{i}", "chosen": "a", "rejected": "b"}) + "\n" for i in range(n)
    ).encode()


def test_line_and_row_limits_name_the_row(client, auth, small_limits) -> None:
    long_line = (
        _rows(3) + json.dumps({"prompt": "q", "chosen": "x" * 2000, "rejected": "b"}).encode()
    )
    for data, name, fragment, row in [
        (long_line + b"\n", "long.jsonl", "longer than 1,000 bytes", 4),
        (gzip.compress(long_line), "long.jsonl.gz", "longer than 1,000 bytes", 4),
        (_rows(51), "many.jsonl", "more than 50 lines", 51),
        (_rows(10) + b"\n" * 60, "blank.jsonl", "more than 50 lines", 51),
        (
            ("prompt,chosen,rejected\n" + "q,a,b\n" * 60).encode(),
            "many.csv",
            "more than 50 lines",
            51,
        ),
    ]:
        before = stored_counts()
        response = upload(client, auth, data, name)
        assert response.status_code == 413, (name, response.text)
        detail = response.json()["detail"]
        assert fragment in detail["message"] and detail["row"] == row, (name, detail)
        assert stored_counts() == before and staged_uploads() == 0
    # Within the limits the same route still takes a file.
    assert upload(client, auth, _rows(50), "ok.jsonl").status_code == 201


def test_parquet_and_json_limits(client, auth, small_limits) -> None:
    sink = io.BytesIO()
    pq.write_table(
        pa.table({"prompt": ["q"] * 60, "chosen": ["a"] * 60, "rejected": ["b"] * 60}), sink
    )
    response = upload(client, auth, sink.getvalue(), "many.parquet")
    assert response.status_code == 413 and "60 rows" in response.text, response.text
    records = [{"prompt": f"q{i}", "chosen": "a", "rejected": "b"} for i in range(60)]
    response = upload(client, auth, json.dumps(records).encode(), "many.json")
    assert response.status_code == 413 and "more than 50 records" in response.text


@pytest.fixture
def tiny_app(database):
    """An app whose body limits are small, built from the environment like the real one."""
    from fastapi.testclient import TestClient

    from backend.main import create_app
    from backend.settings import get_settings

    saved = {
        k: os.environ.get(k) for k in ("PREFAUDIT_MAX_UPLOAD_BYTES", "PREFAUDIT_MAX_BODY_BYTES")
    }
    os.environ["PREFAUDIT_MAX_UPLOAD_BYTES"] = "100000"
    os.environ["PREFAUDIT_MAX_BODY_BYTES"] = "20000"
    get_settings.cache_clear()
    try:
        yield TestClient(create_app())
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()


def test_the_size_limit_is_checked_as_the_body_arrives(tiny_app, auth) -> None:
    before, staged = stored_counts(), staged_uploads()
    big = _rows(5000)  # ~300 KB, over the 100 KB limit
    declared = upload(tiny_app, auth, big, "big.jsonl")
    assert declared.status_code == 413, declared.text
    assert "larger than the limit of" in declared.json()["detail"]

    # A client streaming without Content-Length, against a real server: the 413 arrives while
    # the client is still sending, long before the 10 MB it would send.
    status, sent = _stream_until_answered(tiny_app.app, auth, total=10 * MIB)
    assert status == 413
    assert sent < 2 * MIB, f"the server read {sent} bytes before answering"
    # Small uploads pass, and other routes have their own (smaller) body limit.
    assert upload(tiny_app, auth, _rows(3), "small.jsonl").status_code == 201
    response = tiny_app.post(f"{API}/auth/login", json={"username": "x" * 30_000, "password": "p"})
    assert response.status_code == 413
    assert stored_counts()[0] == before[0] + 1 and staged_uploads() == staged


def test_staged_uploads_left_by_a_crash_are_removed(database) -> None:
    import socket

    from backend.services.ingest import STAGED_PREFIX, clean_staged
    from backend.settings import get_settings

    settings = get_settings()
    uploads = settings.data_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname().replace("-", "_")[:40]
    dead = subprocess_pid_that_exited()
    orphan = uploads / f"{STAGED_PREFIX}{host}-{dead}-abc"
    live = uploads / f"{STAGED_PREFIX}{host}-{os.getpid()}-def"
    other_host = uploads / f"{STAGED_PREFIX}elsewhere-{dead}-ghi"
    stale = uploads / f"{STAGED_PREFIX}elsewhere-{dead}-jkl"
    folder = settings.data_dir / "datasets" / "2000000000"
    for path in (orphan, live, other_host, stale):
        path.write_bytes(b"x" * 1000)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "original.jsonl").write_bytes(b"{}")
    old = time.time() - 2 * 24 * 3600
    os.utime(stale, (old, old))
    os.utime(folder, (old, old))
    try:
        assert clean_staged(settings) == 3
        assert not orphan.exists() and not stale.exists() and not folder.exists()
        assert live.exists() and other_host.exists()  # alive here; another host's, still young
    finally:
        for path in (live, other_host):
            path.unlink(missing_ok=True)


def subprocess_pid_that_exited() -> int:
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _stream_until_answered(app, auth: dict, total: int) -> tuple[int, int]:
    """POST a chunked multipart body of `total` bytes to `app` served by uvicorn on a free port,
    in 64 KB chunks; stop at the first response. Returns (status, bytes sent by then)."""
    import select
    import socket

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        client = socket.create_connection(("127.0.0.1", port))
        head = (
            f"POST {API}/datasets HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: {auth['Authorization']}\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
        client.sendall(head)
        part = b'--x\r\nContent-Disposition: form-data; name="file"; filename="c.jsonl"\r\n\r\n'
        client.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        sent, chunk = 0, b"a" * 65536
        while sent < total:
            ready, _, _ = select.select([client], [], [], 0)
            if ready:
                break
            try:
                client.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
            time.sleep(0.002)
        client.settimeout(10)
        reply = client.recv(4096).decode("latin-1")
        client.close()
        return int(reply.split(" ", 2)[1]), sent
    finally:
        server.should_exit = True
        thread.join(timeout=10)
