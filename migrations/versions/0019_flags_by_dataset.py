"""Review states go with their dataset, not through a key check on each pair (issue 23).

`flags.pair_id` loses its foreign key to `pairs`: checking it locks every flagged pair's row
(FOR KEY SHARE, which writes to the pair's tuple), and a bulk flag of 100,000 pairs spent 5.6 of
its 13.4 s doing that. `flags.dataset_id` gets one instead (ON DELETE CASCADE), so a deleted
dataset still takes its review states with it; its check reads the one dataset row, cheaply
(the pairs written for a flag are the dataset's own, which the service guarantees).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 06:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# SQLite's keys of 0001 have no name: a naming convention gives them one to drop by.
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
PAIR_KEY = {"postgresql": "flags_pair_id_fkey", "sqlite": "fk_flags_pair_id_pairs"}
DATASET_KEY = "flags_dataset_id_fkey"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table("flags", naming_convention=NAMING) as batch:
        batch.drop_constraint(PAIR_KEY.get(dialect, PAIR_KEY["postgresql"]), type_="foreignkey")
        batch.create_foreign_key(
            DATASET_KEY, "datasets", ["dataset_id"], ["id"], ondelete="CASCADE"
        )


def downgrade() -> None:
    # Review states of pairs that no longer exist cannot be keyed to them again.
    op.execute("DELETE FROM flags WHERE pair_id NOT IN (SELECT id FROM pairs)")
    with op.batch_alter_table("flags", naming_convention=NAMING) as batch:
        batch.drop_constraint(DATASET_KEY, type_="foreignkey")
        batch.create_foreign_key(
            "flags_pair_id_fkey", "pairs", ["pair_id"], ["id"], ondelete="CASCADE"
        )
