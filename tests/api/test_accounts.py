"""Accounts: login throttling with lockout backoff, constant-cost login, token expiry."""

from __future__ import annotations

from datetime import timedelta

API = "/api/v1"


def _login(client, username: str, password: str):
    return client.post(f"{API}/auth/login", json={"username": username, "password": password})


def _unlock(username: str) -> None:
    """Move the lockout into the past, as waiting would."""
    from backend.db import session_scope
    from backend.models import LoginFailure, utcnow

    with session_scope() as session:
        record = session.get(LoginFailure, username)
        record.locked_until = utcnow() - timedelta(seconds=1)


def test_wrong_passwords_lock_the_username_out_with_backoff(client, make_user) -> None:
    user = make_user()
    name, password = user["username"], user["password"]
    for _ in range(6):  # five free failures; the sixth earns a 1 s wait
        assert _login(client, name, "wrong-guess").status_code == 401
    locked = _login(client, name, "wrong-guess")
    assert locked.status_code == 429, locked.text
    assert int(locked.headers["Retry-After"]) >= 1 and "try again" in locked.json()["detail"]
    # While locked, even the right password waits: a guesser learns nothing from it.
    assert _login(client, name, password).status_code == 429
    _unlock(name)
    # The next failure doubles the wait.
    assert _login(client, name, "wrong-again").status_code == 401
    second = _login(client, name, password)
    assert second.status_code == 429 and int(second.headers["Retry-After"]) >= 2
    _unlock(name)
    # The right password then works and clears the count.
    assert _login(client, name, password).status_code == 200
    for _ in range(5):
        assert _login(client, name, "wrong").status_code == 401
    # Another user is not affected by this one's lockout.
    other = make_user()
    assert _login(client, other["username"], other["password"]).status_code == 200


def test_unknown_and_known_usernames_cost_the_same(client, make_user, monkeypatch) -> None:
    """An unknown username used to skip scrypt (6 ms vs 77 ms): now every login verifies one
    password hash, so the timing does not tell which usernames exist."""
    from backend.services import users

    calls: list[str] = []
    real = users.verify_password

    def counting(password: str, stored: str) -> bool:
        calls.append(stored.split("$")[0])
        return real(password, stored)

    monkeypatch.setattr(users, "verify_password", counting)
    user = make_user()
    for name in (user["username"], "nobody-by-this-name"):
        calls.clear()
        assert _login(client, name, "wrong-password").status_code == 401
        assert calls == ["scrypt"], name


def test_session_and_api_tokens_expire(client, make_user) -> None:
    from sqlalchemy import select

    from backend.db import session_scope
    from backend.models import ApiToken, utcnow

    user = make_user()
    session_token = _login(client, user["username"], user["password"]).json()["access_token"]
    headers = {"Authorization": f"Bearer {session_token}"}
    listed = client.get(f"{API}/tokens", headers=headers).json()
    browser = next(t for t in listed if t["name"] == "browser session")
    assert browser["expires_at"] is not None

    # Both outlive the 12-hour login token that makes them: they need the password.
    proof = {"password": user["password"]}
    made = client.post(f"{API}/tokens", headers=headers, json={"name": "ci", **proof}).json()
    forever = client.post(
        f"{API}/tokens", headers=headers, json={"name": "cron", "expires_in_days": 0, **proof}
    ).json()
    tokens = {t["name"]: t for t in client.get(f"{API}/tokens", headers=headers).json()}
    assert tokens["cron"]["expires_at"] is None
    with session_scope() as session:
        ci = session.scalar(
            select(ApiToken).where(ApiToken.name == "ci", ApiToken.id == tokens["ci"]["id"])
        )
        lifetime = ci.expires_at - ci.created_at
        assert timedelta(days=89) < lifetime < timedelta(days=91)
        ci.expires_at = utcnow() - timedelta(seconds=1)  # it ran out
    expired = client.get(
        f"{API}/users/me", headers={"Authorization": f"Bearer {made['access_token']}"}
    )
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    # A malformed body with an expired token is a 401 too, not the body's 422.
    bad = client.post(
        f"{API}/tokens",
        headers={"Authorization": f"Bearer {made['access_token']}"},
        json={"name": 5},
    )
    assert bad.status_code == 401
    alive = {"Authorization": f"Bearer {forever['access_token']}"}
    assert client.get(f"{API}/users/me", headers=alive).status_code == 200
    assert (
        client.post(f"{API}/tokens", headers=alive, json={"expires_in_days": -1}).status_code == 422
    )


def test_old_failure_records_are_pruned(client) -> None:
    from backend.db import session_scope
    from backend.models import LoginFailure, utcnow
    from backend.services.reaper import reap_once

    assert _login(client, "made-up-name-123", "x").status_code == 401
    with session_scope() as session:
        record = session.get(LoginFailure, "made-up-name-123")
        assert record is not None and record.failures == 1
        record.last_failure_at = utcnow() - timedelta(days=2)
    reap_once(send=lambda job_id, resume: None)
    with session_scope() as session:
        assert session.get(LoginFailure, "made-up-name-123") is None


def test_logout_revokes_the_session_token(client, make_user) -> None:
    user = make_user()
    token = _login(client, user["username"], user["password"]).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"{API}/users/me", headers=headers).status_code == 200
    assert client.post(f"{API}/auth/logout", headers=headers).status_code == 204
    assert client.get(f"{API}/users/me", headers=headers).status_code == 401
    # Other tokens of the user live on.
    assert client.get(f"{API}/users/me", headers=user["headers"]).status_code == 200


def test_a_browser_session_lives_in_an_httponly_cookie_and_changes_need_its_csrf_header(
    client, make_user
) -> None:
    from fastapi.testclient import TestClient

    from backend.security import csrf_token
    from backend.settings import get_settings

    user = make_user()
    with TestClient(client.app) as browser:  # its own cookie jar
        login = browser.post(
            f"{API}/auth/login",
            json={"username": user["username"], "password": user["password"], "cookie": True},
        )
        assert login.status_code == 200, login.text
        assert login.json()["access_token"] is None  # the page never sees the token
        cookies = {c.split("=", 1)[0]: c for c in login.headers.get_list("set-cookie")}
        session_cookie, csrf_cookie = cookies["prefaudit_session"], cookies["prefaudit_csrf"]
        for attribute in ("HttpOnly", "SameSite=strict", "Path=/", "Max-Age=43200"):
            assert attribute in session_cookie, session_cookie
        assert "HttpOnly" not in csrf_cookie and "SameSite=strict" in csrf_cookie
        assert "Secure" not in session_cookie  # plain http here; https marks it Secure
        token = browser.cookies.get("prefaudit_session")
        csrf = browser.cookies.get("prefaudit_csrf")
        assert csrf == csrf_token(token, get_settings().server_secret())

        # Reads need only the cookie; a change needs the CSRF header too.
        assert browser.get(f"{API}/users/me").json()["username"] == user["username"]
        created = browser.post(f"{API}/tokens", json={"name": "from the browser"})
        assert created.status_code == 403 and "X-CSRF-Token" in created.json()["detail"]
        wrong = browser.post(
            f"{API}/tokens", json={"name": "x"}, headers={"X-CSRF-Token": csrf[::-1]}
        )
        assert wrong.status_code == 403
        made = browser.post(
            f"{API}/tokens",
            json={"name": "ok", "password": user["password"]},
            headers={"X-CSRF-Token": csrf},
        )
        assert made.status_code == 201, made.text
        # A malformed body is still a 401 without credentials, and a 422 with the cookie.
        assert (
            browser.post(f"{API}/tokens", content=b"{", headers={"X-CSRF-Token": csrf}).status_code
            == 422
        )
        # A bearer token needs no CSRF header (no browser sends it on its own) and wins.
        bearer = browser.post(f"{API}/tokens", json={"name": "b"}, headers=user["headers"])
        assert bearer.status_code == 201

        # Logging out revokes the session's token and clears both cookies.
        assert browser.post(f"{API}/auth/logout").status_code == 403  # no CSRF header
        out = browser.post(f"{API}/auth/logout", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 204
        cleared = " ".join(out.headers.get_list("set-cookie"))
        assert 'prefaudit_session=""' in cleared and 'prefaudit_csrf=""' in cleared
        assert browser.get(f"{API}/users/me").status_code == 401
    replay = client.get(f"{API}/users/me", headers={"Authorization": f"Bearer {token}"})
    assert replay.status_code == 401 and not client.cookies


def test_a_secure_deployment_marks_the_session_cookie_secure(client, make_user) -> None:
    from fastapi.testclient import TestClient

    user = make_user()
    with TestClient(client.app, base_url="https://prefaudit.example") as browser:
        login = browser.post(
            f"{API}/auth/login",
            json={"username": user["username"], "password": user["password"], "cookie": True},
        )
        assert all("Secure" in c for c in login.headers.get_list("set-cookie"))


def test_a_username_with_a_nul_byte_is_a_plain_wrong_login(client) -> None:
    """Postgres cannot hold NUL in text: such a name is no account (401), not a server error."""
    for body in (
        {"username": "\x00", "password": "x"},
        {"username": "a\x00b", "password": "x", "cookie": True},
    ):
        response = client.post(f"{API}/auth/login", json=body)
        assert response.status_code == 401, response.text
