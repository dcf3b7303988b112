"""Data plane: an index for every sortable column the review offers (issue 23).

- `scores`: every score column without a sort index so far gets one, partial (`WHERE <column>
  IS NOT NULL`): a keyset page sorted by any column reads its (job, split, column, pair) index at
  any depth, and a job that does not compute a column pays only for an empty index. On Postgres an
  index on the partitioned table is built on every job's partition.
- `pairs`: (dataset, total length, id) for the sort by length (an expression index; the query
  writes the same `prompt_chars + chosen_chars + rejected_chars`).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 03:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# The score columns of 0009 that had no sort index (the four indexed ones keep theirs).
PARTIAL = (
    "margin",
    "harm_loss",
    "harm_gradient_cosine",
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
LENGTH = "(prompt_chars + chosen_chars + rejected_chars)"


def upgrade() -> None:
    for column in PARTIAL:
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(
            f"ix_scores_sort_{column}",
            "scores",
            ["job_id", "split", column, "pair_id"],
            postgresql_where=where,
            sqlite_where=where,
        )
    op.create_index("ix_pairs_dataset_length", "pairs", ["dataset_id", sa.text(LENGTH), "id"])


def downgrade() -> None:
    op.drop_index("ix_pairs_dataset_length", table_name="pairs")
    for column in PARTIAL:
        op.drop_index(f"ix_scores_sort_{column}", table_name="scores")
