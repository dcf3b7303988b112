"""A user's own judge API key (PUT/GET/DELETE /me/secrets/judge-api-key): stored encrypted, never
echoed by any response nor copied into a judge job's config, each user's own, used in place of
the server's key, and a clear error when it no longer decrypts (tests/jobs/test_ambiguous_tag.py
shows the worker reads it)."""

from __future__ import annotations

from sqlalchemy import func, select

from backend.db import session_scope
from backend.models import Job, User, UserSecret
from backend.settings import get_settings
from backend.storage.secrets import JUDGE_API_KEY, judge_api_key, read_secret
from tests.factories import API, jsonl_bytes, upload

KEY = "sk-user-own-judge-key-7c41e9"
PATH = f"{API}/me/secrets/judge-api-key"
JUDGE = {"base_url": "http://127.0.0.1:9/v1", "model": "secret-test"}


def _user_id(username: str) -> int:
    with session_scope() as session:
        return session.scalar(select(User.id).where(User.username == username))


def test_set_read_and_clear_never_echo_the_key(client, make_user) -> None:
    user = make_user()
    auth, user_id = user["headers"], _user_id(user["username"])
    assert client.get(PATH, headers=auth).json() == {"set": False, "updated_at": None}
    stored = client.put(PATH, headers=auth, json={"value": KEY})
    assert stored.status_code == 200, stored.text
    assert stored.json()["set"] is True and stored.json()["updated_at"]
    status = client.get(PATH, headers=auth)
    assert status.json()["set"] is True and KEY not in status.text and KEY not in stored.text

    with session_scope() as session:
        row = session.scalar(select(UserSecret).where(UserSecret.user_id == user_id))
        assert row is not None and row.name == JUDGE_API_KEY
        assert KEY not in row.ciphertext  # encrypted at rest
        assert read_secret(session, user_id, JUDGE_API_KEY) == KEY
        assert judge_api_key(session, user_id) == KEY  # the user's own wins over the server's

    # A judge job launched now: neither its response nor the jobs table holds the key.
    records = [{"prompt": f"q{k}", "chosen": f"yes {k}", "rejected": f"no {k}"} for k in range(3)]
    ds = upload(client, auth, jsonl_bytes(records), "s.jsonl").json()["id"]
    launched = client.post(f"{API}/datasets/{ds}/judge", headers=auth, json=JUDGE)
    assert launched.status_code == 202, launched.text
    for text in (
        launched.text,
        client.get(f"{API}/jobs/{launched.json()['id']}", headers=auth).text,
        client.get(f"{API}/datasets/{ds}/jobs", headers=auth).text,
        client.get(f"{API}/judge/defaults", headers=auth).text,
        client.get(f"{API}/users/me", headers=auth).text,
    ):
        assert KEY not in text
    with session_scope() as session:
        configs = session.scalars(select(Job.config)).all()
        assert configs and all(KEY not in str(config) for config in configs)

    # Another user neither sees nor uses it.
    other = make_user()
    assert client.get(PATH, headers=other["headers"]).json()["set"] is False
    with session_scope() as session:
        server_key = get_settings().judge_api_key or None
        assert judge_api_key(session, _user_id(other["username"])) == server_key

    cleared = client.delete(PATH, headers=auth)
    assert cleared.status_code == 204
    assert client.get(PATH, headers=auth).json()["set"] is False
    with session_scope() as session:
        count = session.scalar(
            select(func.count()).select_from(UserSecret).where(UserSecret.user_id == user_id)
        )
        assert count == 0
        assert judge_api_key(session, user_id) == (get_settings().judge_api_key or None)
    assert client.delete(PATH, headers=auth).status_code == 204  # clearing twice is fine


def test_replacing_the_key_and_bad_input(client, make_user) -> None:
    user = make_user()
    auth, user_id = user["headers"], _user_id(user["username"])
    first = client.put(PATH, headers=auth, json={"value": KEY}).json()
    second = client.put(PATH, headers=auth, json={"value": KEY + "-2"}).json()
    assert second["updated_at"] >= first["updated_at"]
    with session_scope() as session:
        assert read_secret(session, user_id, JUDGE_API_KEY) == KEY + "-2"
        rows = session.scalar(
            select(func.count()).select_from(UserSecret).where(UserSecret.user_id == user_id)
        )
        assert rows == 1
    empty = client.put(PATH, headers=auth, json={"value": ""})
    assert empty.status_code == 422 and "value" in empty.text
    assert client.put(PATH, headers=auth, json={}).status_code == 422
    assert client.get(PATH).status_code == 401


def test_a_key_that_no_longer_decrypts_is_a_clear_422_at_the_probe(client, make_user) -> None:
    user = make_user()
    auth, user_id = user["headers"], _user_id(user["username"])
    client.put(PATH, headers=auth, json={"value": KEY})
    with session_scope() as session:
        row = session.scalar(select(UserSecret).where(UserSecret.user_id == user_id))
        assert row is not None
        row.ciphertext = "gAAAAAB-stored-under-another-secret-key"
        session.commit()
    records = [{"prompt": "q", "chosen": "yes", "rejected": "no"}]
    ds = upload(client, auth, jsonl_bytes(records), "p.jsonl").json()["id"]
    probe = client.post(
        f"{API}/datasets/{ds}/judge/estimate", headers=auth, json={**JUDGE, "probe": True}
    )
    assert probe.status_code == 422, probe.text
    assert "secret_key" in probe.text and "judge-api-key" in probe.text
