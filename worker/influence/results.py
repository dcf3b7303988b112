"""A job's metrics as typed models: what the engine returns, the worker stores and the API reads;
every key an audit or a verify job writes is a declared field (unknown keys fail)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar, overload

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    model_serializer,
    model_validator,
)

READ_STORED = "read_stored"
"""Validation context key: the metrics come from a stored row (`read_metrics`)."""


class StoredMetrics(BaseModel):
    """A part of a job's metrics, serialised as stored: a field never set stays absent (not
    null), so a job from before a key existed reads as it was written.

    Writing forbids unknown keys, so a misspelt key fails where it is written. Reading a stored
    row (`read_metrics`) drops the keys no field declares instead: rows written by an older
    version may hold keys since removed, and a job page must still open; what no model declares
    no client can rely on, so dropping it loses nothing a client reads.
    """

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _drop_unknown_when_reading(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and info.context and info.context.get(READ_STORED):
            return {key: value for key, value in data.items() if key in cls.model_fields}
        return data

    @model_serializer(mode="wrap")
    def _as_stored(self, handler: SerializerFunctionWrapHandler):
        # No return annotation on purpose: pydantic then documents the typed fields, not a dict.
        data = handler(self)
        return {key: value for key, value in data.items() if key in self.model_fields_set}


Metrics = TypeVar("Metrics", bound=StoredMetrics)


def with_fields(metrics: Metrics, **values: Any) -> Metrics:
    """A copy of `metrics` with more fields set, validated (an unknown or mistyped key fails)."""
    return type(metrics).model_validate({**metrics.model_dump(), **values})


# --- audit ------------------------------------------------------------------------------------


class TrustVerdict(StoredMetrics):
    """Whether the reward model beats chance on the validation pairs (worker/influence/trust.py)."""

    n_val: int | None = None
    val_accuracy: float | None = None
    val_accuracy_ci95: list[float] | None = Field(None, description="[low, high]")
    val_loss: float | None = None
    ln2: float | None = None
    is_evidence: bool | None = None
    message: str | None = None


class MislabelledEstimate(StoredMetrics):
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
    confident_learning_count: int | None = None
    temperature: float | None = None
    posterior_count: float | None = None


class BenchmarkRow(StoredMetrics):
    method: str
    mean_auroc: float
    beats_loss: bool
    beats_length: bool
    per_dataset: dict[str, float] | None = None
    minus_loss: list[float] | None = None
    minus_length: list[float] | None = None


class MethodBenchmark(StoredMetrics):
    """The detection benchmark's verdict per method and how far it applies to this job."""

    summary: str | None = None
    rows: list[BenchmarkRow] | None = None
    applies: bool | None = None
    notes: list[str] | None = None
    mode: str | None = None
    model: str | None = None
    max_length: int | None = None
    n_train_range: list[int] | None = None
    datasets: list[str] | None = None
    n_cells: int | None = None
    default: str | None = None
    source: str | None = None


class TrainingEpoch(StoredMetrics):
    """One row of the training history: an epoch in LoRA mode, the one exact fit otherwise."""

    epoch: int | None = None
    train_loss: float | None = None
    train_accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    seconds: float | None = None
    val_seconds: float | None = None
    newton_iterations: int | None = None
    l2: float | None = None
    refit_l2: float | None = None
    features: str | None = None
    length_weight: float | None = None
    validation_loss_grid: dict[str, float] | None = None
    fit_seconds: float | None = None
    pretrained: bool | None = None


class TruncationRate(StoredMetrics):
    train: float | None = None
    val: float | None = None


class GroupEstimate(StoredMetrics):
    first_order: float
    interaction_aware: float


class CanaryRanking(StoredMetrics):
    """One ranking's figures on the job's canaries (worker/influence/canaries.py)."""

    auroc: float | None = None
    auroc_se: float | None = Field(None, description="Hanley–McNeil standard error.")
    top10_hits: int | None = Field(None, description="Canaries in its top 10%.")
    top10_size: int | None = Field(None, description="Pairs in its top 10%.")


class DefaultChoice(StoredMetrics):
    """Which ranking fills `harm`, why, and what it is expected to find (worker/influence/
    canaries.py): chosen per job from its canaries and validation figures."""

    method: str | None = Field(None, description="The method whose harm fills `harm`.")
    reason: str | None = Field(None, description="Why, in a sentence or two (shown to the user).")
    rule: str | None = Field(
        None,
        description="'learned' (canaries decide, loss by default), 'model_free' (the "
        "model learned nothing: length) or 'asked' (the job named its default).",
    )
    canaries: int | None = Field(None, description="Canaries planted (0: too few pairs).")
    held_aside: int | None = Field(
        None, description="Training pairs held out for them: stored unscored, like validation."
    )
    rankings: dict[str, CanaryRanking] | None = Field(
        None, description="Every ranking's canary figures, by method."
    )
    expected_auroc: float | None = None
    expected_auroc_se: float | None = None
    expected_top10_hits: int | None = None
    expected: str | None = Field(
        None, description="The chosen ranking's figure as a sentence ('on 40 canaries ...')."
    )


class GroupMetrics(StoredMetrics):
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
    damping_absolute: float | None = None


class InfluenceSolve(StoredMetrics):
    """How u = H_λ⁻¹ g_val was obtained (worker/influence/scores.py, stream.py)."""

    solver: str | None = None
    hessian: str | None = None
    damping_relative: float | None = None
    damping_absolute: float | None = None
    curvature_scale: float | None = None
    damping_reference: str | None = None
    self_influence_damping_absolute: float | None = None
    cg_iterations: int | None = None
    relative_residual: float | None = None
    negative_curvature: bool | None = None
    dimension: int | None = None


class CrossFitSummary(StoredMetrics):
    folds: int
    repeats: int
    members: int


class ProjectionSummary(StoredMetrics):
    """The gradient projection of a sharded LoRA job (`Projector.describe`)."""

    kind: str | None = None
    k: int | None = None
    dim: int | None = None
    seed: int | None = None
    memory_bytes: int | None = None
    dense_memory_bytes: int | None = None
    parameters: dict[str, int] | None = None


class RewardModelSlot(StoredMetrics):
    """One outside reward model of an audit: the column its margins fill and how it votes."""

    slot: str = Field(description="Its margin column (rm_margin_1, ...).")
    model: str = Field(description="The model as the audit named it (directory or hub id).")
    agreement: float = Field(description="Fraction of training pairs with a positive margin.")
    mean_margin: float


class RewardModelsSummary(StoredMetrics):
    """The audit's outside reward models (`reward_models`) and their vote over the training
    pairs (worker/influence/reward_models.py defines the columns)."""

    models: list[RewardModelSlot]
    n_pairs: int
    ambiguous: int = Field(description="Pairs flagged rm_ambiguous (the models split).")
    all_against: int = Field(description="Pairs every model scores against the label.")
    mean_negative: int = Field(description="Pairs with a negative mean margin.")
    votes_against: list[int] = Field(
        description="Pairs by the number of models against the label (index = that number)."
    )
    margin_correlation: list[list[float]] = Field(
        description="Pearson correlation of the models' margins (model × model)."
    )
    ambiguous_ratio: float = Field(
        description="Agreeing models are still ambiguous where |mean| < this × spread."
    )
    seconds: float | None = None


class TargetSummary(StoredMetrics):
    """A targeted audit's target set (worker/influence/targeting.py): the engine fills the
    figures, the job runner the set's id and name."""

    n_pairs: int
    accuracy: float = Field(description="The fitted model's pairwise accuracy on the target.")
    loss: float = Field(description="Its mean BT loss on the target (f = L_T).")
    methods: list[str] = Field(description="Methods measured against the target.")
    training_loss_methods: list[str] = Field(
        description="Methods of the job that do not read the target (training pairs only)."
    )
    target_set_id: int | None = None
    name: str | None = None
    source: str | None = None


class AuditMetrics(StoredMetrics):
    """`metrics` of an audit job: the engine's (worker/influence/audit.py) and the job
    runner's (worker/jobs/)."""

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
    default_choice: DefaultChoice | None = None
    group: GroupMetrics | None = None
    model_dir: str | None = None
    traceback: str | None = Field(None, description="The tail of the error of a failed job.")
    device: str | None = None
    n_trainable_params: int | None = None
    head_features: str | None = None
    head_l2: float | None = None
    head_length_weight: float | None = None
    head_val_loss: float | None = None
    epoch_seconds: list[float] | None = None
    method_seconds: dict[str, float] | None = None
    val_gradient_norm: float | None = None
    influence: InfluenceSolve | None = None
    length_direction: int | None = None
    crossfit: CrossFitSummary | None = None
    seconds: dict[str, float] | None = Field(None, description="Seconds per stage.")
    peak_memory_mb: dict[str, float] | None = None
    stage_peak_memory_mb: dict[str, dict[str, float]] | None = None
    validation_source: str | None = None
    target: TargetSummary | None = Field(
        None, description="Set when the audit measured against a target set (targeted audit)."
    )
    engine: str | None = Field(None, description="How a sharded job ran (absent: one task).")
    shards: int | None = None
    feature_task_seconds: float | None = None
    worker_peak_rss_mb: float | None = None
    head_seconds: float | None = None
    gradient_space: str | None = None
    projection: ProjectionSummary | None = None
    worker_processes: int | None = None
    artifacts: str | None = None
    requeued_at: str | None = Field(
        None, description="When the reaper last re-sent the queued job."
    )
    resumed_at: str | None = Field(
        None, description="When the reaper last re-dispatched the running job."
    )
    reward_models: RewardModelsSummary | None = Field(
        None, description="The outside reward models' slots and vote (audits naming some)."
    )


# --- verify -----------------------------------------------------------------------------------


class ArmSummary(StoredMetrics):
    """One metric of one arm over the seeds; `std` is null below 2 seeds."""

    n: int
    mean: float | None = None
    std: float | None = None
    values: list[float]


class PairedDifference(StoredMetrics):
    """Paired difference over seeds (or evaluation pairs), Student-t interval; null below n = 2."""

    n: int
    mean: float | None = None
    std: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    confidence: float


class ArmMetrics(StoredMetrics):
    accuracy: ArmSummary
    loss: ArmSummary


class DifferenceMetrics(StoredMetrics):
    accuracy: PairedDifference
    loss: PairedDifference


class VerifyArms(StoredMetrics):
    full: ArmMetrics | None = None
    pruned: ArmMetrics | None = None
    random: ArmMetrics | None = None
    top_k: ArmMetrics | None = Field(
        None, description="rule 'greedy' only: the first-order top-K of the same size."
    )


class VerifyDifferences(StoredMetrics):
    pruned_minus_full: DifferenceMetrics | None = None
    pruned_minus_random: DifferenceMetrics | None = None
    pruned_minus_top_k: DifferenceMetrics | None = Field(
        None, description="rule 'greedy' only: greedy minus first-order top-K, paired."
    )
    top_k_minus_full: DifferenceMetrics | None = None
    top_k_minus_random: DifferenceMetrics | None = None


class VerifyRun(StoredMetrics):
    seed: int
    arm: Literal["full", "pruned", "random", "top_k"]
    n_train: int
    accuracy: float
    loss: float
    seconds: float | None = None


class VerifyMetrics(StoredMetrics):
    """`metrics` of a verify job: the engine's (worker/influence/verify.py) and the job
    runner's (worker/jobs/verify.py)."""

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
    model: str | None = None
    mode: str | None = None
    requeued_at: str | None = Field(
        None, description="When the reaper last re-sent the queued job."
    )
    resumed_at: str | None = Field(
        None, description="When the reaper last re-dispatched the running job."
    )


# --- judge ------------------------------------------------------------------------------------


class JudgeFailure(StoredMetrics):
    """One order of one pair the judge gave no verdict for (worker/influence/judge/)."""

    pair_id: int
    order: Literal["chosen_first", "chosen_second"]
    reason: str


class JudgeMetrics(StoredMetrics):
    """`metrics` of a judge job (worker/jobs/judge.py): agreement with the labels, position bias
    and the requests it cost. Rates are over the orders (or pairs) that have a verdict."""

    kind: Literal["judge"]
    base_url: str | None = None
    model: str | None = None
    pairs: int | None = None
    pairs_judged_both_orders: int | None = None
    failed_orders: int | None = None
    agreement: float | None = Field(None, description="Verdicts that agree with the label.")
    agreement_chosen_first: float | None = None
    agreement_chosen_second: float | None = None
    agreement_both_orders: float | None = Field(
        None, description="Pairs whose two verdicts both agree with the label."
    )
    first_position_rate: float | None = Field(
        None, description="Verdicts that picked the response shown first (0.5: no bias)."
    )
    position_bias: float | None = Field(None, description="first_position_rate − 0.5.")
    consistency: float | None = Field(
        None, description="Pairs whose two orders picked the same response."
    )
    mean_confidence: float | None = None
    requests: int | None = Field(None, description="Requests sent to the server (retries too).")
    cache_hits: int | None = Field(None, description="Answers read from the cache instead.")
    retries: int | None = None
    rate_limited: int | None = Field(None, description="429 answers (each waited out).")
    retry_after_seconds: float | None = Field(
        None, description="Seconds waited because the server's Retry-After asked."
    )
    timeouts: int | None = None
    server_errors: int | None = None
    seconds: float | None = None
    seconds_per_request: float | None = Field(
        None, description="Mean latency of the answered requests (the estimate's rate)."
    )
    failures: list[JudgeFailure] | None = Field(
        None, description="The first 200 orders without a verdict, and why."
    )
    traceback: str | None = Field(None, description="The tail of the error of a failed job.")
    requeued_at: str | None = None
    resumed_at: str | None = None


AnyJobMetrics = AuditMetrics | VerifyMetrics | JudgeMetrics
"""Every kind's metrics model."""

JobMetrics = Annotated[AnyJobMetrics, Field(discriminator="kind")]
"""A job's metrics, typed by the job's kind (the stored dict carries none: `JobPublic` adds it)."""


@overload
def read_metrics(kind: Literal["audit"], stored: dict[str, Any]) -> AuditMetrics: ...
@overload
def read_metrics(kind: Literal["verify"], stored: dict[str, Any]) -> VerifyMetrics: ...
@overload
def read_metrics(kind: Literal["judge"], stored: dict[str, Any]) -> JudgeMetrics: ...
@overload
def read_metrics(kind: str, stored: dict[str, Any]) -> AnyJobMetrics: ...
def read_metrics(kind: str, stored: dict[str, Any]) -> AnyJobMetrics:
    """A stored metrics dict as its kind's model; keys no field declares are dropped (see
    `StoredMetrics`), at every level. A key whose stored value no longer fits its field (a
    shape an older version wrote) is dropped too, whole, rather than failing the read."""
    models: dict[str, type[AnyJobMetrics]] = {"verify": VerifyMetrics, "judge": JudgeMetrics}
    model = models.get(kind, AuditMetrics)
    data = {**stored, "kind": kind if kind in models else "audit"}
    while True:
        try:
            return model.model_validate(data, context={READ_STORED: True})
        except ValidationError as exc:
            misfits = {err["loc"][0] for err in exc.errors() if err["loc"]} - {"kind"}
            if not misfits & set(data):
                raise
            data = {key: value for key, value in data.items() if key not in misfits}


def stored_json(metrics: AnyJobMetrics) -> dict[str, Any]:
    """What a job's `metrics` column holds: the fields set, as JSON, without the `kind` tag."""
    return metrics.model_dump(mode="json", exclude_unset=True, exclude={"kind"})
