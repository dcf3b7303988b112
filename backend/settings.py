"""Service settings: one pydantic-settings class, read once from the environment (and `.env`).

`DATABASE_URL` and `BROKER_URL` switch every command between the embedded default
(SQLite + kombu's filesystem broker under the data directory) and Postgres + Redis.
"""

from __future__ import annotations

import os
import secrets
import time
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from backend.ingest.limits import ReadLimits

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PREFAUDIT_", env_file=".env", extra="ignore")

    env: Literal["dev", "test", "prod"] = Field(
        "dev", description="dev and test allow the embedded SQLite + filesystem-broker setup."
    )
    data_dir: Path = Field(
        REPO_ROOT / "var",
        description="Uploaded originals, exports, the SQLite database and the filesystem broker.",
    )
    database_url: str = Field(
        "",
        validation_alias=AliasChoices("DATABASE_URL", "PREFAUDIT_DATABASE_URL"),
        description="SQLAlchemy URL; empty means SQLite at <data_dir>/prefaudit.db.",
    )
    broker_url: str = Field(
        "",
        validation_alias=AliasChoices("BROKER_URL", "PREFAUDIT_BROKER_URL"),
        description="Celery broker; empty or filesystem:// means folders under <data_dir>/broker.",
    )
    frontend_dir: Path = Field(
        REPO_ROOT / "frontend" / "dist", description="The built UI, served at / when present."
    )
    artifact_url: str = Field(
        "",
        description="Where sharded jobs keep adapters, projected gradients and solves: a local "
        "folder or any fsspec URL (s3://bucket/prefix) that every worker can reach; empty means "
        "<data_dir>/artifacts.",
    )
    heartbeat_seconds: float = Field(
        5.0, description="How often a running task writes its heartbeat (and checks for cancel)."
    )
    stale_seconds: float = Field(
        30.0,
        description="A running task whose heartbeat is older than this is presumed dead: the "
        "reaper re-dispatches its job and the next delivery takes the task over.",
    )
    reaper_interval_seconds: float = Field(
        10.0,
        description="How often the API process looks for stalled jobs and lost broker data "
        "(0 disables the reaper; `prefaudit reap` runs one pass).",
    )
    max_resumes: int = Field(
        5, description="Re-dispatches of one job before the reaper marks it failed."
    )
    visibility_timeout_seconds: int = Field(
        3600,
        description="Redis redelivers a task not acknowledged within this long. Longer than the "
        "longest task (one shard, or training); a dead worker's tasks come back sooner through "
        "the reaper.",
    )
    max_upload_bytes: int = Field(
        2 * 1024**3,
        description="Largest accepted upload, checked as the body arrives (a 413 at once when "
        "Content-Length says more).",
    )
    max_line_bytes: int = Field(
        64 * 1024**2, description="Longest line of a JSONL or CSV upload (one pair)."
    )
    max_rows: int = Field(20_000_000, description="Most lines or records in one upload.")
    max_decompressed_bytes: int = Field(
        16 * 1024**3, description="Most bytes a gzipped upload may expand to."
    )
    max_expansion: float = Field(
        200.0,
        description="Most decompressed bytes per compressed byte (past the first 64 MiB): "
        "text compresses 3–15×, decompression bombs 1,000× and more.",
    )
    max_body_bytes: int = Field(
        4 * 1024**2, description="Largest request body of every route but the upload."
    )
    max_page_size: int = Field(1000, description="Largest `limit` of a pairs page.")
    exact_count_ms: int = Field(
        300,
        ge=0,
        description="Time a filtered total above 10,000 may take to be counted exactly (Postgres); "
        "past it the total is the planner's estimate, labelled. Totals are cached until the next "
        "review action. 0: always the estimate above 10,000.",
    )
    session_hours: float = Field(
        12.0, description="Lifetime of the token a login (the browser's session) gets."
    )
    cookie_secure: bool | None = Field(
        None,
        description="Mark the browser's session cookies Secure (sent over HTTPS only); unset: "
        "always in production (PREFAUDIT_ENV=prod), elsewhere when the login request came over "
        "HTTPS.",
    )
    token_days: float = Field(
        90.0, description="Default lifetime of a named API token (POST /tokens)."
    )
    secret_key: str = Field(
        "",
        description="The server's secret: keys the browser session's CSRF value (HMAC). Empty: "
        "generated once on first start and kept in <data_dir>/secret_key (dev and test); "
        "PREFAUDIT_ENV=prod needs it set, the same on every API host, at least 32 characters. "
        "Changing it makes every browser send its CSRF value again from a new login.",
    )
    judge_api_key: str = Field(
        "",
        description="The key the LLM judge's worker sends to the judge server (Bearer). Never "
        "stored in a job's config nor shown by the API; empty for a local server without one.",
    )
    reauth_minutes: float = Field(
        0.0,
        ge=0,
        description="A login this recent counts as proof of the password: within it a browser "
        "session may create an API token without typing the password again. 0 (the default): "
        "the browser always asks for it.",
    )
    login_free_failures: int = Field(
        5, description="Wrong passwords for one username before logins wait (429)."
    )
    login_lockout_max_seconds: float = Field(
        900.0,
        description="Longest wait after repeated wrong passwords: 1 s after the free failures, "
        "doubling with every further failure up to this.",
    )

    def read_limits(self) -> ReadLimits:
        """The ingest's bounds (backend.ingest.limits.ReadLimits) from these settings."""
        return ReadLimits(
            max_line_bytes=self.max_line_bytes,
            max_rows=self.max_rows,
            max_decompressed_bytes=self.max_decompressed_bytes,
            max_expansion=self.max_expansion,
            max_json_bytes=min(self.max_decompressed_bytes, self.max_upload_bytes * 4),
        )

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            url = self.database_url
            # Plain postgresql:// means psycopg 3 here, the driver we install.
            if url.startswith("postgresql://") or url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url.split("://", 1)[1]
            return url
        return f"sqlite:///{self.data_dir.resolve() / 'prefaudit.db'}"

    @property
    def uses_filesystem_broker(self) -> bool:
        return self.broker_url in ("", "filesystem://")

    @property
    def broker_folder(self) -> Path:
        return self.data_dir.resolve() / "broker"

    @property
    def result_backend_url(self) -> str:
        """Where chords count finished shards: Redis beside a Redis broker, else a SQLite file
        (Celery's SQLAlchemy backend) next to the filesystem broker."""
        if not self.uses_filesystem_broker:
            return self.broker_url
        return f"db+sqlite:///{self.broker_folder / 'results.sqlite'}"

    @property
    def artifact_root(self) -> str:
        return self.artifact_url or str(self.data_dir.resolve() / "artifacts")

    def server_secret(self) -> bytes:
        """`secret_key`, or the one generated for this data directory on first use."""
        if self.secret_key:
            return self.secret_key.encode()
        return _stored_secret(self.data_dir.resolve() / SECRET_FILE)

    def check_production(self) -> None:
        """Refuse the embedded defaults outside dev/test: they are single-machine only."""
        if self.env != "prod":
            return
        if self.sqlalchemy_url.startswith("sqlite"):
            raise RuntimeError("PREFAUDIT_ENV=prod needs DATABASE_URL (Postgres), not SQLite")
        if self.uses_filesystem_broker:
            raise RuntimeError("PREFAUDIT_ENV=prod needs BROKER_URL (Redis), not the filesystem")
        if len(self.secret_key) < 32:
            raise RuntimeError(
                "PREFAUDIT_ENV=prod needs PREFAUDIT_SECRET_KEY (32 characters or more, the same on "
                "every API host), e.g. from `python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'`"
            )


SECRET_FILE = "secret_key"
"""Under the data directory: the secret the embedded mode generated on its first start."""


@lru_cache
def _stored_secret(path: Path) -> bytes:
    """The secret in `path`, made (random, mode 0600) by whichever process gets there first:
    several API processes starting at once agree on one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process created it and may still be writing
            value = path.read_bytes().strip()
            if value:
                return value
            time.sleep(0.02)
        raise RuntimeError(
            f"{path} is empty: delete it and restart to generate a new secret"
        ) from None
    value = secrets.token_urlsafe(48).encode()
    with os.fdopen(fd, "wb") as out:
        out.write(value + b"\n")
    return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
