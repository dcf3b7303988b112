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


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_scores_move_into_their_jobs_partitions_and_back(backend, database, tmp_path) -> None:
    """0009 keeps every score row (on Postgres in its job's own partition); its downgrade too."""
    from sqlalchemy import text

    schema = "migration_data" if backend == "postgres" else None
    url = database if backend == "postgres" else f"sqlite:///{tmp_path / 'd.db'}"
    if schema:
        with create_engine(url).begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            connection.execute(text(f"CREATE SCHEMA {schema}"))
    engine = create_engine(
        url, connect_args={"options": f"-csearch_path={schema}"} if schema else {}
    )
    config = alembic_config()
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            config.attributes["configure_logger"] = False
            command.upgrade(config, "0008")
            for sql in (
                "INSERT INTO users (id, username, password_hash, is_admin, created_at) "
                "VALUES (1, 'u', 'x', false, CURRENT_TIMESTAMP)",
                "INSERT INTO datasets (id, owner_id, name, filename, format, schema_kind, n_pairs, "
                "sha256, original_path, created_at) VALUES (1, 1, 'd', 'd.jsonl', 'jsonl', 'pcr', "
                "3, 'x', '/x', CURRENT_TIMESTAMP)",
                *(
                    f"INSERT INTO pairs (id, dataset_id, source_index, prompt, chosen, rejected, "
                    f"metadata) VALUES ({i}, 1, {i}, 'p', 'c', 'r', '{{}}')"
                    for i in (1, 2, 3)
                ),
                *(
                    f"INSERT INTO jobs (id, dataset_id, owner_id, kind, config, status, progress, "
                    f"created_at) VALUES ({j}, 1, 1, 'audit', '{{}}', 'succeeded', 1, "
                    f"CURRENT_TIMESTAMP)"
                    for j in (7, 9)
                ),
                "INSERT INTO scores (job_id, pair_id, split, harm) VALUES (7, 1, 'train', 0.5), "
                "(7, 2, 'val', NULL), (9, 1, 'train', -1.0), (9, 3, 'train', 2.0)",
            ):
                connection.execute(text(sql))
            command.upgrade(config, "head")
            rows = "SELECT job_id, pair_id, split, harm FROM scores ORDER BY job_id, pair_id"
            expected = [(7, 1, "train", 0.5), (7, 2, "val", None), (9, 1, "train", -1.0),
                        (9, 3, "train", 2.0)]  # fmt: skip
            assert [tuple(r) for r in connection.execute(text(rows))] == expected
            if schema:
                assert connection.scalar(text("SELECT count(*) FROM scores_job_9")) == 2
            command.downgrade(config, "0008")
            assert [tuple(r) for r in connection.execute(text(rows))] == expected
            command.downgrade(config, "base")
    finally:
        if schema:
            with create_engine(url).begin() as connection:
                connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_file_rows_are_backfilled_and_search_still_indexes_new_pairs(
    backend, database, tmp_path
) -> None:
    """0011 gives existing pairs their old numbering (position + 1) as `file_row`; on SQLite
    the FTS triggers on `pairs` survive it (no table rebuild), and its downgrade keeps the pairs."""
    from sqlalchemy import text

    schema = "migration_rows" if backend == "postgres" else None
    url = database if backend == "postgres" else f"sqlite:///{tmp_path / 'r.db'}"
    if schema:
        with create_engine(url).begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            connection.execute(text(f"CREATE SCHEMA {schema}"))
    engine = create_engine(
        url, connect_args={"options": f"-csearch_path={schema}"} if schema else {}
    )
    config = alembic_config()
    rows = "SELECT source_index, file_row FROM pairs ORDER BY source_index"
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            config.attributes["configure_logger"] = False
            command.upgrade(config, "0010")
            for sql in (
                "INSERT INTO users (id, username, password_hash, is_admin, created_at) "
                "VALUES (1, 'u', 'x', false, CURRENT_TIMESTAMP)",
                "INSERT INTO datasets (id, owner_id, name, filename, format, schema_kind, n_pairs, "
                "sha256, original_path, created_at) VALUES (1, 1, 'd', 'd.jsonl', 'jsonl', 'pcr', "
                "3, 'x', '/x', CURRENT_TIMESTAMP)",
                *(
                    f"INSERT INTO pairs (id, dataset_id, source_index, prompt, chosen, rejected, "
                    f"metadata) VALUES ({i + 1}, 1, {i}, 'p', 'c', 'r', '{{}}')"
                    for i in (0, 1, 2)
                ),
            ):
                connection.execute(text(sql))
            command.upgrade(config, "head")
            assert [tuple(r) for r in connection.execute(text(rows))] == [(0, 1), (1, 2), (2, 3)]
            connection.execute(
                text(
                    "INSERT INTO pairs (id, dataset_id, source_index, file_row, prompt, chosen, "
                    "rejected, metadata) VALUES (4, 1, 3, 6, 'durian', 'c', 'r', '{}')"
                )
            )
            if backend == "sqlite":
                found = "SELECT rowid FROM pairs_fts WHERE pairs_fts MATCH 'durian'"
                assert connection.scalar(text(found)) == 4
            command.downgrade(config, "0010")
            ids = connection.execute(text("SELECT id FROM pairs ORDER BY id")).scalars().all()
            assert ids == [1, 2, 3, 4]
            assert "file_row" not in {c["name"] for c in inspect(connection).get_columns("pairs")}
            command.downgrade(config, "base")
    finally:
        if schema:
            with create_engine(url).begin() as connection:
                connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
