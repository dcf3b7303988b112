"""A dataset's review actions commit one at a time, in the order of their ids (Postgres), so the
latest action's id names one set of review states: the caches keyed by it (totals, the bitmap of
reviewed pairs) cannot keep the states from before an action that committed late
(backend/services/review_states.lock_reviews)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from tests.factories import API, jsonl_bytes, upload


def _dataset(client, auth) -> tuple[int, int]:
    rows = [{"prompt": f"p{i}", "chosen": "a", "rejected": "b"} for i in range(3)]
    made = upload(client, auth, jsonl_bytes(rows), "lock.jsonl", name="lock")
    assert made.status_code == 201, made.text
    dataset_id = made.json()["id"]
    page = client.get(f"{API}/datasets/{dataset_id}/pairs", headers=auth, params={"limit": 3})
    return dataset_id, page.json()["items"][0]["id"]


def test_a_review_waits_for_the_action_before_it_and_comes_after_it(client, auth) -> None:
    from backend.db import session_scope
    from backend.services.review_states import lock_reviews, review_generation

    dataset_id, pair_id = _dataset(client, auth)
    done: dict[str, object] = {}

    def review() -> None:
        done["response"] = client.put(
            f"{API}/datasets/{dataset_id}/pairs/{pair_id}/review",
            headers=auth,
            json={"state": "flagged"},
        )

    with session_scope() as holder:
        lock_reviews(holder, dataset_id)  # an action in flight, not committed
        other = threading.Thread(target=review)
        other.start()
        other.join(1.5)
        assert other.is_alive(), "the review did not wait for the action in flight"
        # Nor can another writer take the lock meanwhile.
        with session_scope() as third:
            third.execute(text("SET lock_timeout = '100ms'"))
            with pytest.raises(OperationalError, match="lock timeout"):
                lock_reviews(third, dataset_id)
        holder.commit()  # the action in flight ends
    other.join(30)
    assert not other.is_alive()
    response = done["response"]
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]
    with session_scope() as session:
        assert review_generation(session, dataset_id) is not None


def test_other_datasets_do_not_wait(client, auth) -> None:
    from backend.db import session_scope
    from backend.services.review_states import lock_reviews

    first, _ = _dataset(client, auth)
    second, pair_id = _dataset(client, auth)
    with session_scope() as holder:
        lock_reviews(holder, first)
        put = client.put(
            f"{API}/datasets/{second}/pairs/{pair_id}/review",
            headers=auth,
            json={"state": "kept"},
        )
        assert put.status_code == 200, put.text
