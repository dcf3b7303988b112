"""No privilege without proof, and need to know: re-authentication for long-lived tokens and
password changes, a CSRF value keyed with the server's secret, job configs that withhold other
datasets, and transferring a dataset to another account."""

from __future__ import annotations

import stat
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from tests.factories import API, hh_records, jsonl_bytes, upload


def _browser_login(client, user: dict) -> tuple[TestClient, str]:
    browser = TestClient(client.app)  # its own cookie jar
    login = browser.post(
        f"{API}/auth/login",
        json={"username": user["username"], "password": user["password"], "cookie": True},
    )
    assert login.status_code == 200, login.text
    return browser, browser.cookies["prefaudit_csrf"]


def _age_session(browser: TestClient, minutes: float) -> None:
    """Make the browser's login `minutes` old."""
    from backend.db import session_scope
    from backend.models import ApiToken, utcnow
    from backend.security import hash_token

    with session_scope() as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.token_hash == hash_token(browser.cookies["prefaudit_session"]))
            .values(created_at=utcnow() - timedelta(minutes=minutes))
        )


def _token_with_lifetime(user: dict, days: float) -> dict:
    from backend.db import session_scope
    from backend.models import User
    from backend.services.users import issue_token

    with session_scope() as session:
        account = session.scalar(select(User).where(User.username == user["username"]))
        token = issue_token(session, account, f"{days}d", timedelta(days=days))
    return {"Authorization": f"Bearer {token}"}


# Re-authentication


def test_a_browser_session_needs_the_password_for_a_token_once_its_login_is_old(
    client, make_user, monkeypatch
) -> None:
    from backend.settings import get_settings

    monkeypatch.setattr(get_settings(), "reauth_minutes", 5.0)
    user = make_user()
    browser, csrf = _browser_login(client, user)
    with browser:
        _age_session(browser, 6)  # past the 5-minute window
        headers = {"X-CSRF-Token": csrf}
        refused = browser.post(f"{API}/tokens", json={"name": "stolen"}, headers=headers)
        assert refused.status_code == 403
        assert "current password" in refused.json()["detail"]
        assert "`password`" in refused.json()["detail"]
        wrong = browser.post(
            f"{API}/tokens", json={"name": "x", "password": "not-it"}, headers=headers
        )
        assert wrong.status_code == 403 and "wrong password" in wrong.json()["detail"]
        # The wrong password counted as a failed login (re-authentication is throttled too).
        from backend.db import session_scope
        from backend.models import LoginFailure

        with session_scope() as session:
            assert session.get(LoginFailure, user["username"]).failures == 1
        never = browser.post(
            f"{API}/tokens",
            json={"name": "cron", "expires_in_days": 0, "password": user["password"]},
            headers=headers,
        )
        assert never.status_code == 201, never.text
        tokens = {t["name"]: t for t in browser.get(f"{API}/tokens").json()}
        assert tokens["cron"]["expires_at"] is None and "stolen" not in tokens


def test_a_browser_session_needs_the_password_even_right_after_its_login(client, make_user) -> None:
    user = make_user()
    browser, csrf = _browser_login(client, user)
    with browser:
        refused = browser.post(
            f"{API}/tokens", json={"name": "now"}, headers={"X-CSRF-Token": csrf}
        )
        assert refused.status_code == 403 and "`password`" in refused.json()["detail"]


def test_a_server_may_allow_a_grace_after_the_login(client, make_user, monkeypatch) -> None:
    from backend.settings import get_settings

    monkeypatch.setattr(get_settings(), "reauth_minutes", 5.0)
    user = make_user()
    browser, csrf = _browser_login(client, user)
    with browser:
        made = browser.post(
            f"{API}/tokens",
            json={"name": "now", "expires_in_days": 0},
            headers={"X-CSRF-Token": csrf},
        )
        assert made.status_code == 201, made.text


def test_a_bearer_token_cannot_mint_one_that_outlives_it_without_the_password(
    client, make_user
) -> None:
    user = make_user()
    short = _token_with_lifetime(user, 1)
    for body in ({"expires_in_days": 0}, {"expires_in_days": 30}, {}):  # never, 30 d, 90 d
        refused = client.post(f"{API}/tokens", headers=short, json={"name": "longer", **body})
        assert refused.status_code == 403, body
        assert "outlive" in refused.json()["detail"] and "password" in refused.json()["detail"]
    shorter = client.post(f"{API}/tokens", headers=short, json={"expires_in_days": 0.5})
    assert shorter.status_code == 201
    proven = client.post(
        f"{API}/tokens", headers=short, json={"expires_in_days": 0, "password": user["password"]}
    )
    assert proven.status_code == 201
    # A token that never expires cannot be outlived: it may make any other.
    assert client.post(f"{API}/tokens", headers=user["headers"], json={}).status_code == 201


def test_changing_ones_password_needs_the_current_one_and_ends_other_sessions(
    client, make_user
) -> None:
    user = make_user()
    other = _token_with_lifetime(user, 10)
    url = f"{API}/users/me/password"
    wrong = client.put(
        url, headers=user["headers"], json={"current_password": "nope", "new_password": "x" * 12}
    )
    assert wrong.status_code == 403 and "current" in wrong.json()["detail"]
    assert client.get(f"{API}/users/me", headers=other).status_code == 200  # nothing changed
    short = client.put(
        url,
        headers=user["headers"],
        json={"current_password": user["password"], "new_password": "x"},
    )
    assert short.status_code == 422
    done = client.put(
        url,
        headers=user["headers"],
        json={"current_password": user["password"], "new_password": "a-new-long-password"},
    )
    assert done.status_code == 204, done.text
    assert client.get(f"{API}/users/me", headers=user["headers"]).status_code == 200  # kept
    assert client.get(f"{API}/users/me", headers=other).status_code == 401  # ended
    for password, expected in ((user["password"], 401), ("a-new-long-password", 200)):
        login = client.post(
            f"{API}/auth/login", json={"username": user["username"], "password": password}
        )
        assert login.status_code == expected


def test_tokens_show_their_last_use(client, make_user) -> None:
    user = make_user()
    made = client.post(f"{API}/tokens", headers=user["headers"], json={"name": "script"}).json()
    listed = {t["name"]: t for t in client.get(f"{API}/tokens", headers=user["headers"]).json()}
    assert listed["script"]["last_used_at"] is None
    client.get(f"{API}/users/me", headers={"Authorization": f"Bearer {made['access_token']}"})
    listed = {t["name"]: t for t in client.get(f"{API}/tokens", headers=user["headers"]).json()}
    assert listed["script"]["last_used_at"] is not None


# The CSRF value


def test_the_csrf_value_is_keyed_with_the_server_secret(client, make_user, monkeypatch) -> None:
    from backend.security import csrf_token
    from backend.settings import get_settings

    settings = get_settings()
    user = make_user()
    browser, csrf = _browser_login(client, user)
    with browser:
        session_token = browser.cookies["prefaudit_session"]
        assert csrf == csrf_token(session_token, settings.server_secret())
        assert csrf != csrf_token(session_token, b"another secret")
        ok = browser.post(
            f"{API}/tokens",
            json={"name": "a", "password": user["password"]},
            headers={"X-CSRF-Token": csrf},
        )
        assert ok.status_code == 201

        monkeypatch.setattr(settings, "secret_key", "a-new-server-secret-of-32-characters-or-more")
        stale = browser.post(
            f"{API}/tokens",
            json={"name": "b", "password": user["password"]},
            headers={"X-CSRF-Token": csrf},
        )
        assert stale.status_code == 403 and "X-CSRF-Token" in stale.json()["detail"]
        again = browser.post(
            f"{API}/auth/login",
            json={"username": user["username"], "password": user["password"], "cookie": True},
        )
        assert again.status_code == 200
        renewed = browser.cookies["prefaudit_csrf"]
        assert renewed != csrf
        assert renewed == csrf_token(
            browser.cookies["prefaudit_session"], b"a-new-server-secret-of-32-characters-or-more"
        )
        ok = browser.post(
            f"{API}/tokens",
            json={"name": "c", "password": user["password"]},
            headers={"X-CSRF-Token": renewed},
        )
        assert ok.status_code == 201


def test_the_embedded_mode_generates_its_secret_once(tmp_path) -> None:
    from backend.settings import SECRET_FILE, Settings, _stored_secret

    first = Settings(data_dir=tmp_path, secret_key="").server_secret()
    path = tmp_path / SECRET_FILE
    assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 48
    _stored_secret.cache_clear()  # as a new process would
    assert Settings(data_dir=tmp_path, secret_key="").server_secret() == first
    assert Settings(data_dir=tmp_path, secret_key="set").server_secret() == b"set"
    other = tmp_path / "other"
    assert Settings(data_dir=other, secret_key="").server_secret() != first


def test_production_refuses_to_start_without_a_secret() -> None:
    from backend.settings import Settings

    prod = {
        "env": "prod",
        "database_url": "postgresql://db/prefaudit",
        "broker_url": "redis://redis:6379/0",
    }
    with pytest.raises(RuntimeError, match="PREFAUDIT_SECRET_KEY"):
        Settings(**prod, secret_key="").check_production()
    with pytest.raises(RuntimeError, match="32 characters"):
        Settings(**prod, secret_key="short").check_production()
    Settings(**prod, secret_key="s" * 32).check_production()


# Need to know


@pytest.fixture
def shared_audit(client, make_user):
    """An owner's dataset shared with a viewer, and two more of the owner's datasets (not
    shared) named by its audit (validation set) and its verify job (test set)."""
    from backend.db import session_scope
    from backend.models import Job, User

    owner, viewer = make_user(), make_user()
    ids = {}
    for key in ("audited", "validation", "test"):
        made = upload(client, owner["headers"], jsonl_bytes(hh_records(4)), f"{key}.jsonl")
        ids[key] = made.json()["id"]
    shared = client.put(
        f"{API}/datasets/{ids['audited']}/shares",
        headers=owner["headers"],
        json={"username": viewer["username"], "role": "viewer"},
    )
    assert shared.status_code == 200
    val, test = ids["validation"], ids["test"]
    with session_scope() as session:
        owner_id = session.scalar(select(User.id).where(User.username == owner["username"]))
        audit = Job(
            dataset_id=ids["audited"],
            owner_id=owner_id,
            kind="audit",
            config={"model": "tiny", "val_dataset_id": val},
            status="succeeded",
            metrics={
                "validation_source": f"dataset {val}",
                "trust": {"is_evidence": True, "message": f"accuracy 0.8 on dataset {val}"},
            },
        )
        session.add(audit)
        session.flush()
        verify = Job(
            dataset_id=ids["audited"],
            owner_id=owner_id,
            kind="verify",
            config={"kind": "verify", "audit_job_id": audit.id, "test_dataset_id": test},
            status="succeeded",
            metrics={"evaluated_on": f"test dataset {test}", "audit_job_id": audit.id},
        )
        session.add(verify)
        session.flush()
        jobs = {"audit": audit.id, "verify": verify.id}
    return {"owner": owner, "viewer": viewer, "ids": ids, "jobs": jobs}


def _names(job: dict, dataset_id: int) -> bool:
    """Whether a job's config or metrics name `dataset_id`."""
    config = job["config"]
    in_config = any(config.get(k) == dataset_id for k in ("val_dataset_id", "test_dataset_id"))
    import json

    return in_config or f"dataset {dataset_id}" in json.dumps(job["metrics"])


def test_a_viewer_sees_no_reference_to_a_dataset_they_cannot_read(client, shared_audit) -> None:
    ids, jobs = shared_audit["ids"], shared_audit["jobs"]
    owner, viewer = shared_audit["owner"]["headers"], shared_audit["viewer"]["headers"]
    for name, hidden in (("audit", ids["validation"]), ("verify", ids["test"])):
        mine = client.get(f"{API}/jobs/{jobs[name]}", headers=owner).json()
        assert _names(mine, hidden) and mine["redacted"] == []
        theirs = client.get(f"{API}/jobs/{jobs[name]}", headers=viewer).json()
        assert not _names(theirs, hidden), theirs
        assert theirs["redacted"] and "metrics that named them" in theirs["redacted"]
        assert "a dataset you cannot read" in str(theirs["metrics"])
    listed = client.get(f"{API}/datasets/{ids['audited']}/jobs", headers=viewer).json()["items"]
    assert listed and not any(
        _names(j, ids["validation"]) or _names(j, ids["test"]) for j in listed
    )
    audit = client.get(f"{API}/jobs/{jobs['audit']}", headers=viewer).json()
    assert audit["config"]["val_dataset_id"] is None and audit["config"]["model"] == "tiny"
    assert audit["metrics"]["trust"]["is_evidence"] is True  # the rest is as stored
    # The review log names pairs, states and reviewers, never another dataset.
    log = client.get(f"{API}/datasets/{ids['audited']}/review-log", headers=viewer)
    assert log.status_code == 200 and "dataset" not in log.text


def test_a_reference_shows_once_the_viewer_may_read_that_dataset(client, shared_audit) -> None:
    ids, jobs = shared_audit["ids"], shared_audit["jobs"]
    client.put(
        f"{API}/datasets/{ids['validation']}/shares",
        headers=shared_audit["owner"]["headers"],
        json={"username": shared_audit["viewer"]["username"], "role": "viewer"},
    )
    seen = client.get(f"{API}/jobs/{jobs['audit']}", headers=shared_audit["viewer"]["headers"])
    assert seen.json()["config"]["val_dataset_id"] == ids["validation"]
    assert seen.json()["redacted"] == []


def test_a_withheld_reference_keeps_the_jobs_eta(client, shared_audit) -> None:
    """Withholding another dataset's id drops that id, not the running job's time left."""
    import time

    from backend.db import session_scope
    from backend.models import Job, User
    from backend.storage import eta

    ids, owner = shared_audit["ids"], shared_audit["owner"]
    now = time.time()
    # 100 pairs at 10 s each on record, the retraining just begun: about 1000 s left.
    timing = eta.new_timing("verify/head/tiny/cpu", ["retraining"], [], {"retraining": 100}, None)
    timing["history"] = {"retraining": 10.0}
    timing = eta.record(timing, "retraining", 0.0, now)
    with session_scope() as session:
        running = Job(
            dataset_id=ids["audited"],
            owner_id=session.scalar(select(User.id).where(User.username == owner["username"])),
            kind="verify",
            config={
                "kind": "verify",
                "audit_job_id": shared_audit["jobs"]["audit"],
                "test_dataset_id": ids["test"],
            },
            status="running",
            stage="retraining",
            timing=timing,
        )
        session.add(running)
        session.flush()
        job_id = running.id
    mine = client.get(f"{API}/jobs/{job_id}", headers=owner["headers"]).json()
    theirs = client.get(f"{API}/jobs/{job_id}", headers=shared_audit["viewer"]["headers"]).json()
    assert mine["redacted"] == [] and mine["config"]["test_dataset_id"] == ids["test"]
    assert theirs["config"]["test_dataset_id"] is None and "test_dataset_id" in theirs["redacted"]
    assert 900 < mine["eta_seconds"] <= 1000
    assert (
        theirs["eta_seconds"] is not None and abs(theirs["eta_seconds"] - mine["eta_seconds"]) < 30
    )
    assert "timing" not in theirs  # read for the ETA, never shown
    listed = client.get(
        f"{API}/datasets/{ids['audited']}/jobs", headers=shared_audit["viewer"]["headers"]
    ).json()["items"]
    assert [j["eta_seconds"] is not None for j in listed if j["id"] == job_id] == [True]


# Ownership transfer


def _counts(dataset_id: int) -> dict[str, int]:
    from backend.db import session_scope
    from backend.models import Flag, Job, Pair, ReviewAction, ReviewEvent

    with session_scope() as session:
        counts = {
            model.__name__: session.scalar(
                select(func.count()).select_from(model).where(model.dataset_id == dataset_id)
            )
            or 0
            for model in (Pair, Job, Flag, ReviewAction)
        }
        actions = select(ReviewAction.id).where(ReviewAction.dataset_id == dataset_id)
        counts["ReviewEvent"] = (
            session.scalar(select(func.count()).where(ReviewEvent.action_id.in_(actions))) or 0
        )
        return counts


def test_a_transfer_moves_every_row_and_the_old_owner_loses_access(
    client, shared_audit, make_user
) -> None:
    from backend.db import session_scope
    from backend.models import Job, User

    ids, jobs = shared_audit["ids"], shared_audit["jobs"]
    owner, viewer = shared_audit["owner"], shared_audit["viewer"]
    heir = make_user()
    dataset_id = ids["audited"]
    pairs = client.get(f"{API}/datasets/{dataset_id}/pairs", headers=owner["headers"]).json()
    first = pairs["items"][0]["id"]
    flagged = client.put(
        f"{API}/datasets/{dataset_id}/pairs/{first}/review",
        headers=owner["headers"],
        json={"state": "flagged", "note": "before the transfer"},
    )
    assert flagged.status_code == 200, flagged.text
    client.put(  # the heir had been a reviewer: as owner, the share goes
        f"{API}/datasets/{dataset_id}/shares",
        headers=owner["headers"],
        json={"username": heir["username"], "role": "reviewer"},
    )
    before = _counts(dataset_id)
    assert before["Pair"] == 4 and before["Job"] == 2 and before["Flag"] >= 1
    assert before["ReviewEvent"] >= 1

    # Only the owner (or an admin) may hand it on.
    url = f"{API}/datasets/{dataset_id}/transfer"
    body = {"username": heir["username"]}
    assert client.post(url, headers=viewer["headers"], json=body).status_code == 403
    assert client.post(url, headers=heir["headers"], json=body).status_code == 403
    missing = client.post(url, headers=owner["headers"], json={"username": "nobody-at-all"})
    assert missing.status_code == 404 and "nobody-at-all" in missing.json()["detail"]
    itself = client.post(url, headers=owner["headers"], json={"username": owner["username"]})
    assert itself.status_code == 422 and "already owns" in itself.json()["detail"]

    moved = client.post(url, headers=owner["headers"], json=body)
    assert moved.status_code == 200, moved.text
    assert moved.json()["owner_name"] == heir["username"] and moved.json()["jobs_moved"] == 2
    assert _counts(dataset_id) == before  # every row stays with the dataset

    with session_scope() as session:
        heir_id = session.scalar(select(User.id).where(User.username == heir["username"]))
        owners = set(session.scalars(select(Job.owner_id).where(Job.dataset_id == dataset_id)))
    assert owners == {heir_id}
    one = client.get(f"{API}/datasets/{dataset_id}", headers=heir["headers"]).json()
    assert one["role"] == "owner" and one["owner_name"] == heir["username"]
    shares = client.get(f"{API}/datasets/{dataset_id}/shares", headers=heir["headers"]).json()
    assert [s["username"] for s in shares] == [viewer["username"]]  # the viewer keeps theirs
    # The old owner: gone from the list, 404 on the dataset, its jobs and its pairs.
    assert client.get(f"{API}/datasets/{dataset_id}", headers=owner["headers"]).status_code == 404
    assert client.get(f"{API}/jobs/{jobs['audit']}", headers=owner["headers"]).status_code == 404
    listed = client.get(f"{API}/datasets", headers=owner["headers"]).json()["items"]
    assert dataset_id not in [d["id"] for d in listed]
    # The history keeps who decided; the new owner may review, audit and delete.
    history = client.get(
        f"{API}/datasets/{dataset_id}/pairs/{first}/history", headers=heir["headers"]
    ).json()
    assert owner["username"] in str(history)
    # The old owner's validation and test sets were not transferred: the heir sees no id of them.
    audit = client.get(f"{API}/jobs/{jobs['audit']}", headers=heir["headers"]).json()
    assert audit["config"]["val_dataset_id"] is None and audit["redacted"]


def test_an_admin_transfers_and_deletes_an_account_that_owns_datasets(client, make_user) -> None:
    from backend.db import session_scope
    from backend.models import User

    admin, leaving, heir = make_user(), make_user(), make_user()
    with session_scope() as session:
        session.execute(
            update(User).where(User.username == admin["username"]).values(is_admin=True)
        )
        leaving_id = session.scalar(select(User.id).where(User.username == leaving["username"]))
    made = [
        upload(client, leaving["headers"], jsonl_bytes(hh_records(3)), f"{i}.jsonl").json()["id"]
        for i in range(2)
    ]
    # An admin who cannot see the dataset may still hand it on.
    assert client.get(f"{API}/datasets/{made[0]}", headers=admin["headers"]).status_code == 404
    url = f"{API}/datasets/{made[0]}/transfer"
    moved = client.post(url, headers=admin["headers"], json={"username": heir["username"]})
    assert moved.status_code == 200, moved.text
    assert client.get(f"{API}/datasets/{made[0]}", headers=heir["headers"]).status_code == 200

    refused = client.delete(f"{API}/admin/users/{leaving_id}", headers=admin["headers"])
    assert refused.status_code == 422 and "transfer_to" in refused.json()["detail"]
    nobody = client.delete(
        f"{API}/admin/users/{leaving_id}",
        headers=admin["headers"],
        params={"transfer_to": "nobody-at-all"},
    )
    assert nobody.status_code == 404
    assert client.get(f"{API}/datasets/{made[1]}", headers=leaving["headers"]).status_code == 200
    gone = client.delete(
        f"{API}/admin/users/{leaving_id}",
        headers=admin["headers"],
        params={"transfer_to": heir["username"]},
    )
    assert gone.status_code == 204, gone.text
    assert client.get(f"{API}/users/me", headers=leaving["headers"]).status_code == 401
    assert _counts(made[1])["Pair"] == 3
    assert (
        client.get(f"{API}/datasets/{made[1]}", headers=heir["headers"]).json()["role"] == "owner"
    )
