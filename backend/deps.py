"""Typed FastAPI dependencies: the DB session, the current user, settings, and owned rows."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.db import get_db
from backend.errors import Forbidden, NotFound, Unauthorized
from backend.models import ApiToken, Dataset, DatasetShare, Job, User, as_utc, utcnow
from backend.schemas import DB_ID_MAX
from backend.security import csrf_token, hash_token
from backend.settings import Settings, get_settings

SessionDep = Annotated[Session, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

bearer = HTTPBearer(auto_error=False, description="An API token from /auth/login or /tokens.")


LAST_USED_RESOLUTION_S = 60
"""A token's `last_used_at` is kept to the minute: reads do not each cost a write."""

UNAUTHORIZED_DETAIL = (
    "missing or invalid token: send 'Authorization: Bearer <token>' (or log in in the browser)"
)

SESSION_COOKIE = "prefaudit_session"
"""The browser's session token: HttpOnly, SameSite=Strict (set by POST /auth/login with
`cookie: true`)."""
CSRF_COOKIE = "prefaudit_csrf"
"""Readable by the page: its value goes back in `CSRF_HEADER` on every change."""
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def token_row(session: Session, authorization: str | None) -> ApiToken | None:
    """The API token an `Authorization` header carries, or None."""
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(value.strip())))


def presented_token(request: Request) -> tuple[str | None, bool]:
    """(the token a request carries, whether it came in the session cookie): a bearer header
    wins over the cookie."""
    scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), False
    cookie = request.cookies.get(SESSION_COOKIE)
    return (cookie, True) if cookie else (None, False)


def token_is_live(token: ApiToken | None) -> bool:
    """A token that exists and has not expired."""
    if token is None:
        return False
    expires = as_utc(token.expires_at)
    return expires is None or expires > utcnow()


@dataclass(frozen=True)
class Caller:
    """Who makes a request, and with what: the token row, and whether it came in the browser's
    session cookie (re-authentication rules differ for a cookie and a bearer token)."""

    user: User
    token: ApiToken
    from_cookie: bool


def get_caller(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    """The caller, from a bearer token or the browser's session cookie; a change made with the
    cookie must carry its CSRF header (403 otherwise)."""
    value, from_cookie = presented_token(request)
    if value is None:
        raise Unauthorized(UNAUTHORIZED_DETAIL, challenge="Bearer")
    token = token_row(session, f"Bearer {value}")
    if token is None:
        raise Unauthorized(UNAUTHORIZED_DETAIL, challenge="Bearer")
    expires = as_utc(token.expires_at)
    if expires is not None and expires <= utcnow():
        raise Unauthorized(
            "the token has expired; log in again or create a new token",
            challenge='Bearer error="invalid_token"',
        )
    if from_cookie and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        expected = csrf_token(value, settings.server_secret())
        if not hmac.compare_digest(sent.encode(), expected.encode()):
            raise Forbidden(
                f"missing or wrong {CSRF_HEADER} header: a change made with the browser's "
                f"session cookie must send the value of the {CSRF_COOKIE} cookie"
            )
    now = utcnow()
    last = as_utc(token.last_used_at)
    if last is None or (now - last).total_seconds() > LAST_USED_RESOLUTION_S:
        token.last_used_at = now  # a write per minute at most, not one per request
        session.commit()
    return Caller(token.user, token, from_cookie)


CurrentCaller = Annotated[Caller, Depends(get_caller)]


def get_current_user(caller: CurrentCaller) -> User:
    """The caller's account (see `get_caller`)."""
    return caller.user


CurrentUser = Annotated[User, Depends(get_current_user)]

PathId = Annotated[int, Path(ge=1, le=DB_ID_MAX, description="A database id (1 … 2³¹−1).")]
"""An id in the URL: out of a table's range is a 422 naming the bound, not a database error."""


Role = Literal["viewer", "reviewer", "owner"]
ROLES: tuple[Role, ...] = ("viewer", "reviewer", "owner")
"""Each role can do what the ones before it can."""


def dataset_role(session: Session, user: User, dataset: Dataset) -> Role | None:
    """The caller's role on a dataset: its owner, a share's role, or None (it is invisible)."""
    if dataset.owner_id == user.id:
        return "owner"
    share = session.get(DatasetShare, (dataset.id, user.id))
    return share.role if share is not None else None  # type: ignore[return-value]


def _refuse(role: Role, need: Role, what: str) -> Forbidden:
    return Forbidden(
        f"you are a {role} of {what}; this needs a {need}"
        + (" (only its owner can)" if need == "owner" else "")
    )


def access_dataset(session: Session, user: User, dataset_id: int, need: Role) -> Dataset:
    """The dataset if the caller's role allows `need`; 404 if they cannot see it (another
    user's dataset is indistinguishable from none), 403 if their role is too low."""
    dataset = session.get(Dataset, dataset_id)
    role = dataset_role(session, user, dataset) if dataset is not None else None
    if dataset is None or role is None:
        raise NotFound(f"dataset {dataset_id} not found")
    if ROLES.index(role) < ROLES.index(need):
        raise _refuse(role, need, f"dataset {dataset_id}")
    return dataset


def access_job(session: Session, user: User, job_id: int, need: Role) -> Job:
    """A job, through the caller's role on its dataset (404 / 403 as `access_dataset`)."""
    job = session.get(Job, job_id)
    dataset = session.get(Dataset, job.dataset_id) if job is not None else None
    role = dataset_role(session, user, dataset) if dataset is not None else None
    if job is None or role is None:
        raise NotFound(f"job {job_id} not found")
    if ROLES.index(role) < ROLES.index(need):
        raise _refuse(role, need, f"job {job_id}'s dataset")
    return job


def _dataset_with(need: Role):  # type: ignore[no-untyped-def]
    def dependency(dataset_id: PathId, session: SessionDep, user: CurrentUser) -> Dataset:
        return access_dataset(session, user, dataset_id, need)

    return dependency


def _job_with(need: Role):  # type: ignore[no-untyped-def]
    def dependency(job_id: PathId, session: SessionDep, user: CurrentUser) -> Job:
        return access_job(session, user, job_id, need)

    return dependency


DatasetDep = Annotated[Dataset, Depends(_dataset_with("viewer"))]
"""A dataset the caller may read: its owner, a reviewer or a viewer."""
ReviewedDataset = Annotated[Dataset, Depends(_dataset_with("reviewer"))]
"""A dataset the caller may review (flag, keep, swap, note): its owner or a reviewer."""
OwnedDataset = Annotated[Dataset, Depends(_dataset_with("owner"))]
"""A dataset only its owner may act on here (delete, audit, share)."""
JobDep = Annotated[Job, Depends(_job_with("viewer"))]
OwnedJob = Annotated[Job, Depends(_job_with("owner"))]


def require_admin(user: CurrentUser) -> User:
    if not user.is_admin:
        raise Forbidden("only an admin can manage users")
    return user


AdminUser = Annotated[User, Depends(require_admin)]
