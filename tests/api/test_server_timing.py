"""Every response says how long the server spent on it (backend/timing.py): its own time, the
database's share counted on the route's worker thread, and the process's CPU time."""

from __future__ import annotations

import re

from tests.factories import API


def _timing(response) -> dict[str, float]:
    header = response.headers["server-timing"]
    return {name: float(ms) for name, ms in re.findall(r"(\w+);dur=([\d.]+)", header)}


def test_each_response_carries_the_servers_own_time(client, auth) -> None:
    listed = client.get(f"{API}/datasets", headers=auth)
    assert listed.status_code == 200
    timing = _timing(listed)
    assert set(timing) == {"app", "db", "cpu"}, listed.headers["server-timing"]
    # The route ran statements (the token, the datasets) on a worker thread: they are counted.
    statements = re.search(r'desc="(\d+) statements"', listed.headers["server-timing"])
    assert statements and int(statements.group(1)) >= 1
    assert 0 <= timing["db"] <= timing["app"]
    # An error is timed too.
    missing = client.get(f"{API}/datasets/999999999", headers=auth)
    assert missing.status_code == 404 and "app" in _timing(missing)
