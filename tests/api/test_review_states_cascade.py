"""Review states go with their dataset (migration 0019: `flags` is keyed to its dataset, no
longer to each pair, so that a bulk action does not lock every pair it flags)."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.factories import API, jsonl_bytes, upload


def test_deleting_a_dataset_deletes_its_review_states(client, auth) -> None:
    from backend.db import session_scope
    from backend.models import Flag

    rows = [{"prompt": f"p{i}", "chosen": "a", "rejected": "b"} for i in range(30)]
    kept = upload(client, auth, jsonl_bytes(rows), "kept.jsonl", name="kept").json()["id"]
    gone = upload(client, auth, jsonl_bytes(rows), "gone.jsonl", name="gone").json()["id"]
    for dataset_id in (kept, gone):
        done = client.post(
            f"{API}/datasets/{dataset_id}/review",
            headers=auth,
            json={"action": "flag", "filter": {"q": "p1"}},
        )
        assert done.status_code == 200 and done.json()["changed"] == 1, done.text

    def states(dataset_id: int) -> int:
        with session_scope() as session:
            count = select(func.count()).where(Flag.dataset_id == dataset_id)
            return int(session.scalar(count) or 0)

    assert states(gone) == 1 and states(kept) == 1
    assert client.delete(f"{API}/datasets/{gone}", headers=auth).status_code == 204
    assert states(gone) == 0
    assert states(kept) == 1  # another dataset's states stay
