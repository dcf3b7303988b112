"""Password and API-token hashing. Tokens are random and long, so SHA-256 suffices for them;
passwords get scrypt with a per-user salt."""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_PREFIX = "pfa_"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, salt_hex, digest_hex = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt_hex), dklen=32, **_SCRYPT)
    return hmac.compare_digest(digest.hex(), digest_hex)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(session_token: str, secret: bytes) -> str:
    """The CSRF value of a browser session: an HMAC, keyed with the server's secret, of the
    session's id (its token's hash). The token is in an HttpOnly cookie the page cannot read, and
    without the secret nobody can compute the value from it, so only a page that was given it
    (the readable CSRF cookie of this origin) can send it back."""
    message = b"prefaudit-csrf\0" + hash_token(session_token).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:40]
