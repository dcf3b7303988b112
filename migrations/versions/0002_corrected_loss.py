"""Scores: harm_corrected_loss (z(loss) + z(self-influence), the memorisation-corrected loss).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 21:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("scores", sa.Column("harm_corrected_loss", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scores") as batch:
        batch.drop_column("harm_corrected_loss")
