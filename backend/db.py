"""Database engine and sessions (SQLAlchemy 2, synchronous), shared by the API and the worker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from alembic.config import Config
from sqlalchemy import JSON, Engine, create_engine, event, insert, text
from sqlalchemy.orm import Session, sessionmaker

from backend.settings import REPO_ROOT, get_settings


@lru_cache
def get_engine() -> Engine:
    settings = get_settings()
    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # WAL lets the API read while the worker writes; foreign keys are off by default.
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    engine = create_engine(url, pool_pre_ping=True)

    @event.listens_for(engine, "connect")
    def _postgres_settings(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        # Hashes may take HASH_MEM_MULTIPLIER x work_mem (64 MB at the default 4 MB) before
        # they spill or, for a subplan, before the planner gives up hashing it: the "no review
        # state" filters hash a dataset's review rows (backend/services/review_states.py).
        cursor = dbapi_conn.cursor()
        cursor.execute(f"SET hash_mem_multiplier = {HASH_MEM_MULTIPLIER}")
        cursor.close()
        dbapi_conn.commit()

    return engine


HASH_MEM_MULTIPLIER = 16
"""Postgres's hash_mem_multiplier for the app's connections (its default is 2)."""


@lru_cache
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


def get_db() -> Iterator[Session]:
    """FastAPI dependency: one session per request."""
    with get_sessionmaker()() as session:
        yield session


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits on success and rolls back on error (worker and CLI)."""
    with get_sessionmaker()() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def insert_rows(session: Session, model: Any, rows: list[dict]) -> None:
    """Insert many rows sharing one set of keys: Postgres COPY (several times an INSERT's rate)
    inside the session's transaction, a multi-row INSERT elsewhere."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert(model), rows)
        return
    table = model.__table__
    keys = list(rows[0])
    columns = [table.c[model.__mapper__.attrs[key].columns[0].key] for key in keys]
    as_json = [k for k, c in enumerate(columns) if isinstance(c.type, JSON)]
    names = ", ".join(f'"{c.name}"' for c in columns)
    raw = session.connection().connection.driver_connection
    assert raw is not None  # a live connection inside the session's transaction
    encode = json.JSONEncoder().encode
    with raw.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            values = [row.get(k) for k in keys]
            for k in as_json:
                if values[k] is not None:
                    values[k] = encode(values[k])
            copy.write_row(values)


def upsert(session: Session, model: Any, rows: list[dict] | dict, keys: list[str]) -> Any:
    """INSERT … ON CONFLICT (keys) DO UPDATE every other given column, for Postgres or SQLite:
    one statement, so concurrent writers of a row never interleave (the last one wins whole)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    statement = insert(model).values(rows)
    first = rows[0] if isinstance(rows, list) else rows
    return statement.on_conflict_do_update(
        index_elements=keys,
        set_={name: statement.excluded[name] for name in first if name not in keys},
    )


def alembic_config() -> Config:
    """Alembic pointed at our migrations and at the configured database."""
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", get_settings().sqlalchemy_url.replace("%", "%%"))
    return config


ANALYZE_AFTER = 1000
"""Writes of at least this many rows refresh the table's planner statistics at once."""


def refresh_planner_stats(
    session: Session, table: str, written: int, *, vacuum: bool = False
) -> None:
    """ANALYZE `table` after a large write (Postgres): the pairs list's estimated totals (above
    10,000) and its plans come from these statistics, and autovacuum may be late or off, so a
    big upload would otherwise be planned, and counted, as the few rows the table once held.

    `vacuum` (the session's work committed first): VACUUM (ANALYZE) instead, which also marks
    the written pages all-visible, so that index-only scans stay index-only (the review-state
    filters read a dataset's review rows from their index: 44 ms with a heap visit per row
    after a bulk flag of 100,000 pairs, 31 ms without). It reads only the pages not already
    all-visible, and skips the table rather than wait when another vacuum holds it."""
    if written < ANALYZE_AFTER or session.get_bind().dialect.name != "postgresql":
        return
    if not vacuum:
        session.execute(text(f"ANALYZE {table}"))
        session.commit()
        return
    session.commit()
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f"VACUUM (ANALYZE, SKIP_LOCKED) {table}"))
