"""Exact data checks: per-pair tags computed at upload and audit (issue 24).

`pair_tags` holds one row per (pair, tag[, audit job]) with an optional number; the index on
(dataset, tag, pair) serves the pairs list's `tag=` filter and the dataset summary's counts.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 03:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pair_tags",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "pair_id",
            sa.Integer(),
            sa.ForeignKey("pairs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(32), nullable=False),
        sa.Column(
            "job_id", sa.Integer(), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=True
        ),
        sa.Column("value", sa.Float(), nullable=True),
    )
    op.create_index("ix_pair_tags_pair_id", "pair_tags", ["pair_id"])
    op.create_index("ix_pair_tags_job_id", "pair_tags", ["job_id"])
    op.create_index("ix_pair_tags_dataset_tag", "pair_tags", ["dataset_id", "tag", "pair_id"])


def downgrade() -> None:
    op.drop_index("ix_pair_tags_dataset_tag", table_name="pair_tags")
    op.drop_index("ix_pair_tags_job_id", table_name="pair_tags")
    op.drop_index("ix_pair_tags_pair_id", table_name="pair_tags")
    op.drop_table("pair_tags")
