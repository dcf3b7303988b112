"""Database tables: users, hashed API tokens, datasets, pairs, jobs, per-pair scores and flags."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    InstrumentedAttribute,
    Mapped,
    mapped_column,
    relationship,
)
from sqlalchemy.orm.decl_api import DeclarativeAttributeIntercept

from worker.influence.methods import INDEXED_COLUMNS, SCORE_COLUMN_SPECS, ColumnSpec

INDEXED_SORTS: tuple[str, ...] = INDEXED_COLUMNS
"""Score columns with a full (job, split, column, pair) index (the registry's `indexed`). Every
other score column has the same index, partial (`WHERE <column> IS NOT NULL`, migration 0012):
every sort's keyset pages cost the same at any depth, and a job without a column pays for an
empty index only."""

LENGTH_SQL = "(prompt_chars + chosen_chars + rejected_chars)"
"""A pair's total length as the sort by length writes it (ix_pairs_dataset_length's expression)."""


def partial_sort_where(column: str) -> Any:
    """The predicate of a non-`indexed` score column's partial sort index."""
    return text(f"{column} IS NOT NULL")


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time stored here is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    # SHA-256 of the token: the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    # None: never expires (tokens made before expiry existed, or asked for explicitly).
    expires_at: Mapped[datetime | None] = mapped_column(default=None)

    user: Mapped[User] = relationship()


class UserSecret(Base):
    """A secret of one user (the LLM judge's API key), encrypted at rest with a key derived from
    the server's `secret_key` (backend/storage/secrets.py); never returned by the API nor copied
    into a job's config (migration 0018)."""

    __tablename__ = "user_secrets"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_user_secrets_user_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    ciphertext: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoginFailure(Base):
    """Consecutive failed logins of one username, and until when it is locked out."""

    __tablename__ = "login_failures"

    username: Mapped[str] = mapped_column(String(128), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    last_failure_at: Mapped[datetime | None] = mapped_column(default=None)


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(256))
    filename: Mapped[str] = mapped_column(String(512))
    format: Mapped[str] = mapped_column(String(16))
    schema_kind: Mapped[str] = mapped_column(String(32))
    n_pairs: Mapped[int] = mapped_column(Integer)
    # Rows of the file left out by an upload with on_bad_rows="skip".
    n_skipped: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sha256: Mapped[str] = mapped_column(String(64))
    original_path: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Text search works once this is true (backend/services/search.py).
    search_ready: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class DatasetShare(Base):
    """Another user's access to a dataset: `viewer` (read, export) or `reviewer` (also flag,
    keep, swap, note). The owner has every right; without a row a user does not see it."""

    __tablename__ = "dataset_shares"

    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship()


class Pair(Base):
    __tablename__ = "pairs"
    __table_args__ = (
        UniqueConstraint("dataset_id", "source_index"),
        # The pairs list's sort by row (keyset pages) and the export's file order.
        Index("ix_pairs_dataset_file_row", "dataset_id", "file_row", unique=True),
        # The sort by length (keyset pages at any depth; migration 0012).
        Index("ix_pairs_dataset_length", "dataset_id", text(LENGTH_SQL), "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    # 0-based position among the dataset's stored pairs (skipped rows leave no gap): the
    # order the engine reads them in.
    source_index: Mapped[int] = mapped_column(Integer)
    # 1-based row of the uploaded file, numbered as upload errors name rows (the line of a
    # JSONL / CSV / TSV file, a CSV header being line 1; the record's number in a JSON array,
    # Parquet or Arrow file). A skipped row leaves its number out. Increases with source_index.
    file_row: Mapped[int] = mapped_column(Integer)
    prompt: Mapped[str] = mapped_column(Text)
    chosen: Mapped[str] = mapped_column(Text)
    rejected: Mapped[str] = mapped_column(Text)
    # Extra columns of the uploaded row, written back on export.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    # Lengths in characters, for the length filters and sort (filled at ingest).
    prompt_chars: Mapped[int | None] = mapped_column(Integer, default=None)
    chosen_chars: Mapped[int | None] = mapped_column(Integer, default=None)
    rejected_chars: Mapped[int | None] = mapped_column(Integer, default=None)

    flag: Mapped[Flag | None] = relationship(
        back_populates="pair", uselist=False, primaryjoin="Pair.id == foreign(Flag.pair_id)"
    )


class PairTag(Base):
    """One exact check's finding on a pair (the tags of `worker.influence.tags`): computed at
    upload (`job_id` null), against an evaluation set (null too) or by an audit (its job: checks
    that need the job's tokenizer and max_length). `value` is the tag's number, if it has one."""

    __tablename__ = "pair_tags"
    __table_args__ = (
        # The pairs list's `tag=` filter and the summary's counts: per dataset, per tag.
        Index("ix_pair_tags_dataset_tag", "dataset_id", "tag", "pair_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id", ondelete="CASCADE"), index=True)
    # No foreign key (tags go with their pair): one key check less per row of an upload.
    dataset_id: Mapped[int] = mapped_column(Integer)
    tag: Mapped[str] = mapped_column(String(32))
    job_id: Mapped[int | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), default=None, index=True
    )
    value: Mapped[float | None] = mapped_column(Float, default=None)


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    # queued -> running -> succeeded | failed | cancelled
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    stage: Mapped[str | None] = mapped_column(String(64), default=None)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    task_id: Mapped[str | None] = mapped_column(String(64), default=None)
    # Times the reaper re-dispatched the job after a lost worker or broker; capped by settings.
    resumes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Stage start times and measured fractions, for the ETA (backend/storage/eta.py; 0015).
    timing: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class JobTask(Base):
    """One task of a sharded job (training, one gradient shard, the reduction, ...).

    The row is the task's claim and heartbeat: a delivery of the task's message takes it over only
    when the row is not running, or its heartbeat is stale, or its owner process is gone. Stage
    progress and the job's ETA are aggregated over these rows.
    """

    __tablename__ = "job_tasks"
    __table_args__ = (UniqueConstraint("job_id", "stage", "shard"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(32))
    shard: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    pairs: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    owner: Mapped[str | None] = mapped_column(String(128), default=None)  # host:pid
    celery_id: Mapped[str | None] = mapped_column(String(64), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    seconds: Mapped[float | None] = mapped_column(Float, default=None)
    peak_rss_mb: Mapped[float | None] = mapped_column(Float, default=None)


def score_table(metadata: MetaData, columns: Sequence[ColumnSpec] = SCORE_COLUMN_SPECS) -> Table:
    """The `scores` table: (job, pair, split) and one nullable float per registry column, with a
    sort index per column (partial where the registry does not mark it `indexed`); partitioned by
    job on Postgres. Built from the registry (worker/influence/methods.py), the one place score
    columns are named."""
    return Table(
        "scores",
        metadata,
        Column(
            "job_id",
            Integer,
            ForeignKey("jobs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column("pair_id", Integer, primary_key=True),
        Column("split", String(8), nullable=False),  # "train" | "val"
        *(Column(c.name, Float, nullable=True, default=None) for c in columns),
        *(
            Index(f"ix_scores_sort_{c.name}", "job_id", "split", c.name, "pair_id")
            for c in columns
            if c.indexed
        ),
        *(
            Index(
                f"ix_scores_sort_{c.name}",
                "job_id",
                "split",
                c.name,
                "pair_id",
                postgresql_where=partial_sort_where(c.name),
                sqlite_where=partial_sort_where(c.name),
            )
            for c in columns
            if not c.indexed
        ),
        postgresql_partition_by="LIST (job_id)",
    )


if TYPE_CHECKING:

    class _ScoreColumns(DeclarativeAttributeIntercept):
        """For type checkers only: `Score.<column>` of the registry's columns."""

        def __getattr__(cls, name: str) -> InstrumentedAttribute[float | None]: ...

else:
    _ScoreColumns = type(Base)


class Score(Base, metaclass=_ScoreColumns):
    """One row per (job, pair). Training pairs carry the scores; validation pairs only `split`.

    The score columns (`harm`, `loss`, `harm_influence`, ...) come from the method registry
    through `score_table`. On Postgres the table is partitioned by job (one `scores_job_<id>` per
    job, see `backend.services.scores`); `pair_id` has no foreign key (the rows of a job are
    written for its dataset's pairs only, and go with the job)."""

    __table__ = score_table(Base.metadata)

    job_id: Mapped[int]
    pair_id: Mapped[int]
    split: Mapped[str]

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> float | None: ...


class Interaction(Base):
    """One of a candidate pair's strongest interactions in a `group` audit: κ(i, j) =
    Δθ_iᵀ H_val Δθ_j (> 0 redundant: removing both does less than the sum; < 0 complementary)."""

    __tablename__ = "interactions"
    __table_args__ = (UniqueConstraint("job_id", "pair_id", "other_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id", ondelete="CASCADE"))
    other_id: Mapped[int] = mapped_column(ForeignKey("pairs.id", ondelete="CASCADE"), index=True)
    kappa: Mapped[float] = mapped_column(Float)


REVIEW_STATES = ("unreviewed", "kept", "flagged", "swapped")
"""A pair's review decision: flagged pairs leave the export; swapped ones are exported with
chosen and rejected exchanged (the stored pair keeps the original); kept ones are protected
from bulk actions unless those are asked to override them."""


class Flag(Base):
    """A pair's review state and note (the table keeps its first name, `flags`). A pair without
    a row is unreviewed."""

    __tablename__ = "flags"
    # The pair id rides in the index: the "no review state" filters read a dataset's review
    # rows from it alone (migration 0020).
    __table_args__ = (
        Index("ix_flags_dataset_state", "dataset_id", "state", postgresql_include=["pair_id"]),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # No key on the pair (checking it locked each pair's row: 5.6 s of a 13 s bulk flag of
    # 100,000 pairs); the state goes with its dataset (migration 0019).
    pair_id: Mapped[int] = mapped_column(Integer, unique=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16), default="flagged")
    note: Mapped[str | None] = mapped_column(Text, default=None)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    pair: Mapped[Pair] = relationship(
        back_populates="flag", primaryjoin="foreign(Flag.pair_id) == Pair.id"
    )

    @property
    def flagged(self) -> bool:
        return self.state == "flagged"


class ReviewAction(Base):
    """One request that changed review states: a single pair's decision ('set'), a bulk action
    on a filter ('bulk'), or an undo ('undo', of action `undoes`). Append-only; an undone action
    keeps its rows and gets `undone_at`."""

    __tablename__ = "review_actions"
    __table_args__ = (Index("ix_review_actions_dataset_id", "dataset_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str | None] = mapped_column(String(16), default=None)
    description: Mapped[str] = mapped_column(Text)
    filter: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    count: Mapped[int] = mapped_column(Integer, default=0)
    undoes: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(default=None)

    user: Mapped[User | None] = relationship()


class ReviewEvent(Base):
    """One pair's change within an action: its state and note before and after."""

    __tablename__ = "review_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    action_id: Mapped[int] = mapped_column(
        ForeignKey("review_actions.id", ondelete="CASCADE"), index=True
    )
    # No foreign key: events go with their action and dataset (pairs are deleted only with it).
    pair_id: Mapped[int] = mapped_column(Integer, index=True)
    old_state: Mapped[str] = mapped_column(String(16))
    old_note: Mapped[str | None] = mapped_column(Text, default=None)
    new_state: Mapped[str] = mapped_column(String(16))
    new_note: Mapped[str | None] = mapped_column(Text, default=None)


class ScoreStat(Base):
    """A cached summary of one job's scores: `key` is a score column (its non-null training
    count and 1,001 quantiles, for percentiles) or 'rows:<split>' (a count)."""

    __tablename__ = "score_stats"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    n: Mapped[int] = mapped_column(Integer)
    quantiles: Mapped[list[float] | None] = mapped_column(JSON, default=None)


class JudgeAnswer(Base):
    """An LLM judge's answer, cached by the sha256 of the exact request (server, model, messages,
    parameters; never the key): a rerun of the same request costs no request (migration 0014)."""

    __tablename__ = "judge_answers"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(256))
    content: Mapped[str | None] = mapped_column(Text, default=None)
    # The first answer token's top alternatives: [{"token": str, "logprob": float}, ...].
    top_logprobs: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TargetSet(Base):
    """A small set of pairs (20–500) that shows the behaviour a user wants: an audit can measure
    influence against its loss instead of the validation loss (backend/services/targets.py)."""

    __tablename__ = "target_sets"

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    name: Mapped[str] = mapped_column(String(256))
    # How it was built: 'reviewed', 'rule:<name>', 'dataset:<id>' or 'pairs'.
    source: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    n_pairs: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TargetPair(Base):
    """One pair of a target set, oriented as the target wants it (a swapped or rule-reoriented
    pair holds its texts exchanged); `pair_id` is the dataset pair it came from, if any."""

    __tablename__ = "target_pairs"

    id: Mapped[int] = mapped_column(primary_key=True)
    target_set_id: Mapped[int] = mapped_column(
        ForeignKey("target_sets.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    pair_id: Mapped[int | None] = mapped_column(Integer, default=None)
    prompt: Mapped[str] = mapped_column(Text)
    chosen: Mapped[str] = mapped_column(Text)
    rejected: Mapped[str] = mapped_column(Text)


SEARCH_OBJECTS = ("pairs_fts", "pair_search", "ix_pair_search")
"""The text-search structures the migrations make outside the models (SQLite's FTS5 table and
its shadow tables, Postgres's tsvector table and its indexes)."""


def in_models(name: str | None, type_: str, parent_names: object) -> bool:
    """For Alembic's autogenerate: everything but the text-search structures and the per-job
    partitions of scores."""
    if type_ == "table" and re.match(r"^scores_job_\d+$", name or ""):
        return False  # a job's partition of scores (backend.services.scores)
    return not (name or "").startswith(SEARCH_OBJECTS)
