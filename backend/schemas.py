"""Request and response bodies, named by role (`DatasetPublic`, `PairsPage`, `JobCreate`, ...)."""

from __future__ import annotations

import dataclasses
import typing
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, create_model

from worker.influence.config import EngineConfig


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: str
    broker: str


class LoginRequest(BaseModel):
    username: str
    password: str


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    is_admin: bool


class TokenCreate(BaseModel):
    name: str = Field("api", max_length=128)


class TokenPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


class TokenIssued(BaseModel):
    """The token itself is shown only here, once."""

    access_token: str
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
    created_at: datetime


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


class PairPublic(BaseModel):
    id: int
    index: int
    prompt: str
    chosen: str
    rejected: str
    metadata: dict[str, Any]
    flagged: bool
    note: str | None
    scores: PairScores | None = None


class PairsPage(BaseModel):
    items: list[PairPublic]
    total: int


class FlagUpdate(BaseModel):
    flagged: bool
    note: str | None = Field(None, max_length=10_000)


class FlagTop(BaseModel):
    job_id: int
    top_fraction: float = Field(0.1, gt=0, le=1, description="Fraction of scored pairs to flag.")
    method: str = Field(
        "harm", description="Score column to rank by (default: the job's default `harm`)."
    )


class FlagCount(BaseModel):
    flagged: int = 0
    unflagged: int = 0


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


_JobCreateBase = create_model(  # type: ignore[call-overload]
    "AuditOptions", __config__=ConfigDict(extra="forbid"), **_engine_fields()
)


class AuditCreate(_JobCreateBase):  # type: ignore[misc,valid-type]
    """An audit job. Only `model` is usually given; every other option has a default."""

    kind: Literal["audit"] = "audit"
    val_fraction: float = Field(
        0.1, gt=0, lt=1, description="Fraction of pairs split off (seeded) as the validation set."
    )
    val_dataset_id: int | None = Field(
        None, description="Use this dataset as the validation set instead of a split."
    )

    def engine_config(self) -> EngineConfig:
        names = {f.name for f in dataclasses.fields(EngineConfig)}
        return EngineConfig(**{k: v for k, v in self.model_dump().items() if k in names})


class VerifyCreate(BaseModel):
    """Retrain with the audit's recipe on all pairs, the pruned set and a random removal of the
    same size, for several seeds, and compare them on the validation set (or a test dataset)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["verify"]
    audit_job_id: int = Field(description="A succeeded audit job of this dataset.")
    method: str = Field("harm", description="Score column whose top `fraction` is pruned.")
    fraction: float = Field(0.1, gt=0, lt=1, description="Fraction of training pairs to prune.")
    use_flags: bool = Field(
        False, description="Prune the dataset's currently flagged pairs instead of a top fraction."
    )
    seeds: int = Field(3, ge=1, le=20, description="Retrains per arm (seeds 0..seeds-1).")
    test_dataset_id: int | None = Field(
        None, description="Evaluate on this dataset instead of the audit's validation split."
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
    metrics: dict[str, Any] | None
    config: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class Histogram(BaseModel):
    """Counts of one score column over a job's training pairs, in equal-width bins."""

    column: str
    n: int
    edges: list[float] = Field(description="len(counts) + 1 bin edges, ascending.")
    counts: list[int]
    quantiles: dict[str, float] = Field(description="p10, p50, p90 of the column.")


class JobsPage(BaseModel):
    items: list[JobPublic]
    total: int
