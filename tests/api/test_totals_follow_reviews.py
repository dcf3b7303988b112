"""Filtered totals follow review actions from their events (backend/services/counts.py): after
every decision, bulk action and undo each total equals the truth, and a decision on one pair
costs a lookup of that pair, not a count of the list (Postgres)."""

from __future__ import annotations

import random

from tests.factories import API, jsonl_bytes, upload

N = 400
FILTERS: dict[str, dict] = {
    "unreviewed": {"state": "unreviewed"},
    "not flagged": {"flagged": "false"},
    "flagged": {"flagged": "true"},
    "kept or unreviewed": {"state": ["kept", "unreviewed"]},
    "kept, short prompt": {"state": "kept", "length": "prompt::6"},
    "not flagged, long prompt": {"flagged": "false", "length": "prompt:7:"},
    "short prompt (no review state)": {"length": "prompt::6"},
}


def _prompt(row: int) -> str:
    return "p" * (3 + row % 8)  # 3-10 characters


def _truth(name: str, states: dict[int, str]) -> int:
    def passes(row: int) -> bool:
        state, short = states[row], len(_prompt(row)) <= 6
        return {
            "unreviewed": state == "unreviewed",
            "not flagged": state != "flagged",
            "flagged": state == "flagged",
            "kept or unreviewed": state in ("kept", "unreviewed"),
            "kept, short prompt": state == "kept" and short,
            "not flagged, long prompt": state != "flagged" and not short,
            "short prompt (no review state)": short,
        }[name]

    return sum(passes(row) for row in states)


def test_totals_follow_every_review_action(client, auth, statements, monkeypatch) -> None:
    from backend.services import counts

    rows = [{"prompt": _prompt(r), "chosen": f"a{r}", "rejected": "b"} for r in range(1, N + 1)]
    made = upload(client, auth, jsonl_bytes(rows), "totals.jsonl", name="totals")
    assert made.status_code == 201, made.text
    dataset_id = made.json()["id"]
    path = f"{API}/datasets/{dataset_id}/pairs"
    first = client.get(path, headers=auth, params={"limit": 1}).json()["items"][0]
    first_id = first["id"] - first["row"] + 1
    states = {row: "unreviewed" for row in range(1, N + 1)}

    def check(moved: bool) -> None:
        statements.clear()
        for name, params in FILTERS.items():
            page = client.get(path, headers=auth, params={"limit": 1, **params}).json()
            assert (page["total"], page["total_is_estimate"]) == (_truth(name, states), False), name
        said = "\n".join(statements)
        if moved:  # followed from the events: no count of any list
            assert "FROM review_events" in said and "count(*)" not in said, said[-2000:]

    check(moved=False)  # counted once
    rng = random.Random(23)

    def decide(n: int, moved: bool = True) -> None:
        for _ in range(n):
            row = rng.randint(1, N)
            state = rng.choice(["flagged", "kept", "swapped", "unreviewed"])
            put = client.put(
                f"{path}/{first_id + row - 1}/review", headers=auth, json={"state": state}
            )
            assert put.status_code == 200, put.text
            states[row] = state
            check(moved)

    decide(12)
    # A bulk flag of the short prompts (kept ones stay kept), then its undo.
    before = dict(states)
    bulk = client.post(
        f"{API}/datasets/{dataset_id}/review",
        headers=auth,
        json={"action": "flag", "filter": {"lengths": [{"field": "prompt", "max": 6}]}},
    )
    assert bulk.status_code == 200, bulk.text
    for row in states:
        if len(_prompt(row)) <= 6 and states[row] != "kept":
            states[row] = "flagged"
    check(moved=True)
    undone = client.post(f"{API}/datasets/{dataset_id}/review/undo", headers=auth)
    assert undone.status_code == 200, undone.text
    states = before
    check(moved=True)
    decide(5)
    # Where more pairs changed than a total follows, it is counted again, and still right.
    monkeypatch.setattr(counts, "COUNT_STEP_MAX", 0)
    decide(2, moved=False)
