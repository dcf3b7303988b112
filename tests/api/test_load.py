"""50 clients for 30 s on loopback against a real API process on Postgres, toggling flags and
notes on 20 pairs: no server error, and every pair ends in the state of a write that nothing
acknowledged later could have overwritten (last writer wins, whole). The p95 latency is printed,
and written to bench/results/load.json with `PREFAUDIT_LOAD_RECORD=1` (a test run leaves the
committed figures alone). `PREFAUDIT_LOAD_SECONDS` shortens or lengthens it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from tests.factories import hh_records, jsonl_bytes

CLIENTS = 50
PAIRS = 20
SECONDS = float(os.environ.get("PREFAUDIT_LOAD_SECONDS", "30"))
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_fifty_clients_toggling_flags_and_notes(client, make_user) -> None:
    user = make_user()
    dataset = client.post(
        "/api/v1/datasets",
        headers=user["headers"],
        files={"file": ("load.jsonl", jsonl_bytes(hh_records(PAIRS)))},
        data={"name": "load"},
    ).json()
    pairs = client.get(
        f"/api/v1/datasets/{dataset['id']}/pairs", headers=user["headers"], params={"limit": 50}
    ).json()["items"]
    pair_ids = [p["id"] for p in pairs]
    assert len(pair_ids) == PAIRS

    port = _free_port()
    env = {**os.environ, "PREFAUDIT_REAPER_INTERVAL_SECONDS": "0"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "backend.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env=env,
    )
    base = f"http://127.0.0.1:{port}/api/v1/datasets/{dataset['id']}/pairs"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v1/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.2)

        writes: list[
            tuple[int, int, float, float, int]
        ] = []  # (pair, write id, start, end, status)
        lock = threading.Lock()
        counter = iter(range(10**9))
        stop_at = time.monotonic() + SECONDS

        def worker(seed: int) -> None:
            rng = np.random.default_rng(seed)
            with httpx.Client(headers=user["headers"], timeout=30) as http:
                while time.monotonic() < stop_at:
                    pair = int(rng.choice(pair_ids))
                    with lock:
                        wid = next(counter)
                    body = {"flagged": wid % 2 == 0, "note": f"write {wid}"}
                    start = time.monotonic()
                    try:
                        status = http.put(f"{base}/{pair}/flag", json=body).status_code
                    except httpx.HTTPError:
                        status = -1
                    end = time.monotonic()
                    with lock:
                        writes.append((pair, wid, start, end, status))

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.terminate()
        server.wait(timeout=30)

    statuses = [w[4] for w in writes]
    assert sum(s >= 500 or s < 0 for s in statuses) == 0, "server errors or dropped requests"
    assert all(s == 200 for s in statuses)
    latency = np.array([w[3] - w[2] for w in writes])
    final = {
        p["id"]: p
        for p in client.get(
            f"/api/v1/datasets/{dataset['id']}/pairs", headers=user["headers"], params={"limit": 50}
        ).json()["items"]
    }
    for pair in pair_ids:
        mine = [w for w in writes if w[0] == pair]
        state = final[pair]
        wid = int(state["note"].split()[1])
        assert state["flagged"] == (wid % 2 == 0), "flag and note from different writes"
        last = next(w for w in mine if w[1] == wid)
        # No write to this pair began after the final one was acknowledged.
        assert not [w for w in mine if w[2] > last[3]], f"pair {pair}: a later write was lost"
    result = {
        "clients": CLIENTS,
        "pairs": PAIRS,
        "seconds": SECONDS,
        "requests": len(writes),
        "requests_per_second": len(writes) / SECONDS,
        "p50_ms": float(np.percentile(latency, 50) * 1000),
        "p95_ms": float(np.percentile(latency, 95) * 1000),
        "server_errors": 0,
    }
    print(json.dumps(result))
    out = REPO / "bench" / "results" / "load.json"
    if SECONDS >= 30 and os.environ.get("PREFAUDIT_LOAD_RECORD") == "1":
        out.write_text(json.dumps(result, indent=1) + "\n")
