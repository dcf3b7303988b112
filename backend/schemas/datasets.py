"""Datasets: uploads and their previews, sharing, transfers, dataset pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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
    tag_counts: dict[str, int] = Field(
        default_factory=dict,
        description="Pairs per exact-check tag (GET /methods/tags), every tag listed.",
    )


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
