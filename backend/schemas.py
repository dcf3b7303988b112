"""Request and response bodies, named by role (`DatasetPublic`, `PairsPage`, `JobCreate`, ...)."""

from __future__ import annotations

import dataclasses
import typing
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    Tag,
    ValidationInfo,
    computed_field,
    create_model,
    field_validator,
    model_serializer,
)

from worker.influence.config import EngineConfig
from worker.influence.methods import METHODS, MethodName


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: str
    broker: str = Field(description="The broker's kind: redis, filesystem, ...")
    broker_state: str = Field(description="'ok' when the broker answers, else 'error: <why>'.")


class LoginRequest(BaseModel):
    username: str = Field(max_length=1024)
    password: str = Field(max_length=4096)
    cookie: bool = Field(
        False,
        description="A browser session: the token goes in an HttpOnly SameSite cookie (and a "
        "readable CSRF cookie), not in the response.",
    )


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    is_admin: bool


class TokenCreate(BaseModel):
    name: str = Field("api", max_length=128)
    expires_in_days: float | None = Field(
        None, ge=0, le=3650, description="Lifetime in days; 0 = never; default the server's."
    )
    password: str | None = Field(
        None,
        max_length=4096,
        description="Your current password. Needed from a browser session (the server may "
        "allow a few minutes after the login without it: `reauth_minutes`, off by default), and "
        "from a bearer token for a new token that would outlive it (a later expiry, or never).",
    )


class PasswordChange(BaseModel):
    """Change one's own password: every other session and token of the account ends."""

    current_password: str = Field(max_length=4096)
    new_password: str = Field(min_length=8, max_length=4096)


class TokenPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None = None


class TokenIssued(BaseModel):
    """The token itself is shown only here, once."""

    access_token: str | None = Field(
        description="The token (null for a cookie session: it is in the HttpOnly cookie)."
    )
    token_type: Literal["bearer"] = "bearer"
    user: UserPublic


class DatasetPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    filename: str
    format: str
    schema_kind: str
    n_pairs: int
    n_skipped: int = Field(0, description="Rows of the file left out (on_bad_rows='skip').")
    created_at: datetime
    role: Literal["owner", "reviewer", "viewer"] = Field(
        "owner", description="The caller's role: owner, or what the owner shared it as."
    )
    owner_name: str = Field("", description="The owner's username.")


Role = Literal["viewer", "reviewer"]


class ShareUpdate(BaseModel):
    """Share a dataset with a user (or change their role)."""

    username: str = Field(min_length=1, max_length=128)
    role: Role = Field(
        description="viewer: read and export; reviewer: also flag, keep, swap and note"
    )


class SharePublic(BaseModel):
    user_id: int
    username: str
    role: Role
    created_at: datetime


class TransferCreate(BaseModel):
    """Hand a dataset to another account."""

    username: str = Field(min_length=1, max_length=128, description="The new owner.")


class TransferPublic(BaseModel):
    dataset_id: int
    owner_id: int
    owner_name: str
    jobs_moved: int = Field(description="The dataset's jobs, which moved with it.")


class AdminUserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    is_admin: bool
    created_at: datetime
    n_datasets: int = 0


class AdminUserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=8, max_length=4096)
    is_admin: bool = False


class AdminUserUpdate(BaseModel):
    """Change what is given; a new password ends the user's sessions and tokens."""

    is_admin: bool | None = None
    password: str | None = Field(None, min_length=8, max_length=4096)


class BadRow(BaseModel):
    """One unusable row of an upload: 1-based row (as a user counts lines; a CSV header is row
    1), the column when one is to blame, and what is wrong."""

    row: int | None
    column: str | int | None
    message: str


class UploadResult(DatasetPublic):
    """The stored dataset and, with on_bad_rows='skip', the rows it left out (the first
    `max_listed_bad_rows` of them; `n_skipped` counts them all)."""

    skipped: list[BadRow] = []


class PreviewPair(BaseModel):
    """One pair as the upload would store it (texts cut to `PREVIEW_CHARS`)."""

    row: int
    prompt: str
    chosen: str
    rejected: str
    metadata: dict[str, Any]


class UploadPreview(BaseModel):
    """What an upload of this file (with this column mapping) would store, from its first
    records; nothing is stored."""

    format: str
    schema_kind: str
    columns: list[str] = Field(description="The fields of the file's first record, as named there.")
    pairs: list[PreviewPair]
    bad_rows: list[BadRow]
    rows_read: int


class DatasetsPage(BaseModel):
    items: list[DatasetPublic]
    total: int


class PairScores(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    split: str
    harm: float | None = None
    loss: float | None = None
    margin: float | None = None
    harm_loss: float | None = None
    harm_gradient_similarity: float | None = None
    harm_gradient_cosine: float | None = None
    harm_influence: float | None = None
    removal_effect_influence: float | None = None
    harm_datainf: float | None = None
    removal_effect_datainf: float | None = None
    harm_self_influence: float | None = None
    harm_corrected_loss: float | None = None
    harm_tracin: float | None = None
    harm_length: float | None = None
    harm_oof_loss: float | None = None
    oof_margin: float | None = None
    harm_ensemble: float | None = None
    ensemble_disagreement: float | None = None
    harm_group: float | None = None
    group_order: float | None = None
    group_gain: float | None = None


DB_ID_MAX = 2**31 - 1
"""Largest id a table can hold (Postgres `integer`): larger ids are a 422, not a 500."""

DB_OFFSET_MAX = 2**53
"""Largest page offset accepted (beyond any table; Postgres takes a bigint)."""

DbId = Annotated[int, Field(ge=1, le=DB_ID_MAX)]


ReviewState = Literal["unreviewed", "kept", "flagged", "swapped"]


class PairPublic(BaseModel):
    id: int
    index: int = Field(description="0-based position among the file's pairs.")
    row: int = Field(description="1-based pair number, as upload errors count rows.")
    prompt: str
    chosen: str
    rejected: str
    metadata: dict[str, Any]
    state: ReviewState = "unreviewed"
    flagged: bool = Field(description="state == 'flagged' (kept for older clients).")
    note: str | None
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    lengths: dict[str, int] = Field(
        default_factory=dict, description="prompt / chosen / rejected length in characters."
    )
    rank: int | None = Field(None, description="1-based position in this sorted, filtered list.")
    percentiles: dict[str, float] = Field(
        default_factory=dict,
        description="Per score column: the percentage of the job's training pairs with a value "
        "at or below this pair's (from 1,001 stored quantiles, so within 0.1 points).",
    )
    scores: PairScores | None = None


class PairsPage(BaseModel):
    items: list[PairPublic]
    total: int
    total_is_estimate: bool = Field(
        False,
        description="True when `total` is the planner's estimate (a filter matching "
        "more than 10,000 pairs on Postgres).",
    )
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for the next page; null on the last page."
    )


class ScoreRange(BaseModel):
    """`min` ≤ column ≤ `max` (either bound optional)."""

    column: str = Field(max_length=64)
    min: float | None = None
    max: float | None = None


class LengthRange(BaseModel):
    """A length range in characters; `total` is prompt + chosen + rejected."""

    field: Literal["prompt", "chosen", "rejected", "total"]
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)


MetaValue = str | bool | int | float


class PairFilter(BaseModel):
    """Which pairs: one model for the pairs list, the bulk actions and the export. Every given
    condition must hold."""

    job_id: DbId | None = Field(None, description="The audit whose scores the score filters use.")
    split: Literal["train", "val", "all"] = Field(
        "train", description="With `job_id`: the job's training pairs, validation pairs or both."
    )
    q: str | None = Field(
        None,
        max_length=500,
        description="Words that must all occur in the prompt, chosen or rejected text.",
    )
    states: list[ReviewState] | None = Field(None, description="Any of these review states.")
    flagged: bool | None = Field(None, description="Flagged (true) or not (false).")
    scores: list[ScoreRange] = Field(default_factory=list, max_length=32)
    percentiles: list[ScoreRange] = Field(
        default_factory=list,
        max_length=32,
        description="Ranges of a score's percentile among the job's training pairs, 0 to 100.",
    )
    lengths: list[LengthRange] = Field(default_factory=list, max_length=8)
    metadata: dict[str, MetaValue] = Field(
        default_factory=dict, max_length=16, description="Metadata fields equal to these values."
    )


class ReviewUpdate(BaseModel):
    """One pair's whole review state: the state and the note (null clears it)."""

    state: ReviewState
    note: str | None = Field(None, max_length=10_000)


BulkKind = Literal["flag", "keep", "swap", "clear"]


class BulkAction(BaseModel):
    """Set every pair matching `filter` to one state in one transaction. 'clear' returns them to
    unreviewed; notes are kept unless `note` is given."""

    action: BulkKind
    filter: PairFilter = Field(default_factory=PairFilter)
    override_kept: bool = Field(
        False, description="Also change pairs a reviewer marked 'kept' (skipped by default)."
    )
    note: str | None = Field(None, max_length=10_000, description="Set this note on each.")
    dry_run: bool = Field(False, description="Count what would change; write nothing.")


class BulkResult(BaseModel):
    matched: int = Field(description="Pairs matching the filter.")
    changed: int = Field(description="Pairs whose state changed (or would, in a dry run).")
    protected: int = Field(0, description="Matching pairs left alone because they are kept.")
    action_id: int | None = Field(None, description="The history entry (null in a dry run).")
    dry_run: bool = False


class ReviewActionPublic(BaseModel):
    id: int
    kind: str
    state: str | None
    description: str
    count: int
    user: str | None = None
    undoes: int | None
    created_at: datetime
    undone_at: datetime | None


class ReviewEventPublic(BaseModel):
    action_id: int
    kind: str
    description: str
    user: str | None
    at: datetime
    old_state: str
    old_note: str | None
    new_state: str
    new_note: str | None
    undone: bool


class FlagUpdate(BaseModel):
    flagged: bool
    note: str | None = Field(None, max_length=10_000)


class FlagTop(BaseModel):
    """Flag pairs of a finished audit in one call: the top fraction by a score (`rule: "top"`),
    or the interaction-aware greedy selection of a `group` audit (`rule: "greedy"`)."""

    job_id: DbId
    rule: Literal["top", "greedy"] = Field(
        "top",
        description=(
            "'top': the `top_fraction` highest by `method`. 'greedy': the first `budget` pairs "
            "of the job's greedy group selection (the audit must have run method 'group')."
        ),
    )
    top_fraction: float = Field(0.1, gt=0, le=1, description="Fraction of scored pairs to flag.")
    method: str = Field(
        "harm", description="Score column to rank by (default: the job's default `harm`)."
    )
    budget: float | None = Field(
        None,
        gt=0,
        le=DB_ID_MAX,
        description=(
            "rule 'greedy': pairs to flag, a fraction of the scored pairs (0 < b < 1) or a "
            "count (b ≥ 1); default the audit's prune_budget."
        ),
    )
    override_kept: bool = Field(
        False, description="Also flag pairs a reviewer marked 'kept' (left alone by default)."
    )


class Interaction(BaseModel):
    """One partner of a pair in a `group` audit: κ > 0 redundant (removing both lowers the
    validation loss by less than the two alone), κ < 0 complementary (by more)."""

    pair_id: int
    index: int
    prompt: str
    kappa: float
    kind: Literal["redundant", "complementary"]
    group_order: float | None = None


class Interactions(BaseModel):
    pair_id: int
    job_id: int
    items: list[Interaction]


class FlagCount(BaseModel):
    flagged: int = 0
    unflagged: int = 0
    protected: int = Field(0, description="Matching pairs left alone because they are kept.")


def _engine_fields() -> dict[str, Any]:
    """The engine's options as pydantic fields: one source of truth for names, types, defaults."""
    hints = typing.get_type_hints(EngineConfig)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(EngineConfig):
        if f.default is not dataclasses.MISSING:
            default = Field(f.default, description=f.metadata.get("help"))
        else:
            default = Field(
                default_factory=f.default_factory,  # type: ignore[arg-type]
                description=f.metadata.get("help"),
                # pydantic leaves factory defaults out of the schema; clients need to see them.
                json_schema_extra={"default": f.default_factory()},  # type: ignore[misc,operator]
            )
        fields[f.name] = (hints[f.name], default)
    return fields


def _label_methods(schema: dict[str, Any]) -> None:
    """Name the method enums' values for people: `x-enum-labels` and `x-enum-descriptions` run
    parallel to `enum` (the registry's order), so a client can label its options without a copy."""
    names = list(METHODS)
    extra = {
        "x-enum-labels": [METHODS[name].label for name in names],
        "x-enum-descriptions": [METHODS[name].description for name in names],
    }
    properties = schema.get("properties", {})
    for prop in (properties.get("default_method"), properties.get("methods", {}).get("items")):
        if isinstance(prop, dict) and prop.get("enum") == names:
            prop.update(extra)


_JobCreateBase = create_model(  # type: ignore[call-overload]
    "AuditOptions", __config__=ConfigDict(extra="forbid"), **_engine_fields()
)


class AuditCreate(_JobCreateBase):  # type: ignore[misc,valid-type]
    """An audit job. Only `model` is usually given; every other option has a default."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_label_methods)

    kind: Literal["audit"] = "audit"
    val_fraction: float = Field(
        0.1, gt=0, lt=1, description="Fraction of pairs split off (seeded) as the validation set."
    )
    val_dataset_id: int | None = Field(
        None,
        ge=1,
        le=DB_ID_MAX,
        description="Use this dataset as the validation set instead of a split.",
    )

    def engine_config(self) -> EngineConfig:
        names = {f.name for f in dataclasses.fields(EngineConfig)}
        return EngineConfig(**{k: v for k, v in self.model_dump().items() if k in names})


class VerifyCreate(BaseModel):
    """Retrain with the audit's recipe on all pairs, the pruned set and a random removal of the
    same size, for several seeds, and compare them on the validation set (or a test dataset)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["verify"]
    audit_job_id: int = Field(
        ge=1, le=DB_ID_MAX, description="A succeeded audit job of this dataset."
    )
    method: str = Field("harm", description="Score column whose top `fraction` is pruned.")
    fraction: float = Field(0.1, gt=0, lt=1, description="Fraction of training pairs to prune.")
    use_flags: bool = Field(
        False, description="Prune the dataset's currently flagged pairs instead of a top fraction."
    )
    rule: Literal["top", "greedy"] = Field(
        "top",
        description=(
            "'top': prune the top `fraction` by `method`. 'greedy': prune the first `budget` "
            "pairs of a `group` audit's greedy selection, and add an arm that prunes the top-K "
            "of the same size by first-order influence, so greedy, top-K and random removal are "
            "compared per seed."
        ),
    )
    budget: float | None = Field(
        None,
        gt=0,
        le=DB_ID_MAX,
        description=(
            "rule 'greedy': pairs to prune, a fraction (0 < b < 1) or a count (b ≥ 1); "
            "default the audit's prune_budget."
        ),
    )
    seeds: int = Field(3, ge=1, le=20, description="Retrains per arm (seeds 0..seeds-1).")
    test_dataset_id: int | None = Field(
        None,
        ge=1,
        le=DB_ID_MAX,
        description="Evaluate on this dataset instead of the audit's validation split.",
    )


def _job_kind(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("kind", "audit"))
    return str(getattr(value, "kind", "audit"))


JobCreate = Annotated[
    Annotated[AuditCreate, Tag("audit")] | Annotated[VerifyCreate, Tag("verify")],
    Discriminator(_job_kind),
]
"""A job to run: an audit (the default kind) or a pruning verification."""


class _StoredMetrics(BaseModel):
    """A part of a job's stored metrics: the keys clients read are typed, the rest pass through.

    Serialised as stored: a typed key the job's metrics lack stays absent (not null), so jobs
    from before a key existed read the same as they did.
    """

    model_config = ConfigDict(extra="allow")

    @model_serializer(mode="wrap")
    def _as_stored(self, handler: SerializerFunctionWrapHandler):
        # No return annotation on purpose: pydantic then documents the typed fields, not a dict.
        data = handler(self)
        keep = self.model_fields_set | set(self.model_extra or {})
        return {key: value for key, value in data.items() if key in keep}


class TrustVerdict(_StoredMetrics):
    """Whether the reward model beats chance on the validation pairs (worker/influence/trust.py)."""

    n_val: int | None = None
    val_accuracy: float | None = None
    val_accuracy_ci95: list[float] | None = Field(None, description="[low, high]")
    val_loss: float | None = None
    ln2: float | None = None
    is_evidence: bool | None = None
    message: str | None = None


class MislabelledEstimate(_StoredMetrics):
    """How many training pairs are probably presented in the wrong order, with its interval."""

    source: str | None = None
    n: int | None = None
    estimated_fraction: float | None = None
    estimated_count: int | None = None
    fraction_ci95: list[float] | None = Field(None, description="[low, high]")
    count_ci95: list[int] | None = Field(None, description="[low, high]")
    precise: bool | None = None
    expected_precision_at_top: dict[str, float] | None = None
    message: str | None = None


class BenchmarkRow(_StoredMetrics):
    method: str
    mean_auroc: float
    beats_loss: bool
    beats_length: bool


class MethodBenchmark(_StoredMetrics):
    """The detection benchmark's verdict per method and how far it applies to this job."""

    summary: str | None = None
    rows: list[BenchmarkRow] | None = None
    applies: bool | None = None
    notes: list[str] | None = None


class TrainingEpoch(_StoredMetrics):
    """One row of the training history: an epoch in LoRA mode, the one exact fit otherwise."""

    epoch: int | None = None
    train_loss: float | None = None
    train_accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None


class TruncationRate(_StoredMetrics):
    train: float | None = None
    val: float | None = None


class GroupEstimate(_StoredMetrics):
    first_order: float
    interaction_aware: float


class GroupMetrics(_StoredMetrics):
    """The `group` method's summary: the budget, and the predicted change of validation loss of
    removing the greedy selection and the first-order top-K of the same size."""

    candidates: int
    budget: int
    prune_budget: float | None = None
    estimate_greedy: GroupEstimate | None = None
    estimate_top_k: GroupEstimate | None = None
    overlap_with_top_k: int | None = None
    factor_mib: float | None = None
    dense_kappa_mib: float | None = None
    interactions_kept: int | None = None
    seconds: float | None = None


class AuditMetrics(_StoredMetrics):
    """`metrics` of an audit job (worker/influence/audit.py and worker/pipeline.py)."""

    kind: Literal["audit"]
    val_accuracy: float | None = None
    val_loss: float | None = None
    train_accuracy: float | None = None
    train_loss: float | None = None
    n_train: int | None = None
    n_val: int | None = None
    default_method: str | None = Field(
        None, description="The method whose harm fills `harm` (a `methods` name)."
    )
    mode: str | None = None
    model: str | None = None
    truncation_rate: TruncationRate | None = None
    seconds_total: float | None = None
    history: list[TrainingEpoch] | None = None
    warnings: list[str] | None = None
    trust: TrustVerdict | None = None
    mislabelled: MislabelledEstimate | None = None
    method_benchmark: MethodBenchmark | None = None
    group: GroupMetrics | None = None
    model_dir: str | None = None
    traceback: str | None = Field(None, description="The tail of the error of a failed job.")


class ArmSummary(_StoredMetrics):
    """One metric of one arm over the seeds; `std` is null below 2 seeds."""

    n: int
    mean: float | None = None
    std: float | None = None
    values: list[float]


class PairedDifference(_StoredMetrics):
    """Paired difference over seeds (or evaluation pairs), Student-t interval; null below n = 2."""

    n: int
    mean: float | None = None
    std: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    confidence: float


class ArmMetrics(_StoredMetrics):
    accuracy: ArmSummary
    loss: ArmSummary


class DifferenceMetrics(_StoredMetrics):
    accuracy: PairedDifference
    loss: PairedDifference


class VerifyArms(_StoredMetrics):
    full: ArmMetrics | None = None
    pruned: ArmMetrics | None = None
    random: ArmMetrics | None = None
    top_k: ArmMetrics | None = Field(
        None, description="rule 'greedy' only: the first-order top-K of the same size."
    )


class VerifyDifferences(_StoredMetrics):
    pruned_minus_full: DifferenceMetrics | None = None
    pruned_minus_random: DifferenceMetrics | None = None
    pruned_minus_top_k: DifferenceMetrics | None = Field(
        None, description="rule 'greedy' only: greedy minus first-order top-K, paired."
    )
    top_k_minus_full: DifferenceMetrics | None = None
    top_k_minus_random: DifferenceMetrics | None = None


class VerifyRun(_StoredMetrics):
    seed: int
    arm: Literal["full", "pruned", "random", "top_k"]
    n_train: int
    accuracy: float
    loss: float
    seconds: float | None = None


class VerifyMetrics(_StoredMetrics):
    """`metrics` of a verify job (worker/influence/verify.py and worker/pipeline.py)."""

    kind: Literal["verify"]
    runs: list[VerifyRun] | None = None
    arms: VerifyArms | None = None
    differences: VerifyDifferences | None = None
    evaluation_paired: VerifyDifferences | None = Field(
        None, description="The differences paired over evaluation pairs instead of seeds."
    )
    n_removed: int | None = None
    n_train: int | None = None
    n_eval: int | None = None
    seeds: list[int] | None = None
    summary: str | None = None
    audit_job_id: int | None = None
    rule: str | None = None
    evaluated_on: str | None = None
    overlap: dict[str, int] | None = Field(
        None, description="rule 'greedy': pairs the greedy selection shares with each other arm."
    )
    traceback: str | None = Field(None, description="The tail of the error of a failed job.")


JobMetrics = Annotated[AuditMetrics | VerifyMetrics, Field(discriminator="kind")]
"""A job's metrics, typed by the job's kind (the stored dict carries none: `JobPublic` adds it)."""


class JobPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    dataset_id: int
    kind: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    stage: str | None
    progress: float
    error: str | None
    metrics: JobMetrics | None
    config: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    resumes: int = Field(
        0, description="Times the reaper re-dispatched the job after its tasks were lost."
    )
    redacted: list[str] = Field(
        default_factory=list,
        description="What was withheld from you: the config keys (and metrics) that name a "
        "dataset you cannot read. Empty when nothing was.",
    )

    @computed_field(  # type: ignore[prop-decorator]
        description="Seconds left, extrapolated from the elapsed time and progress (running jobs "
        "past 2% only; the progress of a sharded job is aggregated over its tasks)."
    )
    @property
    def eta_seconds(self) -> float | None:
        if self.status != "running" or self.started_at is None or self.progress < 0.02:
            return None
        started = self.started_at
        if started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        elapsed = (datetime.now(UTC) - started).total_seconds()
        return round(max(0.0, elapsed * (1.0 - self.progress) / self.progress), 1)

    @field_validator("metrics", mode="before")
    @classmethod
    def _metrics_of_kind(cls, value: Any, info: ValidationInfo) -> Any:
        """Stored metrics are a plain dict: tag it with the job's kind to pick its model."""
        if isinstance(value, dict):
            return {**value, "kind": "verify" if info.data.get("kind") == "verify" else "audit"}
        return value


class MethodInfo(BaseModel):
    """One score method of the registry (worker/influence/methods.py)."""

    model_config = ConfigDict(from_attributes=True)
    name: MethodName
    label: str
    description: str
    orientation: str = Field(description="What a high harm means.")
    harm_column: str
    columns: list[str] = Field(description="Every score column the method fills.")
    needs_gradients: bool
    needs_validation: bool
    needs_curvature: bool
    needs_checkpoints: bool
    lora_only: bool


class Histogram(BaseModel):
    """Counts of one score column over a job's training pairs, in equal-width bins."""

    column: str
    n: int
    edges: list[float] = Field(description="len(counts) + 1 bin edges, ascending.")
    counts: list[int]
    quantiles: dict[str, float] = Field(description="p10, p50, p90 of the column.")
    estimated: bool = Field(
        False,
        description="True above 20,000 scores: counts from 1,001 stored quantiles (each bin "
        "within 0.1% of n of the exact count).",
    )


class JobsPage(BaseModel):
    items: list[JobPublic]
    total: int
