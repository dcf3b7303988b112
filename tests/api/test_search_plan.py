"""A text search's pages (Postgres) hold exactly the rows the plain query does, in its order, at
every cursor: for a word with one hit, a few dozen and thousands, sorted by a score (ties and
nulls included), by row and by length, whichever plan the search takes (the ids listed from the
text index, or the sort's index walked with a probe per row; backend/services/search_plan.py)."""

from __future__ import annotations

import json
from collections import OrderedDict

import numpy as np
import pytest
from sqlalchemy import select, text

from tests.factories import API, jsonl_bytes, upload

N = 3_000
RARE, MEDIUM, COMMON = "xyloquartz", "mediumword", "commonword"


def _prompt(i: int) -> str:
    words = ["p" * (1 + i % 13), f"n{i}"]
    if i == 1717:
        words.append(RARE)
    if i % 60 == 7:
        words.append(MEDIUM)
    if i % 5 in (0, 1, 3):
        words.append(COMMON)
    return " ".join(words)


@pytest.fixture(scope="module")
def scored(client, database) -> dict:
    from backend.db import get_sessionmaker
    from backend.models import Job, Pair
    from backend.services.users import create_user, issue_token
    from worker.influence.results import AuditMetrics
    from worker.jobs.store import save_scores

    sessions = get_sessionmaker()
    with sessions() as session:
        user = create_user(session, "search-plan-owner", "correct-horse")
        auth = {"Authorization": f"Bearer {issue_token(session, user, 'test')}"}
        session.commit()
    rows = [{"prompt": _prompt(i), "chosen": "c" * (i % 7), "rejected": "r"} for i in range(N)]
    made = upload(client, auth, jsonl_bytes(rows), "search.jsonl", name="search")
    assert made.status_code == 201, made.text
    dataset_id = made.json()["id"]
    with sessions() as session:
        from backend.services import search

        search.build(session, dataset_id)  # what the upload's background task does
        ids = list(
            session.scalars(
                select(Pair.id).where(Pair.dataset_id == dataset_id).order_by(Pair.source_index)
            )
        )
        job = Job(
            dataset_id=dataset_id, owner_id=user.id, kind="audit", config={}, status="running"
        )
        session.add(job)
        session.commit()
        job_id = job.id
    train, val = ids[100:], ids[:100]
    positions = np.arange(len(train))
    scores = {
        "harm": (positions % 97) / 97.0,  # ties: the pair id breaks them
        "loss": ((positions * 7) % len(train)) / len(train),
        "group_order": np.where(positions % 2 == 0, positions / 2.0, np.nan),  # nulls
    }
    save_scores(sessions, job_id, train, val, scores, AuditMetrics(kind="audit"))
    values = {
        column: dict(zip(train, array.tolist(), strict=True)) for column, array in scores.items()
    }
    return {"dataset": dataset_id, "job": job_id, "auth": auth, "values": values, "ids": ids}


def _naive(scored: dict, words: str, sort: str) -> list[int]:
    """The search's pairs by the plain query (the generic text condition), sorted in Python as
    the list sorts: by value then pair id, nulls last in pair order; training pairs only."""
    from backend.db import get_sessionmaker

    with get_sessionmaker()() as session:
        matched = set(
            session.scalars(
                text(
                    "SELECT pair_id FROM pair_search WHERE dataset_id = :d "
                    "AND tsv @@ plainto_tsquery('simple', :q)"
                ),
                {"d": scored["dataset"], "q": words},
            )
        )
        lengths = dict(
            session.execute(
                text(
                    "SELECT id, prompt_chars + chosen_chars + rejected_chars FROM pairs "
                    "WHERE dataset_id = :d"
                ),
                {"d": scored["dataset"]},
            ).all()
        )
    train = set(scored["values"]["harm"])
    keys = [p for p in matched if p in train]
    descending = sort.startswith("-")
    column = sort.lstrip("-")
    if column == "index":
        value = {p: float(scored["ids"].index(p)) for p in keys}
    elif column == "length":
        value = {p: float(lengths[p]) for p in keys}
    else:
        value = {p: scored["values"][column][p] for p in keys}
    known = sorted((p for p in keys if not np.isnan(value[p])), key=lambda p: (value[p], p))
    nulls = sorted(p for p in keys if np.isnan(value[p]))
    if descending:
        known.reverse()
        nulls.reverse()
    return known + nulls


def _paged(client, scored: dict, words: str, sort: str) -> list[int]:
    out, cursor = [], None
    for _ in range(1_000):
        params = {"job_id": scored["job"], "q": words, "sort": sort, "limit": 25}
        if cursor:
            params["cursor"] = cursor
        page = client.get(
            f"{API}/datasets/{scored['dataset']}/pairs", headers=scored["auth"], params=params
        )
        assert page.status_code == 200, page.text
        body = page.json()
        assert [item["rank"] for item in body["items"]] == list(
            range(len(out) + 1, len(out) + 1 + len(body["items"]))
        )
        out += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("more than 1,000 pages")


@pytest.mark.parametrize("probe_limit", [100, 10_000], ids=["walk-common", "list-all"])
@pytest.mark.parametrize("sort", ["-harm", "loss", "-group_order", "index", "-length"])
def test_search_pages_match_the_plain_query(client, scored, monkeypatch, probe_limit, sort) -> None:
    from backend.services import search_plan

    # A small probe limit sends the common word down the walk; the default lists every match.
    monkeypatch.setattr(search_plan, "PROBE_LIMIT", probe_limit)
    monkeypatch.setattr(search_plan, "_CACHE", OrderedDict())
    hits = {RARE: 1, MEDIUM: N // 60, COMMON: 3 * N // 5, f"{COMMON} {MEDIUM}": 0}
    for words in hits:
        expected = _naive(scored, words, sort)
        assert _paged(client, scored, words, sort) == expected, (words, sort)
    # The words occur as often as they were put in (among all pairs, validation ones included).
    assert len(_naive(scored, RARE, sort)) == 1
    assert 35 <= len(_naive(scored, MEDIUM, sort)) <= hits[MEDIUM]
    assert len(_naive(scored, COMMON, sort)) > 1_500
    plans = {
        key[2]: "walked" if ids is None else "listed"
        for key, ids in search_plan._CACHE.items()
        if key[1] == scored["dataset"]
    }
    assert plans[RARE] == "listed"
    assert plans[COMMON] == ("walked" if probe_limit < 1_800 else "listed")


@pytest.mark.parametrize("sort", ["index", "-length"])
def test_a_deep_cursor_by_row_or_length_starts_the_index_walk(client, scored, sort) -> None:
    """The cursor's bound is an integer like the column: a float bound cast the column, and the
    page filtered every row before the cursor instead of starting there (4 s at 1M pairs)."""
    from sqlalchemy import event

    from backend.db import get_engine

    path = f"{API}/datasets/{scored['dataset']}/pairs"
    params = {"job_id": scored["job"], "sort": sort, "limit": 500}
    first = client.get(path, headers=scored["auth"], params=params).json()
    seen: list[tuple[str, object]] = []

    def grab(conn, cursor, statement, parameters, context, many) -> None:
        if "ORDER BY" in statement and "LIMIT" in statement:
            seen.append((statement, parameters))

    event.listen(get_engine(), "before_cursor_execute", grab)
    try:
        deep = {**params, "cursor": first["next_cursor"]}
        assert client.get(path, headers=scored["auth"], params=deep).status_code == 200
    finally:
        event.remove(get_engine(), "before_cursor_execute", grab)
    statement, parameters = seen[0]
    with get_engine().connect() as connection:
        raw = connection.connection.driver_connection
        with raw.cursor() as cursor:
            cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
            plan = json.dumps(cursor.fetchone()[0])
    # The keyset bound is in the index scan's condition, and nothing is cast to a float.
    assert "ROW(" in plan and "double precision" not in plan, plan
