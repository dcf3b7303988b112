"""Datasets: upload (and preview an upload), list, read and delete."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, File, Form, Query, UploadFile, status
from sqlalchemy import select

from backend.deps import (
    CurrentUser,
    DatasetDep,
    OwnedDataset,
    ReviewedDataset,
    SessionDep,
    SettingsDep,
    access_dataset,
    dataset_role,
)
from backend.ingest.mapping import parse_mapping
from backend.models import Dataset, Job, User
from backend.schemas import (
    DB_OFFSET_MAX,
    BadRow,
    ContaminationCheck,
    ContaminationResult,
    DatasetPublic,
    DatasetsPage,
    UploadPreview,
    UploadResult,
)
from backend.services import search, teams
from backend.services.checks import check_contamination
from backend.services.ingest import ingest, preview
from backend.services.scores import drop_partitions
from backend.storage.artifacts import ArtifactStore, dataset_prefix
from backend.storage.tags import tag_counts

router = APIRouter(prefix="/datasets", tags=["datasets"])


UploadFileField = Annotated[
    UploadFile,
    File(
        description="JSONL (.jsonl[.gz]), JSON, CSV, TSV, Parquet or Arrow: prompt / chosen / "
        "rejected texts, HH-RLHF transcripts, chat-message lists, SHP or UltraFeedback records"
    ),
]
MappingField = Annotated[
    str,
    Form(
        max_length=2000,
        description='JSON naming the file\'s columns that hold the pair, e.g. {"prompt": '
        '"question", "chosen": "good", "rejected": "bad"}; empty: the columns as named',
    ),
]


@router.post("", response_model=UploadResult, status_code=status.HTTP_201_CREATED)
def upload_dataset(
    background: BackgroundTasks,
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
    file: UploadFileField,
    name: Annotated[str, Form(max_length=256)] = "",
    on_bad_rows: Annotated[
        Literal["reject", "skip"],
        Form(
            description="'reject' (default): a bad row refuses the file, and the 422 lists every "
            "bad row (up to 1,000). 'skip': store the good rows; the response lists the skipped "
            "ones."
        ),
    ] = "reject",
    mapping: MappingField = "",
) -> UploadResult:
    """Upload preference pairs; a bad row rejects the whole file with a 422 naming it (and the
    others), unless `on_bad_rows` is 'skip'."""
    dataset, skipped = ingest(
        session,
        settings,
        user,
        name,
        file.filename or "upload",
        file.file,
        on_bad_rows,
        parse_mapping(mapping),
    )
    if not dataset.search_ready:
        background.add_task(search.build_in_background, dataset.id)  # after the response
    result = UploadResult.model_validate(dataset)
    result.owner_name = user.username
    result.tag_counts = tag_counts(session, [dataset.id])[dataset.id]
    result.skipped = [BadRow(row=e.row, column=e.column, message=str(e)) for e in skipped]
    return result


@router.post("/preview", response_model=UploadPreview)
def preview_upload(
    settings: SettingsDep, user: CurrentUser, file: UploadFileField, mapping: MappingField = ""
) -> UploadPreview:
    """What uploading this file (with this column mapping) would store, from its first records:
    its columns, its first pairs and the bad rows among them. Nothing is stored."""
    return UploadPreview.model_validate(
        preview(settings, file.filename or "upload", file.file, parse_mapping(mapping))
    )


@router.get("", response_model=DatasetsPage)
def list_datasets(
    session: SessionDep,
    user: CurrentUser,
    offset: Annotated[int, Query(ge=0, le=DB_OFFSET_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DatasetsPage:
    """The caller's datasets and those shared with them, newest first, each with the caller's
    role."""
    total, rows = teams.visible_datasets(session, user, offset, limit)
    counts = tag_counts(session, [d.id for d, _, _ in rows])
    items = [_public(d, role, owner, counts[d.id]) for d, role, owner in rows]
    return DatasetsPage(items=items, total=total)


def _public(dataset: Dataset, role: str, owner_name: str, counts: dict[str, int]) -> DatasetPublic:
    public = DatasetPublic.model_validate(dataset)
    public.role = role  # type: ignore[assignment]
    public.owner_name = owner_name
    public.tag_counts = counts
    return public


@router.get("/{dataset_id}", response_model=DatasetPublic)
def read_dataset(dataset: DatasetDep, session: SessionDep, user: CurrentUser) -> DatasetPublic:
    """One dataset, with the caller's role on it."""
    owner = session.get(User, dataset.owner_id)
    role = dataset_role(session, user, dataset) or "viewer"
    counts = tag_counts(session, [dataset.id])[dataset.id]
    return _public(dataset, role, owner.username if owner else "", counts)


@router.post("/{dataset_id}/checks/contamination", response_model=ContaminationResult)
def contamination_check(
    dataset: ReviewedDataset, body: ContaminationCheck, session: SessionDep, user: CurrentUser
) -> ContaminationResult:
    """Tag the pairs whose prompt shares an n-gram with a prompt of another dataset you can
    read, used as the evaluation set (tag `contamination`; a rerun replaces the tags)."""
    evaluation = access_dataset(session, user, body.eval_dataset_id, "viewer")
    return check_contamination(session, dataset, evaluation, body.n)


@router.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_dataset(dataset: OwnedDataset, session: SessionDep, settings: SettingsDep) -> None:
    """Delete a dataset with its pairs, jobs, scores, flags, stored original and job artifacts."""
    folder = Path(dataset.original_path).parent
    prefix = dataset_prefix(dataset.id)
    jobs = list(session.scalars(select(Job.id).where(Job.dataset_id == dataset.id)))
    session.delete(dataset)
    session.commit()
    drop_partitions(session, jobs)  # the jobs' emptied score tables (Postgres)
    shutil.rmtree(folder, ignore_errors=True)
    ArtifactStore(settings.artifact_root).delete(prefix)
