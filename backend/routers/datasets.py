"""Datasets: upload, list, read, delete, and the review endpoints on their pairs."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, HTTPException, Query, UploadFile, status
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select

from backend.deps import CurrentUser, DatasetDep, PathId, SessionDep, SettingsDep
from backend.models import Dataset
from backend.schemas import (
    DB_ID_MAX,
    DB_OFFSET_MAX,
    BadRow,
    DatasetPublic,
    DatasetsPage,
    FlagCount,
    FlagTop,
    FlagUpdate,
    Interactions,
    PairPublic,
    PairsPage,
    UploadResult,
)
from backend.services import export, review
from backend.services.ingest import UploadTooLarge, ingest
from worker.influence.io import LimitExceeded, PairFormatError

router = APIRouter(prefix="/datasets", tags=["datasets"])


@router.post("", response_model=UploadResult, status_code=status.HTTP_201_CREATED)
def upload_dataset(
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
    file: Annotated[UploadFile, File(description="JSONL (.jsonl[.gz]), JSON, CSV or Parquet")],
    name: Annotated[str, Form(max_length=256)] = "",
    on_bad_rows: Annotated[
        Literal["reject", "skip"],
        Form(
            description="'reject' (default): a bad row refuses the file, and the 422 lists every "
            "bad row (up to 1,000). 'skip': store the good rows; the response lists the skipped "
            "ones."
        ),
    ] = "reject",
) -> UploadResult:
    """Upload preference pairs; a bad row rejects the whole file with a 422 naming it (and the
    others), unless `on_bad_rows` is 'skip'."""
    try:
        dataset, skipped = ingest(
            session, settings, user, name, file.filename or "upload", file.file, on_bad_rows
        )
    except LimitExceeded as exc:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=exc.as_dict()) from None
    except PairFormatError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=exc.as_dict()) from None
    except UploadTooLarge as exc:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=str(exc)) from None
    result = UploadResult.model_validate(dataset)
    result.skipped = [BadRow(row=e.row, column=e.column, message=str(e)) for e in skipped]
    return result


@router.get("", response_model=DatasetsPage)
def list_datasets(
    session: SessionDep,
    user: CurrentUser,
    offset: Annotated[int, Query(ge=0, le=DB_OFFSET_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DatasetsPage:
    """The caller's datasets, newest first."""
    mine = select(Dataset).where(Dataset.owner_id == user.id)
    total = session.scalar(select(func.count()).select_from(mine.subquery())) or 0
    rows = session.scalars(mine.order_by(Dataset.id.desc()).offset(offset).limit(limit))
    return DatasetsPage(items=[DatasetPublic.model_validate(d) for d in rows], total=total)


@router.get("/{dataset_id}", response_model=DatasetPublic)
def read_dataset(dataset: DatasetDep) -> DatasetPublic:
    """One dataset."""
    return DatasetPublic.model_validate(dataset)


@router.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_dataset(dataset: DatasetDep, session: SessionDep, settings: SettingsDep) -> None:
    """Delete a dataset with its pairs, jobs, scores, flags, stored original and job artifacts."""
    from worker.artifacts import ArtifactStore, dataset_prefix

    folder = Path(dataset.original_path).parent
    prefix = dataset_prefix(dataset.id)
    session.delete(dataset)
    session.commit()
    shutil.rmtree(folder, ignore_errors=True)
    ArtifactStore(settings.artifact_root).delete(prefix)


@router.get("/{dataset_id}/pairs", response_model=PairsPage)
def list_pairs(
    dataset: DatasetDep,
    session: SessionDep,
    settings: SettingsDep,
    job_id: Annotated[int | None, Query(ge=1, le=DB_ID_MAX)] = None,
    sort: Annotated[str, Query(description="'index' or a score column, '-' for descending")] = (
        "index"
    ),
    flagged: bool | None = None,
    split: Annotated[str, Query(pattern="^(train|val|all)$")] = "train",
    offset: Annotated[int, Query(ge=0, le=DB_OFFSET_MAX)] = 0,
    limit: Annotated[int, Query(ge=1)] = 50,
) -> PairsPage:
    """Pairs with their flags and, given `job_id`, that job's scores (training pairs only)."""
    try:
        return review.list_pairs(
            session,
            dataset,
            job_id=job_id,
            sort=sort,
            flagged=flagged,
            split=split,
            offset=offset,
            limit=min(limit, settings.max_page_size),
        )
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    except review.ReviewError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None


@router.get("/{dataset_id}/pairs/{pair_id}/interactions", response_model=Interactions)
def pair_interactions(
    pair_id: PathId,
    job_id: Annotated[int, Query(ge=1, le=DB_ID_MAX, description="A group audit's id")],
    dataset: DatasetDep,
    session: SessionDep,
) -> Interactions:
    """The pairs this one interacts with most in a `group` audit: κ > 0 redundant (removing both
    does less than the sum), κ < 0 complementary (more), strongest first."""
    try:
        return review.interactions(session, dataset, job_id, pair_id)
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    except review.ReviewError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None


@router.put("/{dataset_id}/pairs/{pair_id}/flag", response_model=PairPublic)
def flag_pair(
    pair_id: PathId,
    body: FlagUpdate,
    dataset: DatasetDep,
    session: SessionDep,
    user: CurrentUser,
) -> PairPublic:
    """Flag (exclude from export) or unflag one pair, with an optional note."""
    try:
        return review.set_flag(session, dataset, pair_id, user, body.flagged, body.note)
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None


@router.post("/{dataset_id}/flags", response_model=FlagCount)
def flag_top(
    body: FlagTop, dataset: DatasetDep, session: SessionDep, user: CurrentUser
) -> FlagCount:
    """Flag the most harmful `top_fraction` of a job's scored pairs in one call."""
    try:
        n = review.flag_top(
            session,
            dataset,
            user,
            body.job_id,
            body.top_fraction,
            body.method,
            body.rule,
            body.budget,
        )
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    except review.ReviewError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
    return FlagCount(flagged=n)


@router.delete("/{dataset_id}/flags", response_model=FlagCount)
def clear_flags(dataset: DatasetDep, session: SessionDep) -> FlagCount:
    """Remove every flag of the dataset."""
    return FlagCount(unflagged=review.clear_flags(session, dataset))


@router.get(
    "/{dataset_id}/export",
    response_class=StreamingResponse,
    responses={200: {"content": {t: {} for t in export.MEDIA_TYPES.values()}}},
)
def export_dataset(
    dataset: DatasetDep,
    session: SessionDep,
    format: Annotated[export.ExportFormat, Query()] = "jsonl",
    exclude_flagged: bool = True,
    raw: Annotated[
        bool,
        Query(
            description="CSV only: write every cell exactly as stored. By default a cell that "
            "starts with =, +, -, @, tab or CR gets a leading single quote, so a spreadsheet "
            "shows it instead of running it as a formula. JSONL and Parquet are always exact."
        ),
    ] = False,
) -> StreamingResponse:
    """Stream the dataset in its uploaded schema, by default without the flagged pairs.

    Every metadata key of any pair is a column; Parquet columns whose values share no Arrow type
    hold their JSON text (listed in the schema metadata `prefaudit.json_columns`)."""
    filename = export.export_filename(dataset, format, exclude_flagged)
    return StreamingResponse(
        export.stream_export(session, dataset, format, exclude_flagged, raw=raw),
        media_type=export.MEDIA_TYPES[format],
        headers={"Content-Disposition": export.content_disposition(filename)},
    )
