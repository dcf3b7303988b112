"""The review benchmark's client side: a UI-like HTTP client (httpx, one keep-alive connection,
a bearer token) against a real server, latencies, cursors at a depth, exports with the server's
RSS, and the machine's load."""

from __future__ import annotations

import os
import statistics
import threading
import time
from typing import Any

import httpx
import psutil

PAGE = 50
DEEP = 200
"""Cursors deep: the page after 200 × 50 rows (ranks 10,001 to 10,050)."""


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages (2 cores, shared with other jobs)."""
    return [round(x, 2) for x in os.getloadavg()]


class LoadWatch:
    """The 1-minute load average sampled every few seconds while a part of the bench runs."""

    def __init__(self, every_s: float = 5.0) -> None:
        self.samples = [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._every = every_s
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict[str, float]:
        return {
            "min": round(min(self.samples), 2),
            "mean": round(statistics.fmean(self.samples), 2),
            "max": round(max(self.samples), 2),
        }


class Client:
    """GET and POST against the API as the UI does: JSON, a token, one connection. Each
    response's Server-Timing (backend/timing.py) is kept as `last_timing`."""

    def __init__(self, base: str, token: str) -> None:
        self.token = token
        self.http = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=600
        )
        self.last_timing: dict[str, float] = {}

    def _timing(self, response: httpx.Response) -> None:
        self.last_timing = server_timing(response.headers.get("server-timing", ""))

    def get(self, path: str, **params: Any) -> dict:
        response = self.http.get(path, params=params)
        self._timing(response)
        assert response.status_code == 200, f"{path} {params}: {response.text[:300]}"
        return response.json()

    def put(self, path: str, body: dict) -> dict:
        response = self.http.put(path, json=body)
        self._timing(response)
        assert response.status_code == 200, f"{path}: {response.text[:300]}"
        return response.json()

    def post(self, path: str, body: dict | None = None) -> tuple[dict, float]:
        start = time.perf_counter()
        response = self.http.post(path, json=body)
        seconds = time.perf_counter() - start
        self._timing(response)
        assert response.status_code == 200, f"{path}: {response.text[:300]}"
        return response.json(), seconds


def server_timing(header: str) -> dict[str, float]:
    """{'app': ms, 'db': ms, 'cpu': ms} of a Server-Timing header value."""
    out: dict[str, float] = {}
    for metric in filter(None, (m.strip() for m in header.split(","))):
        name, *params = (part.strip() for part in metric.split(";"))
        for param in params:
            if param.startswith("dur="):
                out[name] = float(param[4:])
    return out


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def timed(client: Client, path: str, params: dict, repeat: int) -> dict[str, float]:
    """GET `path` once (cold), then `repeat` more times: the client's p50/p95 milliseconds and
    the server's own (Server-Timing: `app` from request to response headers, `db` of that in
    the database), so that queueing on a loaded machine shows as client minus server."""
    start = time.perf_counter()
    client.get(path, **params)
    first = 1000 * (time.perf_counter() - start)
    times: list[float] = []
    server: dict[str, list[float]] = {"app": [], "db": [], "cpu": []}
    for _ in range(repeat):
        _timed_get(client, path, params, times, server)
    return _summary(first, times, server)


def _timed_get(
    client: Client, path: str, params: dict, times: list[float], server: dict[str, list[float]]
) -> None:
    start = time.perf_counter()
    client.get(path, **params)
    times.append(1000 * (time.perf_counter() - start))
    for name, values in server.items():
        if name in client.last_timing:
            values.append(client.last_timing[name])


def after_decisions(
    client: Client, dataset_id: int, params: dict, repeat: int
) -> tuple[dict[str, float], dict[str, float]]:
    """The list's first page right after a reviewer's decision on one of its pairs (the page
    the UI reads again after each), and right after that decision's undo: each page the first
    request at a new review generation (its total and review bitmap follow the action).
    `repeat` decisions, each undone: the review states end as they began."""
    path = f"/datasets/{dataset_id}/pairs"
    decided: list[float] = []
    undone: list[float] = []
    servers: tuple[dict[str, list[float]], ...] = tuple(
        {"app": [], "db": [], "cpu": []} for _ in range(2)
    )
    for i in range(repeat):
        items = client.get(path, **params)["items"]
        client.put(f"{path}/{items[i % len(items)]['id']}/review", {"state": "kept"})
        _timed_get(client, path, params, decided, servers[0])
        client.post(f"/datasets/{dataset_id}/review/undo")
        _timed_get(client, path, params, undone, servers[1])
    return _summary(decided[0], decided, servers[0]), _summary(undone[0], undone, servers[1])


def _summary(first: float, times: list[float], server: dict[str, list[float]]) -> dict[str, float]:
    out = {"first_ms": first, "p50_ms": statistics.median(times), "p95_ms": _p95(times)}
    for name, values in server.items():
        if values:
            out[f"server_{name}_p50_ms"] = statistics.median(values)
            out[f"server_{name}_p95_ms"] = _p95(values)
    return out


def sort_sql(sort: str) -> tuple[str, str, str]:
    """(value expression, id expression, direction) of a list sort, as the API orders it."""
    key = sort.lstrip("-")
    direction = "DESC" if sort.startswith("-") else "ASC"
    if key == "index":
        return "p.file_row", "p.id", direction
    if key == "length":
        return "p.prompt_chars + p.chosen_chars + p.rejected_chars", "p.id", direction
    return f"s.{key}", "s.pair_id", direction


def cursor_at(sessions: Any, job_id: int, sort: str, rank: int, where: str = "") -> str | None:
    """The cursor the API hands out after `rank` rows of this sort (the row read once by OFFSET
    in SQL, nulls last in pair order as the API lists them; the page after it is then read by the
    API as any cursor). None past the end."""
    from sqlalchemy import text

    from backend.services.query import Cursor

    value, ident, direction = sort_sql(sort)
    with sessions() as session:
        row = session.execute(
            text(
                f"SELECT {value}, {ident} FROM scores s JOIN pairs p ON p.id = s.pair_id "
                "LEFT JOIN flags f ON f.pair_id = p.id "
                f"WHERE s.job_id = :j AND s.split = 'train' {where} "
                f"ORDER BY {value} IS NULL, {value} {direction}, {ident} {direction} "
                "OFFSET :o LIMIT 1"
            ),
            {"j": job_id, "o": rank - 1},
        ).first()
    if row is None:
        return None
    value_then = None if row[0] is None else float(row[0])
    return Cursor(sort, value_then, int(row[1]), rank).encode()


def explain_page(
    sessions: Any, dataset_id: int, filter_: dict, sort: str, cursor: str | None
) -> dict[str, Any]:
    """EXPLAIN ANALYZE of the statements the API's pairs page runs (captured from the real code,
    in process): the indexes the page's rows come from, whether it sorts, its milliseconds."""
    from sqlalchemy import event

    from backend.db import get_engine
    from backend.models import Dataset
    from backend.schemas import PairFilter
    from backend.services import review

    captured: list[tuple[str, Any]] = []

    def grab(conn: Any, cur: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if "ORDER BY" in statement and "LIMIT" in statement:
            captured.append((statement, params))

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", grab)
    try:
        with sessions() as session:
            dataset = session.get(Dataset, dataset_id)
            review.list_pairs(
                session, dataset, PairFilter(**filter_), sort=sort, cursor=cursor, limit=PAGE
            )
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    out: dict[str, Any] = {"indexes": [], "sorts": False, "ms": 0.0}
    with engine.connect() as connection:
        raw = connection.connection.driver_connection
        assert raw is not None
        for statement, params in captured:
            with raw.cursor() as cur:
                cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, params)
                plan = cur.fetchone()[0][0]
            nodes = list(_walk(plan["Plan"]))
            out["indexes"] += [n["Index Name"] for n in nodes if n.get("Index Name")]
            out["sorts"] = out["sorts"] or any(n["Node Type"] == "Sort" for n in nodes)
            out["ms"] += plan["Execution Time"]
    out["indexes"] = sorted(set(out["indexes"]))
    return out


def _walk(node: dict) -> Any:
    yield node
    for child in node.get("Plans", []):
        yield from _walk(child)


def http_exports(
    client: Client, process: psutil.Process, dataset_id: int, formats: tuple[str, ...]
) -> dict[str, Any]:
    """Each format's full export streamed over the socket: seconds, MiB, MiB/s and the server
    process's peak RSS growth while it streams."""
    out: dict[str, Any] = {}
    for fmt in formats:
        rss = process.memory_info().rss
        peak, size = rss, 0
        start = time.perf_counter()
        path = f"/datasets/{dataset_id}/export"
        params = {"format": fmt, "exclude_flagged": "false"}
        with client.http.stream("GET", path, params=params) as response:
            assert response.status_code == 200, response.read()[:300]
            for block in response.iter_bytes(1 << 20):
                size += len(block)
                peak = max(peak, process.memory_info().rss)
        seconds = time.perf_counter() - start
        out[fmt] = {
            "seconds": seconds,
            "mib": size / 2**20,
            "mib_per_s": size / 2**20 / seconds,
            "server_rss_growth_mb": (peak - rss) / 2**20,
            "load": load(),
        }
        print(f"  export {fmt}: {out[fmt]}", flush=True)
    return out
