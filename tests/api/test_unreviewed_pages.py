"""Pages filtered to pairs without a review state (Postgres): the three ways a page reads them
give the same rows, page after page (backend/services/query.py and review_states.py, issue 23).

- a bitmap of the dataset's reviewed pairs, one parameter of the page's statement, a bit tested
  per walked row (ReviewedBits: every page where the dataset's pair ids span at most
  BITMAP_SPAN_MAX);
- the hashed `NOT IN` of the dataset's review rows (above that span; also the totals);
- the anti-join, above HASHED_EXCLUSION_MAX review rows.
"""

from __future__ import annotations

from sqlalchemy import text

from tests.factories import API, jsonl_bytes, upload

N = 3_000
RUN = 1_200  # rows from here on: every third reviewed (the first 1,000 are flagged at once)


def _walk(client, auth, dataset_id: int, **params) -> list[int]:
    """Every row of the list, page by page through the cursors."""
    rows: list[int] = []
    cursor = None
    while True:
        query = {"sort": "index", "limit": 50, **params}
        if cursor:
            query["cursor"] = cursor
        body = client.get(f"{API}/datasets/{dataset_id}/pairs", headers=auth, params=query)
        assert body.status_code == 200, body.text
        page = body.json()
        rows += [item["row"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            return rows


def test_unreviewed_pages_are_the_same_however_they_are_read(
    client, auth, statements, monkeypatch
) -> None:
    from backend.services import review_states

    rows = [{"prompt": f"p{i}", "chosen": "a", "rejected": "b"} for i in range(N)]
    made = upload(client, auth, jsonl_bytes(rows), "runs.jsonl", name="runs")
    assert made.status_code == 201, made.text
    dataset_id = made.json()["id"]
    # No review row yet: the bitmap is empty and the condition holds for every row.
    assert _walk(client, auth, dataset_id, state="unreviewed") == list(range(1, N + 1))
    review = f"{API}/datasets/{dataset_id}/review"
    # A long run at the top of the list (rows 1 … RUN), then every third row flagged or kept.
    done = client.post(
        review,
        headers=auth,
        json={"action": "flag", "filter": {"lengths": [{"field": "prompt", "max": 4}]}},
    )
    assert done.status_code == 200, done.text
    listed = client.get(
        f"{API}/datasets/{dataset_id}/pairs", headers=auth, params={"sort": "index", "limit": 1}
    ).json()["items"][0]
    first_id = listed["id"] - listed["row"] + 1  # pair ids follow the rows in one upload
    flagged = {row for row in range(1, N + 1) if len(f"p{row - 1}") <= 4}
    assert len(flagged) == 1000 and max(flagged) == 1000
    later = [row for row in range(RUN, N + 1, 3)]
    for n, row in enumerate(later):
        state = "flagged" if n % 2 else "kept"
        put = client.put(
            f"{API}/datasets/{dataset_id}/pairs/{first_id + row - 1}/review",
            headers=auth,
            json={"state": state},
        )
        assert put.status_code == 200, put.text
        if state == "flagged":
            flagged.add(row)
    reviewed = flagged | set(later)

    truth_unreviewed = [row for row in range(1, N + 1) if row not in reviewed]
    truth_not_flagged = [row for row in range(1, N + 1) if row not in flagged]

    # The bitmap, on every page: its first and last ids are reviewed (rows 1 and N). Made
    # empty before the first review, it follows the 601 actions since from their events
    # (the flagged=false one is made from the review rows: its first use).
    statements.clear()
    assert _walk(client, auth, dataset_id, state="unreviewed") == truth_unreviewed
    said = "\n".join(statements)
    assert "FROM review_events" in said and "string_agg(" not in said
    assert _walk(client, auth, dataset_id, flagged="false") == truth_not_flagged
    said = "\n".join(statements)
    pages = said.count("ORDER BY pairs.file_row")
    assert said.count("get_bit(") >= pages > 2 * N / 50 / 2, (said.count("get_bit("), pages)
    # Made again from the review rows where too many pairs changed since.
    monkeypatch.setattr(review_states, "BITS_STEP_MAX", 0)
    # A new review action is seen at once (the bitmap is kept per review generation).
    newly = truth_unreviewed[len(truth_unreviewed) // 2]
    put = client.put(
        f"{API}/datasets/{dataset_id}/pairs/{first_id + newly - 1}/review",
        headers=auth,
        json={"state": "swapped"},
    )
    assert put.status_code == 200, put.text
    truth_unreviewed.remove(newly)
    statements.clear()
    assert _walk(client, auth, dataset_id, state="unreviewed") == truth_unreviewed
    assert _walk(client, auth, dataset_id, flagged="false") == truth_not_flagged
    assert "string_agg(" in "\n".join(statements)
    # Undone, by its events too.
    monkeypatch.setattr(review_states, "BITS_STEP_MAX", 20_000)
    undone = client.post(f"{review}/undo", headers=auth)
    assert undone.status_code == 200, undone.text
    truth_unreviewed = sorted([*truth_unreviewed, newly])
    statements.clear()
    assert _walk(client, auth, dataset_id, state="unreviewed") == truth_unreviewed
    assert "string_agg(" not in "\n".join(statements)
    from backend.db import session_scope

    with session_scope() as session:  # the followed bitmap counts what a new one would
        followed = review_states.reviewed_bits(session, dataset_id, review_states.DECIDED)
        review_states._BITS.clear()
        made = review_states.reviewed_bits(session, dataset_id, review_states.DECIDED)
    assert followed is not None and made is not None
    assert (
        (followed.bits, followed.count)
        == (made.bits, made.count)
        == (
            made.bits,
            N - len(truth_unreviewed),
        )
    )

    # The planner hashes that subplan (with the app's connection settings) rather than scanning
    # the list for each row, and the app's hashes may take 64 MB.
    from backend.db import get_engine

    with get_engine().connect() as connection:
        assert connection.execute(text("SHOW hash_mem_multiplier")).scalar() == "16"
        plan = connection.execute(
            text(
                "EXPLAIN SELECT id FROM pairs WHERE dataset_id = :d AND id NOT IN "
                "(SELECT pair_id FROM flags WHERE dataset_id = :d AND state IN "
                "('kept', 'flagged', 'swapped')) ORDER BY file_row LIMIT 51"
            ),
            {"d": dataset_id},
        ).scalars()
        assert any("hashed SubPlan" in line for line in plan)

    # No bitmap (the pair ids span too many): every page reads with the hashed condition.
    monkeypatch.setattr(review_states, "BITMAP_SPAN_MAX", 10)
    review_states._BITS.clear()
    statements.clear()
    assert _walk(client, auth, dataset_id, state="unreviewed") == truth_unreviewed
    assert _walk(client, auth, dataset_id, flagged="false") == truth_not_flagged
    said = "\n".join(statements)
    assert "get_bit(" not in said and "NOT IN (SELECT flags.pair_id" in said
    # The anti-join, where the dataset has too many review rows to hash.
    monkeypatch.setattr(review_states, "HASHED_EXCLUSION_MAX", 10)
    statements.clear()
    assert _walk(client, auth, dataset_id, state="unreviewed") == truth_unreviewed
    assert _walk(client, auth, dataset_id, flagged="false") == truth_not_flagged
    assert "NOT IN (SELECT flags.pair_id" not in "\n".join(statements)
    # Totals agree with the rows on every path.
    body = client.get(
        f"{API}/datasets/{dataset_id}/pairs",
        headers=auth,
        params={"state": "unreviewed", "limit": 1},
    ).json()
    assert body["total"] == len(truth_unreviewed)
