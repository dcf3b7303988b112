"""Target sets of a dataset (build, list, show, delete) and the comparison of two targeted
audits' rankings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy.orm import Session

from backend.deps import CurrentUser, DatasetDep, OwnedDataset, PathId, SessionDep, access_dataset
from backend.models import TargetSet
from backend.schemas import DB_ID_MAX
from backend.schemas.targets import (
    FromDataset,
    TargetComparison,
    TargetPairPublic,
    TargetSetCreate,
    TargetSetDetail,
    TargetSetPublic,
    TargetSetsPage,
)
from backend.services import targets

router = APIRouter(prefix="/datasets", tags=["targets"])


@router.post(
    "/{dataset_id}/target-sets",
    response_model=TargetSetDetail,
    status_code=status.HTTP_201_CREATED,
)
def create_target_set(
    body: TargetSetCreate, dataset: OwnedDataset, session: SessionDep, user: CurrentUser
) -> TargetSetDetail:
    """Build a target set (20–500 pairs) from reviewed pairs, a rule, another dataset or pairs;
    a size outside the limits is a 422 saying how many pairs the source gave."""
    other = None
    if isinstance(body.source, FromDataset):
        other = access_dataset(session, user, body.source.dataset_id, "viewer")
    target = targets.create_target_set(session, dataset, user, body, other)
    return _detail(session, target)


@router.get("/{dataset_id}/target-sets", response_model=TargetSetsPage)
def list_target_sets(dataset: DatasetDep, session: SessionDep) -> TargetSetsPage:
    """The dataset's target sets, oldest first."""
    items = targets.list_target_sets(session, dataset)
    return TargetSetsPage(
        items=[TargetSetPublic.model_validate(t) for t in items], total=len(items)
    )


@router.get("/{dataset_id}/target-sets/{target_set_id}", response_model=TargetSetDetail)
def read_target_set(
    target_set_id: PathId, dataset: DatasetDep, session: SessionDep
) -> TargetSetDetail:
    """One target set: how it was built, its size and its first pairs."""
    return _detail(session, targets.get_target_set(session, dataset, target_set_id))


@router.delete("/{dataset_id}/target-sets/{target_set_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_target_set(target_set_id: PathId, dataset: OwnedDataset, session: SessionDep) -> None:
    """Delete a target set (audits that used it keep their scores and metrics)."""
    targets.delete_target_set(session, targets.get_target_set(session, dataset, target_set_id))


@router.get("/{dataset_id}/target-comparison", response_model=TargetComparison)
def compare_targets(
    dataset: DatasetDep,
    session: SessionDep,
    job_a: Annotated[int, Query(ge=1, le=DB_ID_MAX)],
    job_b: Annotated[int, Query(ge=1, le=DB_ID_MAX)],
    column: Annotated[str, Query(max_length=64)] = "harm_influence",
    k: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> TargetComparison:
    """Two audits of this dataset side by side by one harm column: each one's top k, their
    overlap, the rank correlation and a scatter of the two columns."""
    return targets.compare(session, dataset, (job_a, job_b), column, k)


def _detail(session: Session, target: TargetSet) -> TargetSetDetail:
    base = TargetSetPublic.model_validate(target)
    sample = [TargetPairPublic.model_validate(p) for p in targets.sample(session, target)]
    return TargetSetDetail(**base.model_dump(), sample=sample)
