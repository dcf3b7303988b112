"""Sharing and transferring a dataset (its owner; an admin may transfer) and managing accounts
(admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from backend.deps import (
    AdminUser,
    CurrentUser,
    OwnedDataset,
    PathId,
    SessionDep,
    access_dataset,
)
from backend.errors import NotFound
from backend.models import Dataset
from backend.schemas import (
    AdminUserCreate,
    AdminUserPublic,
    AdminUserUpdate,
    SharePublic,
    ShareUpdate,
    TransferCreate,
    TransferPublic,
)
from backend.services import teams

router = APIRouter(tags=["teams"])


def _share_public(row, username: str) -> SharePublic:  # type: ignore[no-untyped-def]
    return SharePublic(
        user_id=row.user_id, username=username, role=row.role, created_at=row.created_at
    )


@router.get("/datasets/{dataset_id}/shares", response_model=list[SharePublic])
def list_shares(dataset: OwnedDataset, session: SessionDep) -> list[SharePublic]:
    """Who else can see the dataset, and as what (its owner only)."""
    return [_share_public(row, name) for row, name in teams.shares(session, dataset)]


@router.put("/datasets/{dataset_id}/shares", response_model=SharePublic)
def share_dataset(body: ShareUpdate, dataset: OwnedDataset, session: SessionDep) -> SharePublic:
    """Share the dataset with a user as `viewer` (read, export) or `reviewer` (also flag, keep,
    swap, note), or change their role (its owner only)."""
    row, name = teams.share(session, dataset, body.username, body.role)
    return _share_public(row, name)


@router.delete("/datasets/{dataset_id}/shares/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def unshare_dataset(user_id: PathId, dataset: OwnedDataset, session: SessionDep) -> None:
    """Stop sharing the dataset with a user (their past decisions stay, with their name)."""
    teams.unshare(session, dataset, user_id)


def _transferable(dataset_id: PathId, session: SessionDep, user: CurrentUser) -> Dataset:
    """Its owner, or an admin (who may see no share of it), may transfer a dataset."""
    if user.is_admin:
        dataset = session.get(Dataset, dataset_id)
        if dataset is None:
            raise NotFound(f"dataset {dataset_id} not found")
        return dataset
    return access_dataset(session, user, dataset_id, "owner")


@router.post("/datasets/{dataset_id}/transfer", response_model=TransferPublic)
def transfer_dataset(
    body: TransferCreate,
    dataset: Annotated[Dataset, Depends(_transferable)],
    session: SessionDep,
) -> TransferPublic:
    """Make another account the dataset's owner, with its jobs, scores, review history and
    shares (its owner or an admin). The old owner keeps no access; share it back if needed."""
    owner, moved = teams.transfer(session, dataset, body.username)
    return TransferPublic(
        dataset_id=dataset.id, owner_id=owner.id, owner_name=owner.username, jobs_moved=moved
    )


@router.get("/admin/users", response_model=list[AdminUserPublic])
def list_users(admin: AdminUser, session: SessionDep) -> list[AdminUserPublic]:
    """Every account, with how many datasets it owns (admins only)."""
    out = []
    for user, n in teams.users(session):
        public = AdminUserPublic.model_validate(user)
        public.n_datasets = n
        out.append(public)
    return out


@router.post("/admin/users", response_model=AdminUserPublic, status_code=status.HTTP_201_CREATED)
def create_user(body: AdminUserCreate, admin: AdminUser, session: SessionDep) -> AdminUserPublic:
    """Create an account (admins only); its user logs in with this password."""
    user = teams.add_user(session, body.username, body.password, body.is_admin)
    return AdminUserPublic.model_validate(user)


@router.patch("/admin/users/{user_id}", response_model=AdminUserPublic)
def update_user(
    user_id: PathId, body: AdminUserUpdate, admin: AdminUser, session: SessionDep
) -> AdminUserPublic:
    """Grant or withdraw the admin right, or set a new password, which ends the user's
    sessions and tokens (admins only; an admin cannot withdraw their own right)."""
    user = teams.update_user(session, admin, user_id, body.is_admin, body.password)
    return AdminUserPublic.model_validate(user)


@router.delete("/admin/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_user(
    user_id: PathId,
    admin: AdminUser,
    session: SessionDep,
    transfer_to: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=128,
            description="Hand the account's datasets (with their jobs) to this user first.",
        ),
    ] = None,
) -> None:
    """Delete an account (admins only; not one's own). One that owns datasets is refused (422)
    unless `transfer_to` names who takes them."""
    teams.remove_user(session, admin, user_id, transfer_to)
