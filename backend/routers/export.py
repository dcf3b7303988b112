"""Downloads of a dataset: the export in its uploaded schema, and the review log."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from backend.deps import DatasetDep, SessionDep
from backend.errors import BadInput
from backend.filters import FilterDep
from backend.schemas import DB_ID_MAX
from backend.services import export
from backend.services.query import resolve as review_query
from backend.services.soft_labels import DEFAULT_BAND, AmbiguousMode, soft_labels

router = APIRouter(prefix="/datasets", tags=["datasets"])


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
    soft_labels_job: Annotated[
        int | None,
        Query(
            ge=1,
            le=DB_ID_MAX,
            description="Add confidence, label_smoothing, margin and confidence_source columns "
            "from this audit's or judge job's scores (README: soft labels).",
        ),
    ] = None,
    ambiguous: Annotated[
        AmbiguousMode,
        Query(
            description="With soft_labels_job: write every pair (include), leave the ambiguous "
            "ones out (exclude) or write only them (only: the separate file of ambiguous pairs). "
            "Ambiguous: the job tagged the pair `ambiguous` (as tag=ambiguous lists them)."
        ),
    ] = "include",
    ambiguous_band: Annotated[
        float,
        Query(
            ge=0,
            le=0.5,
            description="Also ambiguous: confidence within this of 0.5 (0, the default: the "
            "tag alone decides).",
        ),
    ] = DEFAULT_BAND,
) -> StreamingResponse:
    """Stream the dataset in its uploaded schema, by default without the flagged pairs and with
    the swapped ones corrected; the pairs-list filter parameters narrow it further.

    Every metadata key of any pair is a column; Parquet columns whose values share no Arrow type
    hold their JSON text (listed in the schema metadata `prefaudit.json_columns`)."""
    if soft_labels_job is None and ambiguous != "include":
        raise BadInput("ambiguous=exclude or only needs soft_labels_job (whose scores decide)")
    selection = export.Selection(
        exclude_flagged=exclude_flagged,
        apply_swaps=apply_swaps,
        query=review_query(session, dataset, where),
        soft=None
        if soft_labels_job is None
        else soft_labels(session, dataset, soft_labels_job, ambiguous, ambiguous_band),
    )
    filename = export.export_filename(dataset, format, exclude_flagged)
    if ambiguous == "only":
        filename = filename.replace(f".{format}", f"-ambiguous.{format}")
    return _download(
        export.stream_export(session, dataset, format, selection, raw=raw), format, filename
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
