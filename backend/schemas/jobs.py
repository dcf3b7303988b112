"""Jobs: creating an audit or a verification (options from the engine's config), job pages."""

from __future__ import annotations

import dataclasses
import time
import typing
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    computed_field,
    create_model,
    field_validator,
)

from backend.schemas.common import DB_ID_MAX
from backend.schemas.metrics import JobMetrics, read_metrics
from backend.storage import eta
from worker.influence.config import EngineConfig
from worker.influence.methods import AUTO, METHODS
from worker.influence.reward_columns import REWARD_MODEL_SLOTS

AUTO_DESCRIPTION = (
    "The job measures its own rankings on canaries (training pairs it presents swapped) and "
    "its validation pairs, and picks the one that finds them best (the loss unless another "
    "beats it; the length heuristic where the model is not shown to learn)."
)


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
    labels = [METHODS[name].label for name in names]
    descriptions = [METHODS[name].description for name in names]
    properties = schema.get("properties", {})
    items = properties.get("methods", {}).get("items")
    if isinstance(items, dict) and items.get("enum") == names:
        items.update({"x-enum-labels": labels, "x-enum-descriptions": descriptions})
    default = properties.get("default_method")
    if isinstance(default, dict) and default.get("enum") == [AUTO, *names]:
        default.update(
            {
                "x-enum-labels": ["chosen by the job", *labels],
                "x-enum-descriptions": [AUTO_DESCRIPTION, *descriptions],
            }
        )


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
    target_set_id: int | None = Field(
        None,
        ge=1,
        le=DB_ID_MAX,
        description="A target set of this dataset (a targeted audit): influence, gradient "
        "similarity, DataInf, TracIn and group measure against its BT loss instead of the "
        "validation loss; the training-loss scores and the validation figures do not change. "
        "Runs in one task.",
    )

    reward_models: list[Annotated[str, Field(min_length=1, max_length=1000)]] = Field(
        default_factory=list,
        max_length=REWARD_MODEL_SLOTS,
        description=(
            f"Outside reward models to score every training pair with (at most "
            f"{REWARD_MODEL_SLOTS}): each a local transformers directory, a hub id, or "
            "'job:<id>' for the model an earlier audit of yours saved with save_model. Each "
            "fills a margin column (rm_margin_1, ...); their mean, spread, votes against the "
            "label and an ambiguous flag fill rm_mean, rm_spread, rm_votes_against, "
            "rm_ambiguous. Runs on the GPU queue, shard by shard."
        ),
    )

    @field_validator("reward_models")
    @classmethod
    def _distinct_models(cls, value: list[str]) -> list[str]:
        models = [name.strip() for name in value]
        if any(not name for name in models):
            raise ValueError("a reward model is blank; give a directory, a hub id or job:<id>")
        if len(set(models)) != len(models):
            raise ValueError("reward_models names a model twice")
        return models

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

    timing: dict[str, Any] | None = Field(None, exclude=True)
    """The stages' measured timing (backend/storage/eta.py): read for the ETA, not shown."""

    @computed_field(  # type: ignore[prop-decorator]
        description="Seconds left of a running job, from measured stage rates: the current "
        "stage's own rate blended with the time the same stage took in recent jobs of this "
        "kind, mode, model and device, plus the later stages at their recent rates, scaled by "
        "this job's size and pace. Null while there is nothing measured to say it from (no "
        "finished job of the kind yet, or a stage just started): show 'estimating'."
    )
    @property
    def eta_seconds(self) -> float | None:
        if self.status != "running":
            return None
        return eta.eta_seconds(self.timing, time.time())

    @field_validator("metrics", mode="before")
    @classmethod
    def _metrics_of_kind(cls, value: Any, info: ValidationInfo) -> Any:
        """Stored metrics are a plain dict: read it as the job's kind's model, leniently (keys an
        older version wrote and no model declares any more are dropped: `read_metrics`)."""
        if isinstance(value, dict):
            return read_metrics(str(info.data.get("kind")), value)
        return value


class JobsPage(BaseModel):
    items: list[JobPublic]
    total: int


class SavedModel(BaseModel):
    """A reward model an earlier audit of yours saved (`save_model`): name it in an audit's
    `reward_models` as `ref`."""

    ref: str = Field(description="How `reward_models` names it: 'job:<id>'.")
    job_id: int
    dataset_id: int
    dataset_name: str
    model: str = Field(description="The backbone the audit trained (its `model`).")
    path: str = Field(description="Where the model directory lies on the server.")
    finished_at: datetime | None
