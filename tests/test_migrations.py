"""The Alembic migrations build exactly the models' schema, on SQLite and on Postgres."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from backend.db import alembic_config
from backend.models import Base, in_models

TABLES = {
    "users",
    "api_tokens",
    "datasets",
    "pairs",
    "jobs",
    "scores",
    "flags",
    "review_actions",
    "review_events",
    "score_stats",
}


def test_sqlite(tmp_path) -> None:
    _upgrade_downgrade_in_schema(f"sqlite:///{tmp_path / 'm.db'}", None)


def test_postgres(database: str) -> None:
    from sqlalchemy import text

    engine = create_engine(database)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS migration_check CASCADE"))
        connection.execute(text("CREATE SCHEMA migration_check"))
    try:
        _upgrade_downgrade_in_schema(database, "migration_check")
    finally:
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA migration_check CASCADE"))


def _upgrade_downgrade_in_schema(url: str, schema: str | None) -> None:
    connect_args = {"options": f"-csearch_path={schema}"} if schema else {}
    engine = create_engine(url, connect_args=connect_args)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        config.attributes["configure_logger"] = False
        command.upgrade(config, "head")
        assert set(inspect(connection).get_table_names(schema=schema)) >= TABLES
        context = MigrationContext.configure(connection, opts={"include_name": in_models})
        diff = compare_metadata(context, Base.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
        command.downgrade(config, "base")
        assert not TABLES & set(inspect(connection).get_table_names(schema=schema))


def test_score_columns_match_the_engine() -> None:
    from backend.models import Score
    from worker.influence.columns import SCORE_COLUMNS

    assert set(SCORE_COLUMNS) <= set(Score.__table__.columns.keys())


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
