"""Review states, their history, text search and lengths for the reviewer's query API.

- flags: `flagged` becomes `state` (unreviewed | kept | flagged | swapped) and gains `dataset_id`,
  so a dataset's decisions are found without scanning every dataset's flags.
- review_actions / review_events: the append-only history. One action per request (a single
  pair's decision, a bulk action on a filter, an undo); one event per pair it changed, holding the
  state and note before and after, so an undo restores them exactly.
- pairs: prompt/chosen/rejected lengths in characters (filters and the length sort).
- text search: on Postgres a `pair_search` table (a tsvector per pair, GIN-indexed) that is
  filled after an upload is stored (`datasets.search_ready` says when it is done); on SQLite an
  FTS5 table kept by triggers.
- scores: (job, split, column, pair) indexes for the keyset-paginated sorts.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 19:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

INDEXED_SORTS = ("harm", "loss", "harm_gradient_similarity", "harm_influence")
PG_SEARCH = [
    "CREATE TABLE pair_search (pair_id integer PRIMARY KEY REFERENCES pairs (id) ON DELETE "
    "CASCADE, dataset_id integer NOT NULL, tsv tsvector NOT NULL)",
    "CREATE INDEX ix_pair_search_tsv ON pair_search USING gin (tsv)",
    "CREATE INDEX ix_pair_search_dataset ON pair_search (dataset_id)",
    "INSERT INTO pair_search (pair_id, dataset_id, tsv) SELECT id, dataset_id, "
    "to_tsvector('simple', prompt || ' ' || chosen || ' ' || rejected) FROM pairs",
]

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE pairs_fts USING fts5("
    "prompt, chosen, rejected, content='pairs', content_rowid='id')",
    "CREATE TRIGGER pairs_fts_insert AFTER INSERT ON pairs BEGIN "
    "INSERT INTO pairs_fts(rowid, prompt, chosen, rejected) "
    "VALUES (new.id, new.prompt, new.chosen, new.rejected); END",
    "CREATE TRIGGER pairs_fts_delete AFTER DELETE ON pairs BEGIN "
    "INSERT INTO pairs_fts(pairs_fts, rowid, prompt, chosen, rejected) "
    "VALUES ('delete', old.id, old.prompt, old.chosen, old.rejected); END",
    "CREATE TRIGGER pairs_fts_update AFTER UPDATE ON pairs BEGIN "
    "INSERT INTO pairs_fts(pairs_fts, rowid, prompt, chosen, rejected) "
    "VALUES ('delete', old.id, old.prompt, old.chosen, old.rejected); "
    "INSERT INTO pairs_fts(rowid, prompt, chosen, rejected) "
    "VALUES (new.id, new.prompt, new.chosen, new.rejected); END",
    "INSERT INTO pairs_fts(pairs_fts) VALUES ('rebuild')",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table("flags") as batch:
        batch.add_column(
            sa.Column("state", sa.String(16), nullable=False, server_default="flagged")
        )
        batch.add_column(sa.Column("dataset_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE flags SET state = CASE WHEN flagged THEN 'flagged' ELSE 'unreviewed' END, "
        "dataset_id = (SELECT pairs.dataset_id FROM pairs WHERE pairs.id = flags.pair_id)"
    )
    with op.batch_alter_table("flags") as batch:
        batch.drop_column("flagged")
        # No foreign key: a flag goes with its pair (pair_id's cascade), and a bulk action of
        # 100,000 pairs would pay one more key check per row.
        batch.alter_column("dataset_id", existing_type=sa.Integer(), nullable=False)
    op.create_index("ix_flags_dataset_state", "flags", ["dataset_id", "state"])

    op.create_table(
        "review_actions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "dataset_id",
            sa.Integer(),
            sa.ForeignKey("datasets.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("filter", sa.JSON(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("undoes", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_review_actions_dataset_id", "review_actions", ["dataset_id", "id"])
    op.create_table(
        "review_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "action_id",
            sa.Integer(),
            sa.ForeignKey("review_actions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        # No foreign key to pairs: events go with their action (and it with its dataset); pairs
        # are only ever deleted with their dataset, and the key check per row doubled a bulk
        # action's time.
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("old_state", sa.String(16), nullable=False),
        sa.Column("old_note", sa.Text(), nullable=True),
        sa.Column("new_state", sa.String(16), nullable=False),
        sa.Column("new_note", sa.Text(), nullable=True),
    )
    op.create_index("ix_review_events_action_id", "review_events", ["action_id"])
    op.create_index("ix_review_events_pair_id", "review_events", ["pair_id"])

    for name in ("prompt_chars", "chosen_chars", "rejected_chars"):
        op.add_column("pairs", sa.Column(name, sa.Integer(), nullable=True))
    op.execute(
        "UPDATE pairs SET prompt_chars = length(prompt), chosen_chars = length(chosen), "
        "rejected_chars = length(rejected)"
    )

    op.create_table(
        "score_stats",
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("jobs.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("quantiles", sa.JSON(), nullable=True),
    )

    op.drop_index("ix_scores_job_split_harm", table_name="scores")
    for column in INDEXED_SORTS:
        op.create_index(f"ix_scores_sort_{column}", "scores", ["job_id", "split", column, "pair_id"])

    # Existing datasets are indexed here, so every one is searchable.
    op.add_column(
        "datasets",
        sa.Column("search_ready", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    for statement in PG_SEARCH if dialect == "postgresql" else SQLITE_FTS:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TABLE IF EXISTS pair_search")
    elif dialect == "sqlite":
        for name in ("pairs_fts_insert", "pairs_fts_delete", "pairs_fts_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS pairs_fts")
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("search_ready")
    for column in INDEXED_SORTS:
        op.drop_index(f"ix_scores_sort_{column}", table_name="scores")
    op.create_index("ix_scores_job_split_harm", "scores", ["job_id", "split", "harm"])
    op.drop_table("score_stats")
    with op.batch_alter_table("pairs") as batch:
        for name in ("prompt_chars", "chosen_chars", "rejected_chars"):
            batch.drop_column(name)
    op.drop_index("ix_review_events_pair_id", table_name="review_events")
    op.drop_index("ix_review_events_action_id", table_name="review_events")
    op.drop_table("review_events")
    op.drop_index("ix_review_actions_dataset_id", table_name="review_actions")
    op.drop_table("review_actions")
    op.drop_index("ix_flags_dataset_state", table_name="flags")
    with op.batch_alter_table("flags") as batch:
        batch.add_column(sa.Column("flagged", sa.Boolean(), nullable=False, server_default="1"))
    op.execute("UPDATE flags SET flagged = (state = 'flagged')")
    with op.batch_alter_table("flags") as batch:
        batch.drop_column("dataset_id")
        batch.drop_column("state")
