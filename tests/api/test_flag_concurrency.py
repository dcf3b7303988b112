"""Concurrent review writes on real Postgres: each PUT .../flag writes the pair's whole state in
one statement, so racing writers never leave a mix of two requests, and the first flag of a pair
cannot race into a duplicate-key 500. Before the upsert this failed every run at this load (a
UniqueViolation on the first flag, and flags from one request with notes from another)."""

from __future__ import annotations

import threading

from tests.factories import hh_records, jsonl_bytes, upload

API = "/api/v1"
THREADS, ROUNDS = 16, 30


def test_racing_flag_writes_leave_one_requests_whole_state(client, auth) -> None:
    from fastapi.testclient import TestClient

    dataset = upload(client, auth, jsonl_bytes(hh_records(6)), "race.jsonl").json()
    pairs = client.get(f"{API}/datasets/{dataset['id']}/pairs?limit=10", headers=auth).json()
    pair_ids = [p["id"] for p in pairs["items"][:3]]
    barrier = threading.Barrier(THREADS)
    statuses: list[int] = []
    lock = threading.Lock()

    errors: list[str] = []

    def writer(thread: int) -> None:
        try:
            write(thread)
        except Exception as exc:  # a 500 raised through the test client, or a mixed state
            with lock:
                errors.append(f"thread {thread}: {type(exc).__name__}: {exc}"[:300])

    def write(thread: int) -> None:
        # One client per thread: its own event loop, so the requests really overlap.
        with TestClient(client.app) as own:
            barrier.wait()  # every thread's first write hits the same fresh pairs together
            for round_ in range(ROUNDS):
                for pair_id in pair_ids:
                    flagged = (thread + round_) % 2 == 0
                    response = own.put(
                        f"{API}/datasets/{dataset['id']}/pairs/{pair_id}/flag",
                        headers=auth,
                        json={"flagged": flagged, "note": f"{flagged}:{thread}:{round_}"},
                    )
                    with lock:
                        statuses.append(response.status_code)
                    if response.status_code == 200:
                        body = response.json()
                        assert body["note"] == f"{flagged}:{thread}:{round_}"
                        assert body["flagged"] is flagged

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert statuses.count(200) == THREADS * ROUNDS * len(pair_ids), sorted(set(statuses))
    final = client.get(f"{API}/datasets/{dataset['id']}/pairs?limit=10", headers=auth).json()
    for pair in final["items"]:
        if pair["id"] in pair_ids:
            # The note and the flag come from one and the same request.
            assert pair["note"].split(":")[0] == str(pair["flagged"])

    from sqlalchemy import func, select

    from backend.db import session_scope
    from backend.models import Flag

    with session_scope() as session:
        rows = session.scalar(select(func.count()).where(Flag.pair_id.in_(pair_ids)))
    assert rows == len(pair_ids)
