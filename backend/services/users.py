"""Accounts and API tokens."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from backend.errors import BadInput, Conflict, Forbidden, Throttled
from backend.models import ApiToken, LoginFailure, User, as_utc, utcnow
from backend.security import hash_password, hash_token, new_token, verify_password
from backend.settings import Settings, get_settings


class UserExists(Conflict):
    """The username is taken (409)."""


def create_user(session: Session, username: str, password: str, *, is_admin: bool = False) -> User:
    if not username.strip():
        raise BadInput("username must not be empty")
    if any(ord(c) < 32 for c in username):
        raise BadInput("username must not hold control characters")
    if len(password) < 8:
        raise BadInput("password must have at least 8 characters")
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise UserExists(f"user {username!r} already exists")
    user = User(username=username, password_hash=hash_password(password), is_admin=is_admin)
    session.add(user)
    session.flush()
    return user


_DUMMY_HASH = hash_password("no user has this password")
"""Checked against when the username is unknown, so an unknown name costs the same scrypt as a
known one and the answer's timing does not tell which usernames exist."""


class LoginThrottled(Throttled):
    """Too many wrong passwords for this username: wait `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(
            f"too many failed logins for this account; try again in {math.ceil(retry_after)} s",
            retry_after,
        )


def authenticate(
    session: Session, username: str, password: str, settings: Settings | None = None
) -> User | None:
    """The user whose password this is, or None; raises LoginThrottled while the username is
    locked out (even for the right password: a guesser learns nothing from waiting).

    Every call costs one scrypt, known username or not. `login_free_failures` wrong passwords in
    a row are free; each further one locks the username for 1 s, 2 s, 4 s … up to
    `login_lockout_max_seconds`; a right password resets the count.
    """
    settings = settings or get_settings()
    if "\x00" in username:
        # No account has such a name (the database cannot store one): the same scrypt, no row.
        verify_password(password, _DUMMY_HASH)
        return None
    now = utcnow()
    record = session.get(LoginFailure, username[:128])
    locked = as_utc(record.locked_until) if record is not None else None
    if locked is not None and locked > now:
        # Still pay the scrypt: a locked account answers in the same time as any other.
        verify_password(password, _DUMMY_HASH)
        raise LoginThrottled((locked - now).total_seconds())
    user = session.scalar(select(User).where(User.username == username))
    ok = verify_password(password, user.password_hash if user is not None else _DUMMY_HASH)
    if user is not None and ok:
        if record is not None:
            session.delete(record)
            session.flush()
        return user
    if record is None:
        record = LoginFailure(username=username[:128], failures=0)
        session.add(record)
    record.failures += 1
    record.last_failure_at = now
    extra = record.failures - settings.login_free_failures
    if extra > 0:
        wait = min(settings.login_lockout_max_seconds, 2.0 ** (extra - 1))
        record.locked_until = now + timedelta(seconds=wait)
    session.flush()
    return None


def issue_token(session: Session, user: User, name: str, lifetime: timedelta | None = None) -> str:
    """Create a token and return it in clear; only its hash is stored. `lifetime` None: the
    token never expires."""
    token = new_token()
    expires = utcnow() + lifetime if lifetime is not None else None
    session.add(
        ApiToken(
            user_id=user.id,
            name=name,
            token_hash=hash_token(token),
            prefix=token[:10],
            expires_at=expires,
        )
    )
    session.flush()
    return token


class ProofNeeded(Forbidden):
    """The request needs the caller's current password (missing or wrong): the message says
    why and what to send."""


def proof_needed(
    token: ApiToken, from_cookie: bool, new_expiry: datetime | None, settings: Settings
) -> str | None:
    """Why creating a token that expires at `new_expiry` (None: never) needs the caller's
    password, or None when the request itself is proof enough.

    From the browser's session cookie: always (a borrowed, unlocked browser must not leave with
    a key), unless the server allows a grace of `reauth_minutes` after the login (off by
    default). The cookie is known to be a login's: a change through it carries the CSRF value,
    an HMAC only the login handed out. From a bearer token: when the new token would outlive
    the one presenting it (expire later, or never)."""
    if from_cookie:
        created = as_utc(token.created_at)
        window = timedelta(minutes=settings.reauth_minutes)
        if window and created is not None and utcnow() - created <= window:
            return None
        grace = (
            f" (a login within the last {settings.reauth_minutes:g} minutes also counts)"
            if window
            else ""
        )
        return (
            "creating an API token from a browser session needs your current password: send "
            f"`password`{grace}"
        )
    current = as_utc(token.expires_at)
    if current is None:
        return None  # it never expires: no new token can outlive it
    if new_expiry is None or new_expiry > current:
        return (
            "the new token would outlive the token creating it (which expires "
            f"{current:%Y-%m-%d %H:%M} UTC): send your current password as `password`, or ask "
            "for an expiry no later than that"
        )
    return None


def prove_password(session: Session, user: User, password: str | None, why: str) -> None:
    """Check the caller's password for a privileged change (throttled like a login); raises
    ProofNeeded when it is missing or wrong, LoginThrottled while the account is locked."""
    if password is None:
        raise ProofNeeded(why)
    if authenticate(session, user.username, password) is None:
        session.commit()  # the failure counts towards the lockout, as a login's does
        raise ProofNeeded("wrong password: " + why)


def change_password(session: Session, user: User, keep: ApiToken, new_password: str) -> int:
    """Set the caller's new password; every other session and token of theirs ends (the one
    making the change stays). Returns how many ended."""
    if len(new_password) < 8:
        raise BadInput("password must have at least 8 characters")
    user.password_hash = hash_password(new_password)
    ended = session.execute(
        delete(ApiToken).where(ApiToken.user_id == user.id, ApiToken.id != keep.id)
    )
    session.commit()
    return int(ended.rowcount or 0)  # type: ignore[attr-defined]


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise LookupError(f"no user {username!r}; create one with `prefaudit create-user`")
    return user
