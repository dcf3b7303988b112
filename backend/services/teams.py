"""Teams: sharing a dataset with other users as viewer or reviewer, and the admin's management
of user accounts."""

from __future__ import annotations

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.errors import BadInput, NotFound
from backend.models import ApiToken, Dataset, DatasetShare, Job, User
from backend.security import hash_password
from backend.services.users import create_user


class TeamError(BadInput):
    """A request that cannot be done as asked (422), with what to do instead."""


def visible_datasets(session: Session, user: User, offset: int, limit: int):  # type: ignore[no-untyped-def]
    """(total, [(dataset, the caller's role, the owner's username)]) of the datasets the caller
    owns or has been given, newest first."""
    share = and_(DatasetShare.dataset_id == Dataset.id, DatasetShare.user_id == user.id)
    query = (
        select(Dataset, DatasetShare.role, User.username)
        .join(User, User.id == Dataset.owner_id)
        .outerjoin(DatasetShare, share)
        .where(or_(Dataset.owner_id == user.id, DatasetShare.user_id == user.id))
    )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(Dataset.id.desc()).offset(offset).limit(limit))
    return total, [(d, "owner" if d.owner_id == user.id else role, name) for d, role, name in rows]


def shares(session: Session, dataset: Dataset) -> list[tuple[DatasetShare, str]]:
    rows = session.execute(
        select(DatasetShare, User.username)
        .join(User, User.id == DatasetShare.user_id)
        .where(DatasetShare.dataset_id == dataset.id)
        .order_by(User.username)
    )
    return [(share, name) for share, name in rows]


def share(session: Session, dataset: Dataset, username: str, role: str) -> tuple[DatasetShare, str]:
    """Give `username` `role` on the dataset (or change it)."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user is named {username!r}; an admin can create the account")
    if user.id == dataset.owner_id:
        raise TeamError(f"{username!r} owns dataset {dataset.id}: an owner has every right")
    row: DatasetShare | None = None
    for attempt in (1, 2):
        row = session.get(DatasetShare, (dataset.id, user.id))
        if row is None:
            row = DatasetShare(dataset_id=dataset.id, user_id=user.id, role=role)
            session.add(row)
        else:
            row.role = role
        try:
            session.commit()
        except IntegrityError:
            # A concurrent request shared it first: set the role on its row (last one wins).
            session.rollback()
            if attempt == 2:
                raise
            continue
        break
    assert row is not None
    return row, user.username


def unshare(session: Session, dataset: Dataset, user_id: int) -> None:
    deleted = session.execute(
        delete(DatasetShare).where(
            DatasetShare.dataset_id == dataset.id, DatasetShare.user_id == user_id
        )
    )
    if not deleted.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"dataset {dataset.id} is not shared with user {user_id}")
    session.commit()


def transfer(
    session: Session, dataset: Dataset, username: str, *, commit: bool = True
) -> tuple[User, int]:
    """Make `username` the dataset's owner, with its jobs (scores, review history and shares
    stay with the dataset). The old owner keeps no access; a share the new owner had goes (an
    owner has every right). Returns (the new owner, how many jobs moved)."""
    new_owner = session.scalar(select(User).where(User.username == username))
    if new_owner is None:
        raise NotFound(f"no user is named {username!r}; an admin can create the account")
    # Lock the row: a concurrent share or a second transfer waits for this one (Postgres).
    locked = session.scalar(select(Dataset).where(Dataset.id == dataset.id).with_for_update())
    assert locked is not None
    if locked.owner_id == new_owner.id:
        raise TeamError(f"{username!r} already owns dataset {dataset.id}")
    locked.owner_id = new_owner.id
    moved = session.execute(
        update(Job).where(Job.dataset_id == dataset.id).values(owner_id=new_owner.id)
    )
    session.execute(
        delete(DatasetShare).where(
            DatasetShare.dataset_id == dataset.id, DatasetShare.user_id == new_owner.id
        )
    )
    if commit:
        session.commit()
    return new_owner, int(moved.rowcount or 0)  # type: ignore[attr-defined]


def users(session: Session) -> list[tuple[User, int]]:
    """Every account with how many datasets it owns."""
    owned = select(Dataset.owner_id, func.count().label("n")).group_by(Dataset.owner_id).subquery()
    rows = session.execute(
        select(User, func.coalesce(owned.c.n, 0))
        .outerjoin(owned, owned.c.owner_id == User.id)
        .order_by(User.username)
    )
    return [(user, n) for user, n in rows]


def add_user(session: Session, username: str, password: str, is_admin: bool) -> User:
    user = create_user(session, username.strip(), password, is_admin=is_admin)
    session.commit()
    return user


def update_user(
    session: Session, admin: User, user_id: int, is_admin: bool | None, password: str | None
) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    if is_admin is False and user.id == admin.id:
        raise TeamError("you cannot remove your own admin right (another admin can)")
    if is_admin is False and user.is_admin:
        _keep_an_admin(session, user)
    if is_admin is not None:
        user.is_admin = is_admin
    if password is not None:
        user.password_hash = hash_password(password)
        # A new password ends every session and token the old one opened.
        session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    session.commit()
    return user


def remove_user(session: Session, admin: User, user_id: int, transfer_to: str | None = None) -> int:
    """Delete an account; with `transfer_to`, its datasets first go to that user (with their
    jobs). Returns how many datasets were transferred."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    if user.id == admin.id:
        raise TeamError("you cannot delete your own account")
    if user.is_admin:
        _keep_an_admin(session, user)
    owned = list(session.scalars(select(Dataset).where(Dataset.owner_id == user.id)))
    if owned and transfer_to is None:
        raise TeamError(
            f"{user.username!r} owns {len(owned)} dataset{'s' if len(owned) != 1 else ''}: "
            "transfer them first (transfer_to=USERNAME hands them, with their jobs, to another "
            "account), or their owner deletes them"
        )
    if owned and transfer_to == user.username:
        raise TeamError("transfer_to names the account being deleted; name another account")
    for dataset in owned:
        assert transfer_to is not None
        transfer(session, dataset, transfer_to, commit=False)  # one commit: all or nothing
    session.delete(user)
    session.commit()
    return len(owned)


def _keep_an_admin(session: Session, losing: User) -> None:
    """Refuse to take the last admin away. The admins' rows are locked (Postgres), so two admins
    withdrawing each other's right at once cannot both succeed."""
    admins = set(session.scalars(select(User.id).where(User.is_admin).with_for_update()))
    if not admins - {losing.id}:
        raise TeamError(f"{losing.username!r} is the last admin; make another admin first")
