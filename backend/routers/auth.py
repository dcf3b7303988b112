"""Logging in (a password buys an API token, or a browser session in an HttpOnly cookie) and
managing one's tokens."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, Response, status
from sqlalchemy import delete, select

from backend.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    CurrentCaller,
    CurrentUser,
    PathId,
    SessionDep,
    SettingsDep,
    presented_token,
)
from backend.errors import NotFound, Unauthorized
from backend.models import ApiToken, utcnow
from backend.schemas import (
    LoginRequest,
    PasswordChange,
    TokenCreate,
    TokenIssued,
    TokenPublic,
    UserPublic,
)
from backend.security import csrf_token, hash_token
from backend.services.users import (
    LoginThrottled,
    authenticate,
    change_password,
    issue_token,
    proof_needed,
    prove_password,
)

router = APIRouter(tags=["auth"])


@router.post(
    "/auth/login",
    response_model=TokenIssued,
    responses={429: {"description": "Too many wrong passwords: wait `Retry-After` seconds."}},
)
def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
) -> TokenIssued:
    """Exchange a username and password for a session token (it expires after
    `session_hours`). Repeated wrong passwords for one username make it wait (429). With
    `cookie: true` (the browser) the token is set as an HttpOnly SameSite=Strict cookie and not
    returned; a readable `prefaudit_csrf` cookie holds the value every change must send back
    in the `X-CSRF-Token` header."""
    try:
        user = authenticate(session, body.username, body.password, settings)
    except LoginThrottled:
        session.commit()  # the attempt counts: the 429 says how long to wait
        raise
    if user is None:
        session.commit()  # the failure counts
        raise Unauthorized("wrong username or password")
    lifetime = timedelta(hours=settings.session_hours)
    token = issue_token(session, user, "browser session", lifetime)
    session.commit()
    if not body.cookie:
        return TokenIssued(access_token=token, user=UserPublic.model_validate(user))
    secure = settings.cookie_secure
    if secure is None:
        # In production a TLS proxy may hand the request on as plain http: Secure regardless.
        secure = settings.env == "prod" or request.url.scheme == "https"
    age = int(lifetime.total_seconds())
    for name, value, http_only in (
        (SESSION_COOKIE, token, True),
        (CSRF_COOKIE, csrf_token(token, settings.server_secret()), False),
    ):
        response.set_cookie(
            name, value, max_age=age, path="/", secure=secure, httponly=http_only, samesite="strict"
        )
    return TokenIssued(access_token=None, user=UserPublic.model_validate(user))


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(request: Request, response: Response, session: SessionDep, user: CurrentUser) -> None:
    """Revoke the token this request carries, bearer or session cookie, and clear the
    browser's session cookies."""
    value, _ = presented_token(request)
    assert value is not None  # CurrentUser has checked it
    session.execute(
        delete(ApiToken).where(
            ApiToken.user_id == user.id, ApiToken.token_hash == hash_token(value)
        )
    )
    session.commit()
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/", samesite="strict")


@router.get("/users/me", response_model=UserPublic)
def read_me(user: CurrentUser) -> UserPublic:
    """The account the token belongs to."""
    return UserPublic.model_validate(user)


@router.get("/tokens", response_model=list[TokenPublic])
def list_tokens(session: SessionDep, user: CurrentUser) -> list[TokenPublic]:
    """The caller's tokens (their prefixes only; tokens are stored hashed)."""
    tokens = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id))
    return [TokenPublic.model_validate(t) for t in tokens]


@router.post(
    "/tokens",
    response_model=TokenIssued,
    status_code=status.HTTP_201_CREATED,
    responses={
        403: {"description": "This needs your current password (`password`): the detail says why."}
    },
)
def create_token(
    body: TokenCreate, session: SessionDep, caller: CurrentCaller, settings: SettingsDep
) -> TokenIssued:
    """Create a named API token for scripts; it is shown once. It expires after
    `expires_in_days` (default the server's `token_days`; 0 = never). From a browser session,
    or for a token that would outlive the bearer token asking, send your current `password`."""
    days = settings.token_days if body.expires_in_days is None else body.expires_in_days
    lifetime = timedelta(days=days) if days > 0 else None
    why = proof_needed(
        caller.token, caller.from_cookie, utcnow() + lifetime if lifetime else None, settings
    )
    if why is not None:
        prove_password(session, caller.user, body.password, why)
    token = issue_token(session, caller.user, body.name, lifetime)
    session.commit()
    return TokenIssued(access_token=token, user=UserPublic.model_validate(caller.user))


@router.put(
    "/users/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={403: {"description": "The current password is wrong."}},
)
def change_my_password(body: PasswordChange, session: SessionDep, caller: CurrentCaller) -> None:
    """Change your password; it needs the current one. Every other session and API token of
    yours ends; the one making the change stays."""
    prove_password(
        session,
        caller.user,
        body.current_password,
        "changing your password needs the current one (`current_password`)",
    )
    change_password(session, caller.user, caller.token, body.new_password)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(token_id: PathId, session: SessionDep, user: CurrentUser) -> None:
    """Revoke one of the caller's tokens."""
    result = session.execute(
        delete(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user.id)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"token {token_id} not found")
    session.commit()
