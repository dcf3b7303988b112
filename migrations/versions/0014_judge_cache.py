"""Outside evidence: LLM-judge request cache and reward-model columns (issue 24).

- `judge_answers`: a judge's answers by the sha256 of the exact request, so a rerun costs no
  request (worker/jobs/judge.py).
- `scores`: the judge's columns (`JUDGE_COLUMNS`), each with the partial sort index every
  non-`indexed` score column has (migration 0012).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 03:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

JUDGE_COLUMNS = (
    "judge_p_chosen",
    "judge_agree_chosen_first",
    "judge_agree_chosen_second",
    "judge_against",
    "judge_confidence",
    "judge_failed_orders",
)


def _add_score_columns(columns: tuple[str, ...]) -> None:
    for column in columns:
        op.add_column("scores", sa.Column(column, sa.Float(), nullable=True))
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(
            f"ix_scores_sort_{column}",
            "scores",
            ["job_id", "split", column, "pair_id"],
            postgresql_where=where,
            sqlite_where=where,
        )


def _drop_score_columns(columns: tuple[str, ...]) -> None:
    for column in columns:
        op.drop_index(f"ix_scores_sort_{column}", table_name="scores")
        op.drop_column("scores", column)


def upgrade() -> None:
    op.create_table(
        "judge_answers",
        sa.Column("key", sa.String(length=64), primary_key=True),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("top_logprobs", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    _add_score_columns(JUDGE_COLUMNS)


def downgrade() -> None:
    _drop_score_columns(JUDGE_COLUMNS)
    op.drop_table("judge_answers")
