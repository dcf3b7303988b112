"""Accounts and API tokens."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.models import ApiToken, User
from backend.security import hash_password, hash_token, new_token, verify_password


class UserExists(ValueError):
    pass


def create_user(session: Session, username: str, password: str, *, is_admin: bool = False) -> User:
    if not username.strip():
        raise ValueError("username must not be empty")
    if len(password) < 8:
        raise ValueError("password must have at least 8 characters")
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise UserExists(f"user {username!r} already exists")
    user = User(username=username, password_hash=hash_password(password), is_admin=is_admin)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not verify_password(password, user.password_hash):
        return None
    return user


def issue_token(session: Session, user: User, name: str) -> str:
    """Create a token and return it in clear; only its hash is stored."""
    token = new_token()
    session.add(
        ApiToken(user_id=user.id, name=name, token_hash=hash_token(token), prefix=token[:10])
    )
    session.flush()
    return token


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise LookupError(f"no user {username!r}; create one with `prefaudit create-user`")
    return user
