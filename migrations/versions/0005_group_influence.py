"""Group influence: greedy order and gain columns, and the strongest interactions per pair.

harm_group (higher = removed earlier by interaction-aware greedy pruning), group_order (1 = first
removed; null outside the candidate set), group_gain (the predicted change of validation loss the
greedy step adds); `interactions` keeps each candidate's strongest κ(i, j) partners.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = ("harm_group", "group_order", "group_gain")


def upgrade() -> None:
    for column in COLUMNS:
        op.add_column("scores", sa.Column(column, sa.Float(), nullable=True))
    op.create_table(
        "interactions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "job_id", sa.Integer(), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "pair_id", sa.Integer(), sa.ForeignKey("pairs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "other_id", sa.Integer(), sa.ForeignKey("pairs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("kappa", sa.Float(), nullable=False),
        sa.UniqueConstraint("job_id", "pair_id", "other_id"),
    )
    op.create_index("ix_interactions_other_id", "interactions", ["other_id"])


def downgrade() -> None:
    op.drop_index("ix_interactions_other_id", table_name="interactions")
    op.drop_table("interactions")
    with op.batch_alter_table("scores") as batch:
        for column in COLUMNS:
            batch.drop_column(column)
