"""Logging in (a password buys an API token) and managing one's tokens."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import delete, select

from backend.deps import CurrentUser, PathId, SessionDep
from backend.models import ApiToken
from backend.schemas import LoginRequest, TokenCreate, TokenIssued, TokenPublic, UserPublic
from backend.services.users import authenticate, issue_token

router = APIRouter(tags=["auth"])


@router.post("/auth/login", response_model=TokenIssued)
def login(body: LoginRequest, session: SessionDep) -> TokenIssued:
    """Exchange a username and password for a new API token."""
    user = authenticate(session, body.username, body.password)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="wrong username or password")
    token = issue_token(session, user, "browser session")
    session.commit()
    return TokenIssued(access_token=token, user=UserPublic.model_validate(user))


@router.get("/users/me", response_model=UserPublic)
def read_me(user: CurrentUser) -> UserPublic:
    """The account the token belongs to."""
    return UserPublic.model_validate(user)


@router.get("/tokens", response_model=list[TokenPublic])
def list_tokens(session: SessionDep, user: CurrentUser) -> list[TokenPublic]:
    """The caller's tokens (their prefixes only; tokens are stored hashed)."""
    tokens = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id))
    return [TokenPublic.model_validate(t) for t in tokens]


@router.post("/tokens", response_model=TokenIssued, status_code=status.HTTP_201_CREATED)
def create_token(body: TokenCreate, session: SessionDep, user: CurrentUser) -> TokenIssued:
    """Create a named API token for scripts; it is shown once."""
    token = issue_token(session, user, body.name)
    session.commit()
    return TokenIssued(access_token=token, user=UserPublic.model_validate(user))


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(token_id: PathId, session: SessionDep, user: CurrentUser) -> None:
    """Revoke one of the caller's tokens."""
    result = session.execute(
        delete(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user.id)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"token {token_id} not found")
    session.commit()
