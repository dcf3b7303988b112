"""Datasets: upload, list, read, delete, and the review endpoints on their pairs."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

from fastapi import (
    APIRouter,
    BackgroundTasks,
    File,
    Form,
    HTTPException,
    Query,
    UploadFile,
    status,
)
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import select

from backend.deps import (
    CurrentUser,
    DatasetDep,
    OwnedDataset,
    PathId,
    ReviewedDataset,
    SessionDep,
    SettingsDep,
    dataset_role,
)
from backend.filters import FilterDep
from backend.models import Dataset, Job, User
from backend.schemas import (
    DB_ID_MAX,
    DB_OFFSET_MAX,
    BadRow,
    BulkAction,
    BulkResult,
    DatasetPublic,
    DatasetsPage,
    FlagCount,
    FlagTop,
    FlagUpdate,
    Interactions,
    PairPublic,
    PairsPage,
    ReviewActionPublic,
    ReviewEventPublic,
    ReviewUpdate,
    UploadPreview,
    UploadResult,
)
from backend.services import export, review, search, teams
from backend.services.ingest import UploadTooLarge, ingest, preview
from backend.services.query import SearchNotReady
from backend.services.query import resolve as review_query
from backend.services.scores import drop_partitions
from worker.influence.formats import parse_mapping
from worker.influence.io import LimitExceeded, PairFormatError

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


@contextmanager
def _upload_errors() -> Iterator[None]:
    """An upload's failures as 4xx: a bad file or row 422, a limit 413."""
    try:
        yield
    except LimitExceeded as exc:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=exc.as_dict()) from None
    except PairFormatError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=exc.as_dict()) from None
    except UploadTooLarge as exc:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=str(exc)) from None


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
    with _upload_errors():
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
    result.skipped = [BadRow(row=e.row, column=e.column, message=str(e)) for e in skipped]
    return result


@router.post("/preview", response_model=UploadPreview)
def preview_upload(
    settings: SettingsDep, user: CurrentUser, file: UploadFileField, mapping: MappingField = ""
) -> UploadPreview:
    """What uploading this file (with this column mapping) would store, from its first records:
    its columns, its first pairs and the bad rows among them. Nothing is stored."""
    with _upload_errors():
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
    return DatasetsPage(items=[_public(d, role, owner) for d, role, owner in rows], total=total)


def _public(dataset: Dataset, role: str, owner_name: str) -> DatasetPublic:
    public = DatasetPublic.model_validate(dataset)
    public.role = role  # type: ignore[assignment]
    public.owner_name = owner_name
    return public


@router.get("/{dataset_id}", response_model=DatasetPublic)
def read_dataset(dataset: DatasetDep, session: SessionDep, user: CurrentUser) -> DatasetPublic:
    """One dataset, with the caller's role on it."""
    owner = session.get(User, dataset.owner_id)
    role = dataset_role(session, user, dataset) or "viewer"
    return _public(dataset, role, owner.username if owner else "")


@router.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_dataset(dataset: OwnedDataset, session: SessionDep, settings: SettingsDep) -> None:
    """Delete a dataset with its pairs, jobs, scores, flags, stored original and job artifacts."""
    from worker.artifacts import ArtifactStore, dataset_prefix

    folder = Path(dataset.original_path).parent
    prefix = dataset_prefix(dataset.id)
    jobs = list(session.scalars(select(Job.id).where(Job.dataset_id == dataset.id)))
    session.delete(dataset)
    session.commit()
    drop_partitions(session, jobs)  # the jobs' emptied score tables (Postgres)
    shutil.rmtree(folder, ignore_errors=True)
    ArtifactStore(settings.artifact_root).delete(prefix)


@router.get("/{dataset_id}/pairs", response_model=PairsPage)
def list_pairs(
    dataset: DatasetDep,
    session: SessionDep,
    settings: SettingsDep,
    where: FilterDep,
    sort: Annotated[
        str,
        Query(
            description="'index' (file order), 'length' (total characters) or a score column "
            "of `job_id`; a leading '-' sorts descending",
            max_length=64,
        ),
    ] = "index",
    cursor: Annotated[
        str | None,
        Query(max_length=512, description="`next_cursor` of the previous page (keyset paging)"),
    ] = None,
    offset: Annotated[int, Query(ge=0, le=DB_OFFSET_MAX)] = 0,
    limit: Annotated[int, Query(ge=1)] = 50,
) -> PairsPage:
    """Pairs matching the filter, with their review state and, given `job_id`, that job's
    scores, percentiles and each pair's rank in the list. Page on with `cursor` (the previous
    page's `next_cursor`): every page then costs what the first does."""
    with _review_errors():
        page = review.list_pairs(
            session,
            dataset,
            where,
            sort=sort,
            cursor=cursor,
            offset=offset,
            limit=min(limit, settings.max_page_size),
        )
    # Already a validated PairsPage: serialised once, not validated again against the model.
    return Response(page.model_dump_json(), media_type="application/json")  # type: ignore[return-value]


@router.get("/{dataset_id}/pairs/{pair_id}", response_model=PairPublic)
def read_pair(
    pair_id: PathId,
    dataset: DatasetDep,
    session: SessionDep,
    job_id: Annotated[int | None, Query(ge=1, le=DB_ID_MAX)] = None,
) -> PairPublic:
    """One pair with its review state and, given `job_id`, its scores and percentiles."""
    with _review_errors():
        return review.read_pair(session, dataset, pair_id, job_id)


@router.get("/{dataset_id}/pairs/{pair_id}/history", response_model=list[ReviewEventPublic])
def pair_history(pair_id: PathId, dataset: DatasetDep, session: SessionDep) -> list:
    """Every change of the pair's review state or note, oldest first (undone ones marked)."""
    with _review_errors():
        return review.pair_history(session, dataset, pair_id)


@router.put("/{dataset_id}/pairs/{pair_id}/review", response_model=PairPublic)
def review_pair(
    pair_id: PathId,
    body: ReviewUpdate,
    dataset: ReviewedDataset,
    session: SessionDep,
    user: CurrentUser,
) -> PairPublic:
    """Set one pair's review state and note: 'flagged' leaves the export, 'swapped' exports it
    with chosen and rejected exchanged, 'kept' protects it from bulk actions."""
    with _review_errors():
        return review.set_state(session, dataset, pair_id, user, body.state, body.note)


@router.post("/{dataset_id}/review", response_model=BulkResult)
def bulk_review(
    body: BulkAction, dataset: ReviewedDataset, session: SessionDep, user: CurrentUser
) -> BulkResult:
    """Flag, keep, swap or clear every pair matching `filter` (not just a page) in one
    transaction; kept pairs are skipped unless `override_kept`. `dry_run` counts first."""
    with _review_errors():
        return review.bulk(
            session,
            dataset,
            user,
            body.action,
            body.filter,
            override_kept=body.override_kept,
            note=body.note,
            dry_run=body.dry_run,
        )


@router.post("/{dataset_id}/review/undo", response_model=BulkResult)
def undo_review(dataset: ReviewedDataset, session: SessionDep, user: CurrentUser) -> BulkResult:
    """Undo the last review action not yet undone: its pairs get back their exact earlier
    states and notes. Call again to undo the one before. A reviewer undoes only their own
    actions (403 otherwise); the owner undoes any."""
    with _review_errors():
        return review.undo(session, dataset, user)


@router.get("/{dataset_id}/review/actions", response_model=list[ReviewActionPublic])
def review_actions(
    dataset: DatasetDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list:
    """The dataset's review actions, newest first."""
    return review.list_actions(session, dataset, limit)


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
    except SearchNotReady as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc), headers={"Retry-After": "10"}
        ) from None
    except review.ReviewError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
    except review.UndoForbidden as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=str(exc)) from None


@router.put("/{dataset_id}/pairs/{pair_id}/flag", response_model=PairPublic)
def flag_pair(
    pair_id: PathId,
    body: FlagUpdate,
    dataset: ReviewedDataset,
    session: SessionDep,
    user: CurrentUser,
) -> PairPublic:
    """Flag (exclude from export) or unflag (back to unreviewed) one pair, with an optional
    note. `PUT .../review` sets any state."""
    with _review_errors():
        return review.set_flag(session, dataset, pair_id, user, body.flagged, body.note)


@router.post("/{dataset_id}/flags", response_model=FlagCount)
def flag_top(
    body: FlagTop, dataset: ReviewedDataset, session: SessionDep, user: CurrentUser
) -> FlagCount:
    """Flag the most harmful `top_fraction` of a job's scored pairs in one undoable action;
    kept pairs stay kept unless `override_kept`."""
    with _review_errors():
        result = review.flag_top(
            session,
            dataset,
            user,
            body.job_id,
            body.top_fraction,
            body.method,
            body.rule,
            body.budget,
            override_kept=body.override_kept,
        )
    return FlagCount(flagged=result.changed, protected=result.protected)


@router.delete("/{dataset_id}/flags", response_model=FlagCount)
def clear_flags(dataset: ReviewedDataset, session: SessionDep, user: CurrentUser) -> FlagCount:
    """Return every flagged pair to unreviewed (one undoable action). Notes are kept."""
    return FlagCount(unflagged=review.clear_flags(session, dataset, user))


@router.get(
    "/{dataset_id}/export",
    response_class=StreamingResponse,
    responses={200: {"content": {t: {} for t in export.MEDIA_TYPES.values()}}},
)
def export_dataset(
    dataset: DatasetDep,
    session: SessionDep,
    where: FilterDep,
    format: Annotated[export.ExportFormat, Query()] = "jsonl",
    exclude_flagged: bool = True,
    apply_swaps: Annotated[
        bool,
        Query(description="Write swapped pairs with chosen and rejected exchanged (default)."),
    ] = True,
    raw: Annotated[
        bool,
        Query(
            description="CSV only: write every cell exactly as stored. By default a cell that "
            "starts with =, +, -, @, tab or CR gets a leading single quote, so a spreadsheet "
            "shows it instead of running it as a formula. JSONL and Parquet are always exact."
        ),
    ] = False,
) -> StreamingResponse:
    """Stream the dataset in its uploaded schema, by default without the flagged pairs and with
    the swapped ones corrected; the pairs-list filter parameters narrow it further.

    Every metadata key of any pair is a column; Parquet columns whose values share no Arrow type
    hold their JSON text (listed in the schema metadata `prefaudit.json_columns`)."""
    with _review_errors():
        selection = export.Selection(
            exclude_flagged=exclude_flagged,
            apply_swaps=apply_swaps,
            query=review_query(session, dataset, where),
        )
    return _download(
        export.stream_export(session, dataset, format, selection, raw=raw),
        format,
        export.export_filename(dataset, format, exclude_flagged),
    )


@router.get(
    "/{dataset_id}/review-log",
    response_class=StreamingResponse,
    responses={200: {"content": {export.MEDIA_TYPES["jsonl"]: {}, export.MEDIA_TYPES["csv"]: {}}}},
)
def review_log(
    dataset: DatasetDep,
    session: SessionDep,
    format: Annotated[Literal["jsonl", "csv"], Query()] = "jsonl",
) -> StreamingResponse:
    """Every reviewed pair's decision: row, pair id, state, note, who and when (a file to keep
    beside the export)."""
    return _download(
        export.stream_review_log(session, dataset, format),
        format,
        export.review_log_filename(dataset, format),
    )


def _download(chunks: Iterator[bytes], format: str, filename: str) -> StreamingResponse:
    """A streamed file the browser saves under `filename`."""
    return StreamingResponse(
        chunks,
        media_type=export.MEDIA_TYPES[format],
        headers={"Content-Disposition": export.content_disposition(filename)},
    )


@contextmanager
def _review_errors() -> Iterator[None]:
    """A LookupError is a 404 and a ReviewError a 422, both with the message."""
    try:
        yield
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    except SearchNotReady as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc), headers={"Retry-After": "10"}
        ) from None
    except review.ReviewError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
    except review.UndoForbidden as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=str(exc)) from None
