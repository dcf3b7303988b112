"""Accounts, logins, API tokens and the admin's user management."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LoginRequest(BaseModel):
    username: str = Field(max_length=1024)
    password: str = Field(max_length=4096)
    cookie: bool = Field(
        False,
        description="A browser session: the token goes in an HttpOnly SameSite cookie (and a "
        "readable CSRF cookie), not in the response.",
    )


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    is_admin: bool


class TokenCreate(BaseModel):
    name: str = Field("api", max_length=128)
    expires_in_days: float | None = Field(
        None, ge=0, le=3650, description="Lifetime in days; 0 = never; default the server's."
    )
    password: str | None = Field(
        None,
        max_length=4096,
        description="Your current password. Needed from a browser session (the server may "
        "allow a few minutes after the login without it: `reauth_minutes`, off by default), and "
        "from a bearer token for a new token that would outlive it (a later expiry, or never).",
    )


class PasswordChange(BaseModel):
    """Change one's own password: every other session and token of the account ends."""

    current_password: str = Field(max_length=4096)
    new_password: str = Field(min_length=8, max_length=4096)


class TokenPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None = None


class TokenIssued(BaseModel):
    """The token itself is shown only here, once."""

    access_token: str | None = Field(
        description="The token (null for a cookie session: it is in the HttpOnly cookie)."
    )
    token_type: Literal["bearer"] = "bearer"
    user: UserPublic


class AdminUserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    is_admin: bool
    created_at: datetime
    n_datasets: int = 0


class AdminUserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=8, max_length=4096)
    is_admin: bool = False


class AdminUserUpdate(BaseModel):
    """Change what is given; a new password ends the user's sessions and tokens."""

    is_admin: bool | None = None
    password: str | None = Field(None, min_length=8, max_length=4096)


class SecretValue(BaseModel):
    """A secret to store for the caller (encrypted at rest; never shown again)."""

    value: str = Field(min_length=1, max_length=4096)


class SecretStatus(BaseModel):
    """Whether the caller has set a secret, and when: never its value."""

    set: bool
    updated_at: datetime | None = None
