"""Need to know: what a job says about other datasets, as shown to a caller who may not read them.

A job's config and metrics can name other datasets: an audit's `val_dataset_id`, a verify job's
`test_dataset_id`, and the metrics that say where a model was evaluated ("dataset 12"). Whoever
can read the job's dataset (a viewer, a reviewer, a new owner after a transfer) sees those
references only for datasets they can read themselves; the rest are withheld and listed in
`JobPublic.redacted`.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from backend.models import Dataset, DatasetShare, Job, User
from backend.schemas import JobPublic

REFERENCE_KEYS = ("val_dataset_id", "test_dataset_id")
"""Config keys that name another dataset."""
WITHHELD = "a dataset you cannot read"
_NAMED = re.compile(r"\bdataset (\d+)\b")


def readable_ids(session: Session, user: User, dataset_ids: set[int]) -> set[int]:
    """The ids among `dataset_ids` that `user` owns or has been given."""
    if not dataset_ids:
        return set()
    shared = select(DatasetShare.dataset_id).where(DatasetShare.user_id == user.id)
    return set(
        session.scalars(
            select(Dataset.id).where(
                Dataset.id.in_(dataset_ids),
                or_(Dataset.owner_id == user.id, Dataset.id.in_(shared)),
            )
        )
    )


def _referenced(session: Session, job: Job) -> dict[str, int]:
    """{where: dataset id} of every other dataset the job names; a verify job also names its
    audit's validation dataset (its metrics say it evaluated there)."""
    config = job.config or {}
    found = {k: int(config[k]) for k in REFERENCE_KEYS if isinstance(config.get(k), int)}
    audit_id = config.get("audit_job_id")
    if job.kind == "verify" and isinstance(audit_id, int):
        audit = session.get(Job, audit_id)
        val = (audit.config or {}).get("val_dataset_id") if audit is not None else None
        if isinstance(val, int):
            found["audit's val_dataset_id"] = val
    return found


def _scrub(value: Any, hidden: set[int]) -> Any:
    """`value` with every "dataset N" of a hidden N withheld, through lists and dicts."""
    if isinstance(value, str):
        return _NAMED.sub(lambda m: WITHHELD if int(m.group(1)) in hidden else m.group(0), value)
    if isinstance(value, dict):
        return {k: _scrub(v, hidden) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, hidden) for v in value]
    return value


def public_job(session: Session, user: User, job: Job) -> JobPublic:
    """The job as `user` may see it: references to datasets they cannot read are withheld."""
    public = JobPublic.model_validate(job)
    references = _referenced(session, job)
    hidden = set(references.values()) - readable_ids(session, user, set(references.values()))
    if not hidden:
        return public
    config = {
        k: (None if k in REFERENCE_KEYS and v in hidden else v) for k, v in public.config.items()
    }
    metrics = _scrub(job.metrics, hidden) if job.metrics is not None else None
    redacted = [where for where, dataset_id in references.items() if dataset_id in hidden]
    if metrics is not None:
        redacted.append("metrics that named them")
    # dict(public), not model_dump(): every field, those never shown included (the timing the
    # ETA is computed from), so only the references themselves are withheld.
    return JobPublic.model_validate(
        {**dict(public), "config": config, "metrics": metrics, "redacted": redacted}
    )
