"""Target sets: small sets of pairs showing a wanted behaviour, for targeted audits (issue 20).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 03:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "target_sets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "dataset_id",
            sa.Integer(),
            sa.ForeignKey("datasets.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "owner_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("n_pairs", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_target_sets_dataset_id", "target_sets", ["dataset_id"])
    op.create_table(
        "target_pairs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "target_set_id",
            sa.Integer(),
            sa.ForeignKey("target_sets.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("chosen", sa.Text(), nullable=False),
        sa.Column("rejected", sa.Text(), nullable=False),
    )
    op.create_index("ix_target_pairs_target_set_id", "target_pairs", ["target_set_id"])


def downgrade() -> None:
    op.drop_index("ix_target_pairs_target_set_id", table_name="target_pairs")
    op.drop_table("target_pairs")
    op.drop_index("ix_target_sets_dataset_id", table_name="target_sets")
    op.drop_table("target_sets")
