"""Scores: the length baseline, cross-fitted loss and ensemble columns.

harm_length (the validation-oriented length heuristic), harm_oof_loss and oof_margin (K-fold
out-of-fold BT loss and margin), harm_ensemble and ensemble_disagreement (the fold models' mean
margin, negated, and its spread).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = ("harm_length", "harm_oof_loss", "oof_margin", "harm_ensemble", "ensemble_disagreement")


def upgrade() -> None:
    for column in COLUMNS:
        op.add_column("scores", sa.Column(column, sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scores") as batch:
        for column in COLUMNS:
            batch.drop_column(column)
