"""A job's stored metrics, typed by kind: audit (trust, mislabelled estimate, group) and verify."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer


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
