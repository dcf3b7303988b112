"""Per-user secrets (today one: the LLM judge's API key), encrypted at rest. Shared by the API
(setting and clearing them) and the worker (a judge job reads its launcher's key).

Encryption: Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) under a key derived from the
server's `secret_key` by HKDF-SHA256 with a purpose label, so the database alone (a dump, a
backup) does not reveal a secret, and the CSRF HMAC and this key never share bytes. Every API
host and worker must run with the same `secret_key`; after it changes, stored secrets can no
longer be read (`SecretUnreadable`) and must be set again.
"""

from __future__ import annotations

import base64
from datetime import datetime
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from backend.models import UserSecret, utcnow
from backend.settings import get_settings

JUDGE_API_KEY = "judge-api-key"
"""The secret a judge job sends to its server as the bearer key (else the server's setting)."""

SECRET_NAMES: tuple[str, ...] = (JUDGE_API_KEY,)
_PURPOSE = b"prefaudit user secrets v1"


class SecretUnreadable(RuntimeError):
    """A stored secret does not decrypt under this server's `secret_key` (it changed)."""


@lru_cache(maxsize=4)
def _fernet(server_secret: bytes) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE)
    return Fernet(base64.urlsafe_b64encode(derived.derive(server_secret)))


def _cipher() -> Fernet:
    return _fernet(get_settings().server_secret())


def put_secret(session: Session, user_id: int, name: str, value: str) -> UserSecret:
    """Store (or replace) the user's secret `name`, encrypted; the caller commits."""
    token = _cipher().encrypt(value.encode()).decode()
    row = session.scalar(
        select(UserSecret).where(UserSecret.user_id == user_id, UserSecret.name == name)
    )
    if row is None:
        row = UserSecret(user_id=user_id, name=name, ciphertext=token)
        session.add(row)
    else:
        row.ciphertext, row.updated_at = token, utcnow()
    session.flush()
    return row


def delete_secret(session: Session, user_id: int, name: str) -> bool:
    """Forget the user's secret `name`; whether there was one. The caller commits."""
    result = session.execute(
        delete(UserSecret).where(UserSecret.user_id == user_id, UserSecret.name == name)
    )
    return bool(getattr(result, "rowcount", 0))


def secret_updated_at(session: Session, user_id: int, name: str) -> datetime | None:
    """When the user last set `name`, or None when it is not set (never the value)."""
    return session.scalar(
        select(UserSecret.updated_at).where(UserSecret.user_id == user_id, UserSecret.name == name)
    )


def read_secret(session: Session, user_id: int, name: str) -> str | None:
    """The user's secret `name` in clear, or None when not set; SecretUnreadable when it was
    stored under another `secret_key`."""
    token = session.scalar(
        select(UserSecret.ciphertext).where(UserSecret.user_id == user_id, UserSecret.name == name)
    )
    if token is None:
        return None
    try:
        return _cipher().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(
            f"the stored {name} of user {user_id} cannot be decrypted: the server's secret_key "
            "changed since it was set; set it again (PUT /me/secrets/{name})"
        ) from None


def judge_api_key(session: Session, user_id: int) -> str | None:
    """The key a judge job of `user_id` sends: the user's own secret if set, else the server's
    `judge_api_key` setting, else None (a local server without a key)."""
    own = read_secret(session, user_id, JUDGE_API_KEY)
    return own if own is not None else (get_settings().judge_api_key or None)
