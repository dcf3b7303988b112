"""Outside reward models' columns on `scores` (issue 24): one margin slot per reward model an
audit names (rm_margin_1..4, the models' names in the job's metrics), their mean, spread, the
count of models against the label and the ambiguous flag (1 where the models split).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 03:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

COLUMNS = (
    "rm_margin_1",
    "rm_margin_2",
    "rm_margin_3",
    "rm_margin_4",
    "rm_mean",
    "rm_spread",
    "rm_votes_against",
    "rm_ambiguous",
)


def upgrade() -> None:
    # Added to the partitioned parent on Postgres: every job's partition gets the columns.
    for column in COLUMNS:
        op.add_column("scores", sa.Column(column, sa.Float(), nullable=True))
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(
            f"ix_scores_sort_{column}",
            "scores",
            ["job_id", "split", column, "pair_id"],
            postgresql_where=where,
            sqlite_where=where,
        )


def downgrade() -> None:
    for column in COLUMNS:
        op.drop_index(f"ix_scores_sort_{column}", table_name="scores")
    with op.batch_alter_table("scores") as batch:
        for column in COLUMNS:
            batch.drop_column(column)
