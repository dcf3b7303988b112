"""Scores keyed by (job, pair), partitioned by job on Postgres; no foreign key on pair_id.

- The surrogate `id` goes: (job_id, pair_id) was already unique and is now the primary key.
- On Postgres `scores` becomes a LIST-partitioned table on `job_id`, one partition per job
  (`scores_job_<id>`), so a finished audit's rows are bulk-loaded into a table of their own and
  attached (`backend.services.scores`). Existing rows move into their jobs' partitions.
- `pair_id` loses its foreign key and its index: a job's rows are written for its dataset's pairs
  only and are deleted with the job. The (job, pair) key serves every lookup.
SQLite keeps a plain table with the same columns and keys.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 00:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

INDEXED_SORTS = ("harm", "loss", "harm_gradient_similarity", "harm_influence")
FLOATS = (
    "harm",
    "loss",
    "margin",
    "harm_loss",
    "harm_gradient_similarity",
    "harm_gradient_cosine",
    "harm_influence",
    "removal_effect_influence",
    "harm_datainf",
    "removal_effect_datainf",
    "harm_self_influence",
    "harm_tracin",
    "harm_corrected_loss",
    "harm_length",
    "harm_oof_loss",
    "oof_margin",
    "harm_ensemble",
    "ensemble_disagreement",
    "harm_group",
    "group_order",
    "group_gain",
)
COLUMNS = ", ".join(("job_id", "pair_id", "split", *FLOATS))


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _floats() -> list[sa.Column]:
    return [sa.Column(name, sa.Float(), nullable=True) for name in FLOATS]


def _sort_indexes(table: str) -> None:
    for column in INDEXED_SORTS:
        op.create_index(f"ix_scores_sort_{column}", table, ["job_id", "split", column, "pair_id"])


def _drop_sort_indexes(table: str) -> None:
    for column in INDEXED_SORTS:
        op.drop_index(f"ix_scores_sort_{column}", table_name=table)


def upgrade() -> None:
    op.rename_table("scores", "scores_old")
    _drop_sort_indexes("scores_old")
    op.drop_index("ix_scores_pair_id", table_name="scores_old")
    if _postgres():  # constraint indexes are named in the schema's one namespace
        op.execute("ALTER TABLE scores_old DROP CONSTRAINT scores_pkey")
        op.execute("ALTER TABLE scores_old DROP CONSTRAINT scores_job_id_pair_id_key")
    op.create_table(
        "scores",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("split", sa.String(length=8), nullable=False),
        *_floats(),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "pair_id"),
        postgresql_partition_by="LIST (job_id)",
    )
    _sort_indexes("scores")
    if _postgres():
        jobs = op.get_bind().execute(sa.text("SELECT DISTINCT job_id FROM scores_old")).scalars()
        for job_id in jobs:
            op.execute(f"CREATE TABLE scores_job_{job_id} PARTITION OF scores FOR VALUES IN ({job_id})")
    op.execute(f"INSERT INTO scores ({COLUMNS}) SELECT {COLUMNS} FROM scores_old")
    op.drop_table("scores_old")


def downgrade() -> None:
    op.rename_table("scores", "scores_by_job")
    _drop_sort_indexes("scores_by_job")
    if _postgres():
        op.execute("ALTER TABLE scores_by_job DROP CONSTRAINT scores_pkey")
    op.create_table(
        "scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("split", sa.String(length=8), nullable=False),
        *_floats(),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["pair_id"], ["pairs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id", "pair_id"),
    )
    op.create_index("ix_scores_pair_id", "scores", ["pair_id"])
    _sort_indexes("scores")
    op.execute(f"INSERT INTO scores ({COLUMNS}) SELECT {COLUMNS} FROM scores_by_job")
    op.drop_table("scores_by_job")  # on Postgres its partitions go with it
