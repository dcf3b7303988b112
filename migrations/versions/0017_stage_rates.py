"""Measured stage rates: a job's stage start times and fractions, for the ETA (issue 22).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 03:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("timing", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "timing")
