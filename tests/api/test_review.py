"""The reviewer's query API and review states (issue 12), through HTTP on Postgres and on SQLite:
every filter, keyset pagination, per-pair states with history, bulk actions on a filter with a
preview, "kept" surviving bulk flags, undo restoring exact states and notes, swaps applied in the
export, the review log, and a bulk action on 200,000 pairs as one set-based transaction."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import sessionmaker

from tests.factories import jsonl_bytes

API = "/api/v1"
N = 40
WORDS = ["apple", "banana", "cherry", "durian"]


def _records() -> list[dict]:
    return [
        {
            "prompt": f"Question {i} about {WORDS[i % 4]} and Fruit",
            "chosen": f"chosen answer {i} " + "x" * (i * 10),
            "rejected": f"rejected answer {i}",
            "source": "a" if i % 2 else "b",
            "n": i,
        }
        for i in range(N)
    ]


class Api:
    """A test client bound to one database (Postgres or SQLite) and one user's token."""

    def __init__(self, client, headers: dict, sessions: sessionmaker) -> None:
        self.client, self.headers, self.sessions = client, headers, sessions

    def get(self, path: str, **params):
        return self.client.get(API + path, headers=self.headers, params=params)

    def ok(self, method: str, path: str, **kwargs) -> dict:
        response = self.client.request(method, API + path, headers=self.headers, **kwargs)
        assert response.status_code < 300, response.text
        return response.json() if response.content else {}


@pytest.fixture(params=["postgres", "sqlite"])
def api(request, client, database, tmp_path) -> Iterator[Api]:
    from fastapi.testclient import TestClient

    from backend.db import get_db, get_sessionmaker
    from backend.main import create_app
    from backend.services.users import create_user, issue_token

    if request.param == "postgres":
        sessions, app_client = get_sessionmaker(), client
    else:
        from alembic import command

        from backend.db import alembic_config

        engine = create_engine(f"sqlite:///{tmp_path / 'review.db'}")
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            config.attributes["configure_logger"] = False
            command.upgrade(config, "head")
        sessions = sessionmaker(bind=engine, expire_on_commit=False)

        def sqlite_db() -> Iterator:
            with sessions() as session:
                yield session

        app = create_app()
        app.dependency_overrides[get_db] = sqlite_db
        app_client = TestClient(app)
    with sessions() as session:
        user = create_user(session, f"reviewer-{uuid.uuid4().hex[:8]}", "correct-horse")
        token = issue_token(session, user, "test")
        session.commit()
    yield Api(app_client, {"Authorization": f"Bearer {token}"}, sessions)


@pytest.fixture
def world(api: Api) -> dict:
    """A dataset of N pairs and a succeeded audit with known scores: harm = i / N, gradient
    similarity = (i · 7) mod N, group_order on even rows only; the last 5 rows are validation."""
    from backend.models import Job, Pair, Score
    from backend.storage.scores import ensure_partition

    response = api.client.post(
        f"{API}/datasets",
        headers=api.headers,
        files={"file": ("review.jsonl", jsonl_bytes(_records()))},
        data={"name": "review"},
    )
    assert response.status_code == 201, response.text
    dataset = response.json()
    with api.sessions() as session:
        ids = list(
            session.scalars(
                select(Pair.id).where(Pair.dataset_id == dataset["id"]).order_by(Pair.source_index)
            )
        )
        job = Job(
            dataset_id=dataset["id"],
            owner_id=_owner(session, dataset),
            kind="audit",
            config={"model": "tiny", "methods": ["loss"]},
            status="succeeded",
        )
        session.add(job)
        session.flush()
        ensure_partition(session, job.id)
        for i, pair_id in enumerate(ids):
            if i >= N - 5:
                session.add(Score(job_id=job.id, pair_id=pair_id, split="val"))
                continue
            session.add(
                Score(
                    job_id=job.id,
                    pair_id=pair_id,
                    split="train",
                    harm=i / N,
                    loss=1.0 - i / N,
                    harm_gradient_similarity=float((i * 7) % N),
                    group_order=float(i // 2) if i % 2 == 0 else None,
                )
            )
        session.commit()
        job_id = job.id
    return {"dataset": dataset["id"], "job": job_id, "ids": ids}


def _owner(session, dataset: dict) -> int:
    from backend.models import Dataset

    return session.get(Dataset, dataset["id"]).owner_id


def _all_pages(api: Api, path: str, **params) -> list[dict]:
    items, cursor, seen = [], None, 0
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        page = api.get(path, **query)
        assert page.status_code == 200, page.text
        body = page.json()
        items += body["items"]
        cursor = body["next_cursor"]
        seen += 1
        assert seen < 100
        if cursor is None:
            return items


def test_keyset_pages_cover_every_pair_once_in_order(api: Api, world: dict) -> None:
    ds, job = world["dataset"], world["job"]
    items = _all_pages(api, f"/datasets/{ds}/pairs", job_id=job, sort="-harm", limit=7)
    assert [p["row"] for p in items] == list(range(N - 5, 0, -1))  # rows count from 1
    assert [p["rank"] for p in items] == list(range(1, N - 4))
    # Percentiles: the most harmful pair is at 100, the least at 0.
    assert items[0]["percentiles"]["harm"] == 100.0 and items[-1]["percentiles"]["harm"] == 0.0
    # Another score, ascending.
    by_sim = _all_pages(
        api, f"/datasets/{ds}/pairs", job_id=job, sort="harm_gradient_similarity", limit=6
    )
    values = [p["scores"]["harm_gradient_similarity"] for p in by_sim]
    assert values == sorted(values) and len(by_sim) == N - 5
    # A column only some pairs have: those pairs first, the rest after them, none twice.
    by_group = _all_pages(api, f"/datasets/{ds}/pairs", job_id=job, sort="group_order", limit=4)
    orders = [p["scores"]["group_order"] for p in by_group]
    assert orders[:18] == [float(k) for k in range(18)] and orders[18:] == [None] * 17
    assert len({p["id"] for p in by_group}) == N - 5
    # No job: file order, and length.
    plain = _all_pages(api, f"/datasets/{ds}/pairs", limit=9)
    assert [p["index"] for p in plain] == list(range(N))
    longest = _all_pages(api, f"/datasets/{ds}/pairs", sort="-length", limit=9)
    assert [p["index"] for p in longest] == list(range(N - 1, -1, -1))
    # Offset paging still works and agrees with the cursor.
    page = api.get(f"/datasets/{ds}/pairs", job_id=job, sort="-harm", offset=7, limit=7).json()
    assert [p["id"] for p in page["items"]] == [p["id"] for p in items[7:14]]
    assert page["items"][0]["rank"] == 8


def test_every_filter(api: Api, world: dict) -> None:
    ds, job = world["dataset"], world["job"]
    path = f"/datasets/{ds}/pairs"

    def rows(**params) -> list[int]:
        response = api.get(path, limit=100, **params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total"] == len(body["items"]) and body["total_is_estimate"] is False
        return [p["index"] for p in body["items"]]

    assert rows(q="apple") == list(range(0, N, 4))
    assert rows(q="APPLE fruit") == list(range(0, N, 4))  # every word, case folded
    assert rows(q="apple banana") == []
    assert rows(q="rejected 7") == [7]
    assert rows(job_id=job, score="harm:0.5:0.6") == [20, 21, 22, 23, 24]
    assert rows(job_id=job, score=["harm:0.5:", "harm_gradient_similarity::10"]) == [
        i for i in range(20, N - 5) if (i * 7) % N <= 10
    ]
    top = rows(job_id=job, percentile="harm:90:100")
    assert top == [31, 32, 33, 34]  # the top 10% of 35 training pairs, by quantiles
    assert rows(job_id=job, split="val") == list(range(N - 5, N))
    assert len(rows(job_id=job, split="all")) == N
    assert rows(length="chosen:200:") == [
        i for i in range(N) if len(_records()[i]["chosen"]) >= 200
    ]
    assert rows(length="total::70") == [
        i for i, r in enumerate(_records()) if len(r["prompt"] + r["chosen"] + r["rejected"]) <= 70
    ]
    assert rows(meta="source=a") == list(range(1, N, 2))
    assert rows(meta=["source=b", "n=4"]) == [4]
    assert rows(meta='n="4"') == []  # the string "4" is not the number 4
    # Review state and flag filters.
    first = world["ids"][0]
    api.ok("PUT", f"/datasets/{ds}/pairs/{first}/review", json={"state": "kept"})
    api.ok("PUT", f"/datasets/{ds}/pairs/{world['ids'][1]}/review", json={"state": "swapped"})
    assert rows(state="kept") == [0]
    assert rows(state=["kept", "swapped"]) == [0, 1]
    assert rows(state="unreviewed") == list(range(2, N))
    assert rows(flagged="false") == list(range(N))
    # Text search and a score range together, sorted by a score.
    response = api.get(path, job_id=job, q="cherry", score="harm:0.2:", sort="-harm").json()
    assert [p["index"] for p in response["items"]] == [34, 30, 26, 22, 18, 14, 10]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"sort": "nonsense"}, "unknown sort key"),
        ({"sort": "harm"}, "needs a job_id"),
        ({"score": "harm:0:1"}, "need the job_id"),
        ({"score": "harm:x:", "job_id": "JOB"}, "is not a number"),
        ({"score": "harm:1:0", "job_id": "JOB"}, "above max"),
        ({"score": "nope:0:1", "job_id": "JOB"}, "unknown score column"),
        ({"percentile": "harm:0:120", "job_id": "JOB"}, "between 0 and 100"),
        ({"length": "width:0:1"}, "length='width:0:1'"),
        ({"meta": "novalue"}, "key=value"),
        ({"cursor": "garbage!"}, "cursor"),
    ],
)
def test_bad_filters_are_422_naming_the_parameter(api: Api, world, params, fragment) -> None:
    params = {k: (world["job"] if v == "JOB" else v) for k, v in params.items()}
    response = api.get(f"/datasets/{world['dataset']}/pairs", **params)
    assert response.status_code == 422, response.text
    assert fragment in json.dumps(response.json()["detail"]), response.text


def test_an_unknown_review_state_is_a_422(client, auth) -> None:
    # Postgres only: FastAPI's own 422 comes after the app's token check, which reads the app's
    # database, and the SQLite app of the other tests overrides only the request session.
    from tests.factories import upload

    dataset = upload(client, auth, jsonl_bytes(_records()[:2]), "s.jsonl").json()
    response = client.get(f"{API}/datasets/{dataset['id']}/pairs?state=deleted", headers=auth)
    assert response.status_code == 422 and "state" in response.text


def _states(api: Api, dataset: int) -> dict[int, tuple[str, str | None]]:
    from backend.models import Flag, Pair

    with api.sessions() as session:
        rows = session.execute(
            select(Pair.id, Flag.state, Flag.note)
            .outerjoin(Flag, Flag.pair_id == Pair.id)
            .where(Pair.dataset_id == dataset)
        ).all()
    return {pid: (state or "unreviewed", note) for pid, state, note in rows}


def test_bulk_actions_preview_keep_kept_and_undo_exactly(api: Api, world: dict) -> None:
    ds, job, ids = world["dataset"], world["job"], world["ids"]
    # A reviewer's own decisions first: a kept pair with a note, a flagged one with a note.
    api.ok("PUT", f"/datasets/{ds}/pairs/{ids[30]}/review", json={"state": "kept", "note": "ok"})
    api.ok("PUT", f"/datasets/{ds}/pairs/{ids[5]}/review", json={"state": "flagged", "note": "bad"})
    before = _states(api, ds)
    harmful = {"job_id": job, "scores": [{"column": "harm", "min": 0.5}]}  # rows 20..34
    preview = api.ok(
        "POST",
        f"/datasets/{ds}/review",
        json={"action": "flag", "filter": harmful, "dry_run": True},
    )
    assert preview == {
        "matched": 15, "changed": 14, "protected": 1, "action_id": None, "dry_run": True
    }  # fmt: skip
    assert _states(api, ds) == before  # a dry run writes nothing
    result = api.ok("POST", f"/datasets/{ds}/review", json={"action": "flag", "filter": harmful})
    assert (result["matched"], result["changed"], result["protected"]) == (15, 14, 1)
    after = _states(api, ds)
    assert after[ids[30]] == ("kept", "ok")  # "kept" survives a bulk flag
    assert all(after[ids[i]][0] == "flagged" for i in range(20, 35) if i != 30)
    # The flag-top call respects kept too, and the counts say so.
    top = api.ok("POST", f"/datasets/{ds}/flags", json={"job_id": job, "top_fraction": 0.5})
    assert top["protected"] == 1 and top["flagged"] == 3  # rows 17..19 are new
    newest = api.ok("GET", f"/datasets/{ds}/review/actions")[0]["description"]
    assert newest == f"flag the top 50% by harm of job {job}"  # a percentage, as people read it
    # Clearing flags keeps every note.
    cleared = api.ok("DELETE", f"/datasets/{ds}/flags")
    assert cleared["unflagged"] == 18
    assert _states(api, ds)[ids[5]] == ("unreviewed", "bad")
    # Undo, three times: the clear, the flag-top, the bulk flag, each back exactly.
    api.ok("POST", f"/datasets/{ds}/review/undo")
    api.ok("POST", f"/datasets/{ds}/review/undo")
    assert _states(api, ds) == after
    api.ok("POST", f"/datasets/{ds}/review/undo")
    assert _states(api, ds) == before
    # Overriding kept, with a note on every changed pair, then undo.
    forced = api.ok(
        "POST",
        f"/datasets/{ds}/review",
        json={"action": "flag", "filter": harmful, "override_kept": True, "note": "bulk"},
    )
    assert forced["changed"] == 15 and _states(api, ds)[ids[30]] == ("flagged", "bulk")
    api.ok("POST", f"/datasets/{ds}/review/undo")
    assert _states(api, ds) == before
    # The history: newest first, undone ones marked; a pair's own history oldest first.
    actions = api.ok("GET", f"/datasets/{ds}/review/actions")
    assert [a["kind"] for a in actions[:2]] == ["undo", "bulk"] and actions[1]["undone_at"]
    history = api.ok("GET", f"/datasets/{ds}/pairs/{ids[30]}/history")
    assert [(h["old_state"], h["new_state"]) for h in history] == [
        ("unreviewed", "kept"), ("kept", "flagged"), ("flagged", "kept")
    ]  # fmt: skip
    assert history[1]["undone"] and history[1]["new_note"] == "bulk"
    # Undo all the way back, then nothing is left to undo.
    for _ in range(2):
        api.ok("POST", f"/datasets/{ds}/review/undo")
    assert set(_states(api, ds).values()) == {("unreviewed", None)}
    response = api.client.post(f"{API}/datasets/{ds}/review/undo", headers=api.headers)
    assert response.status_code == 422 and "nothing to undo" in response.text


def test_bulk_swap_keep_clear_by_filters(api: Api, world: dict) -> None:
    ds = world["dataset"]
    swap = api.ok(
        "POST",
        f"/datasets/{ds}/review",
        json={"action": "swap", "filter": {"q": "banana", "metadata": {"source": "a"}}},
    )
    assert swap["changed"] == 10  # rows 1, 5, 9, ... (banana is i % 4 == 1, all odd)
    keep = api.ok("POST", f"/datasets/{ds}/review", json={"action": "keep", "filter": {}})
    assert keep["changed"] == N and keep["protected"] == 0  # keep overrides every state
    clear = api.ok(
        "POST", f"/datasets/{ds}/review", json={"action": "clear", "filter": {"states": ["kept"]}}
    )
    assert clear["changed"] == 0 and clear["protected"] == N  # kept pairs are protected
    clear = api.ok(
        "POST",
        f"/datasets/{ds}/review",
        json={"action": "clear", "filter": {"states": ["kept"]}, "override_kept": True},
    )
    assert clear["changed"] == N


def test_export_applies_swaps_and_the_review_log_lists_decisions(api: Api, world: dict) -> None:
    ds, ids = world["dataset"], world["ids"]
    api.ok("PUT", f"/datasets/{ds}/pairs/{ids[2]}/review", json={"state": "swapped", "note": "s"})
    api.ok("PUT", f"/datasets/{ds}/pairs/{ids[3]}/review", json={"state": "flagged"})
    api.ok("PUT", f"/datasets/{ds}/pairs/{ids[4]}/review", json={"state": "kept", "note": "k"})
    records = _records()

    def export(**params) -> list[dict]:
        response = api.get(f"/datasets/{ds}/export", **params)
        assert response.status_code == 200, response.text
        return [json.loads(line) for line in response.text.splitlines()]

    expected = [dict(r) for i, r in enumerate(records) if i != 3]
    expected[2]["chosen"], expected[2]["rejected"] = records[2]["rejected"], records[2]["chosen"]
    assert export() == expected
    assert export(apply_swaps="false") == [r for i, r in enumerate(records) if i != 3]
    assert export(exclude_flagged="false", apply_swaps="false") == records
    only_cherry = export(q="cherry", apply_swaps="false")
    assert only_cherry == [r for i, r in enumerate(records) if i % 4 == 2]
    log = api.get(f"/datasets/{ds}/review-log")
    assert log.status_code == 200
    lines = [json.loads(line) for line in log.text.splitlines()]
    assert [(x["row"], x["state"], x["note"]) for x in lines] == [
        (3, "swapped", "s"), (4, "flagged", None), (5, "kept", "k")
    ]  # fmt: skip
    assert all(x["reviewed_by"].startswith("reviewer-") for x in lines)
    csv_log = api.get(f"/datasets/{ds}/review-log", format="csv")
    assert csv_log.text.splitlines()[0] == "row,pair_id,state,note,reviewed_by,reviewed_at"


def test_a_pair_reads_with_its_state_scores_and_percentiles(api: Api, world: dict) -> None:
    ds, job, ids = world["dataset"], world["job"], world["ids"]
    api.ok("PUT", f"/datasets/{ds}/pairs/{ids[34]}/flag", json={"flagged": True, "note": "n"})
    pair = api.ok("GET", f"/datasets/{ds}/pairs/{ids[34]}", params={"job_id": job})
    assert pair["state"] == "flagged" and pair["flagged"] and pair["note"] == "n"
    assert pair["row"] == 35 and pair["percentiles"]["harm"] == 100.0
    assert pair["reviewed_by"].startswith("reviewer-") and pair["reviewed_at"]
    assert pair["lengths"]["chosen"] == len(_records()[34]["chosen"])


BIG = 200_000


def test_a_bulk_action_on_200k_pairs_is_one_set_based_transaction(api: Api) -> None:
    """200,000 pairs written straight into the tables (an upload of this size is the bench's
    job), then one bulk flag, its undo, and a bulk keep: each one request, one transaction."""
    from backend.db import refresh_planner_stats
    from backend.models import Dataset, User

    with api.sessions() as session:
        owner = session.scalar(select(User).order_by(User.id.desc()).limit(1))
        dataset = Dataset(
            owner_id=owner.id,
            name="big",
            filename="big.jsonl",
            format="jsonl",
            schema_kind="prompt_chosen_rejected",
            n_pairs=BIG,
            sha256="0" * 64,
            original_path="/nonexistent/original.jsonl",
        )
        session.add(dataset)
        session.flush()
        series = (
            "SELECT generate_series(0, :n - 1) AS i"
            if session.get_bind().dialect.name == "postgresql"
            else "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < :n - 1) "
            "SELECT i FROM s"
        )
        session.execute(
            text(
                "INSERT INTO pairs (dataset_id, source_index, file_row, prompt, chosen, rejected, "
                "metadata, prompt_chars, chosen_chars, rejected_chars) "
                f"SELECT :d, i, i + 1, 'p', 'c', 'r', '{{}}', 1, 1, 1 FROM ({series}) AS g"
            ),
            {"d": dataset.id, "n": BIG},
        )
        session.commit()
        # What an upload does after writing its rows: without it, fresh statistics of `flags`
        # beside stale ones of `pairs` (200k rows planned as none) made the first bulk
        # statement a nested loop of scans that ran for minutes.
        refresh_planner_stats(session, "pairs", BIG)
        ds = dataset.id
    flagged = api.ok("POST", f"/datasets/{ds}/review", json={"action": "flag"})
    assert flagged["changed"] == BIG
    listed = api.get(f"/datasets/{ds}/pairs", flagged="true", limit=1).json()
    assert listed["total"] == BIG or listed["total_is_estimate"]
    undone = api.ok("POST", f"/datasets/{ds}/review/undo")
    assert undone["changed"] == BIG
    assert api.get(f"/datasets/{ds}/pairs", flagged="true", limit=1).json()["total"] == 0
    kept = api.ok("POST", f"/datasets/{ds}/review", json={"action": "keep"})
    assert kept["changed"] == BIG
    api.ok("DELETE", f"/datasets/{ds}")


def test_the_histogram_is_exact_then_estimated_from_quantiles(api: Api, world: dict, monkeypatch):
    import numpy as np

    from backend.services import review

    harms = np.array([i / N for i in range(N - 5)])
    exact = api.ok("GET", f"/jobs/{world['job']}/histogram", params={"bins": 7})
    counts, edges = np.histogram(harms, bins=7)
    assert exact["counts"] == counts.tolist() and exact["estimated"] is False
    assert np.allclose(exact["edges"], edges)
    assert exact["quantiles"]["p50"] == pytest.approx(np.quantile(harms, 0.5))
    monkeypatch.setattr(review, "EXACT_HISTOGRAM_ROWS", 0)
    estimate = api.ok("GET", f"/jobs/{world['job']}/histogram", params={"bins": 7})
    assert estimate["estimated"] is True and sum(estimate["counts"]) == N - 5
    assert np.abs(np.array(estimate["counts"]) - counts).max() <= 1


def test_a_search_before_the_index_is_built_is_a_503_then_works(client, auth) -> None:
    """Postgres builds the search index after the upload is stored: until it is done a search
    says so (503, Retry-After); the build (the upload's background task, or the reaper's catch-up
    after a restart) makes it searchable."""
    from backend.db import session_scope
    from backend.models import Dataset
    from backend.services import search
    from tests.factories import upload

    dataset = upload(client, auth, jsonl_bytes(_records()), "search.jsonl").json()
    path = f"{API}/datasets/{dataset['id']}/pairs"
    assert client.get(path, params={"q": "durian"}, headers=auth).json()["total"] == N // 4
    with session_scope() as session:  # as if the server died before the build finished
        session.execute(text("DELETE FROM pair_search WHERE dataset_id = :d"), {"d": dataset["id"]})
        session.get(Dataset, dataset["id"]).search_ready = False
    refused = client.get(path, params={"q": "durian"}, headers=auth)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "10"
    assert "still being built" in refused.json()["detail"]
    assert client.get(path, headers=auth).status_code == 200  # browsing does not wait for it
    assert search.catch_up() >= 1
    found = client.get(path, params={"q": "durian", "limit": 100}, headers=auth).json()
    assert [p["index"] for p in found["items"]] == list(range(3, N, 4))
