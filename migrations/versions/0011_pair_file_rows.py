"""Pairs: the row each pair had in the uploaded file (`file_row`), so numbering survives rows an
upload with on_bad_rows="skip" left out.

Existing pairs get what the API showed until now, their 0-based position + 1 (exact for every
dataset stored without skipped rows; those with skipped rows never kept the file's numbers).
The column is added NOT NULL with a temporary default of 0 so the backfill is one UPDATE on
both databases; Postgres then drops the default. SQLite keeps it (removing a default there means
rebuilding `pairs`, whose FTS triggers and foreign keys a rebuild would lose); nothing relies on
it, since every insert names `file_row`.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pairs", sa.Column("file_row", sa.Integer(), nullable=False, server_default="0"))
    op.execute("UPDATE pairs SET file_row = source_index + 1")
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("pairs", "file_row", server_default=None, existing_type=sa.Integer())
    op.create_index("ix_pairs_dataset_file_row", "pairs", ["dataset_id", "file_row"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_pairs_dataset_file_row", table_name="pairs")
    # In place on SQLite too (ALTER TABLE ... DROP COLUMN, SQLite 3.35+): no batch rebuild,
    # which would drop the FTS triggers on `pairs`.
    op.drop_column("pairs", "file_row")
