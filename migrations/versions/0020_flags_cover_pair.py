"""The review-state index covers the pair id (issue 23).

A page filtered to pairs without a review state ("unreviewed", "not flagged") after a bulk flag
of the most harmful 100,000 pairs walked ~55,000 flagged rows at the top of the harm order and
probed `flags` for each (108 ms). On Postgres the filter now reads the dataset's review rows in
the excluded states once, into a hash (backend/services/review_states.py): from this index alone, with
the pair id in it, that read is an index-only scan.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 14:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_flags_dataset_state", table_name="flags")
    op.create_index(
        "ix_flags_dataset_state",
        "flags",
        ["dataset_id", "state"],
        postgresql_include=["pair_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_flags_dataset_state", table_name="flags")
    op.create_index("ix_flags_dataset_state", "flags", ["dataset_id", "state"])
