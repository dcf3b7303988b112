"""An audit's outside reward models at launch: `job:<id>` resolved to the model that audit saved,
local directories checked (a transformers sequence-classification model with one output), and
the models a user's earlier audits saved listed for the launch form."""

from __future__ import annotations

import json
import os
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.errors import BadInput
from backend.models import Dataset, Job, User
from backend.schemas import SavedModel
from worker.influence.config import looks_like_path

JOB_PREFIX = "job:"
"""`job:<id>` names the model an earlier audit saved (`save_model`)."""


class RewardModelError(BadInput):
    """A reward model the audit names cannot be used (422, naming it)."""


def saved_models(session: Session, user: User) -> list[SavedModel]:
    """The models the user's succeeded audits saved that still exist, newest first."""
    rows = session.execute(
        select(Job, Dataset.name)
        .join(Dataset, Dataset.id == Job.dataset_id)
        .where(Job.owner_id == user.id, Job.kind == "audit", Job.status == "succeeded")
        .order_by(Job.id.desc())
    ).all()
    found = []
    for job, dataset_name in rows:
        directory = (job.metrics or {}).get("model_dir")
        if not directory or not os.path.isdir(directory):
            continue
        found.append(
            SavedModel(
                ref=f"{JOB_PREFIX}{job.id}",
                job_id=job.id,
                dataset_id=job.dataset_id,
                dataset_name=dataset_name,
                model=str(job.config.get("model", "")),
                path=directory,
                finished_at=job.finished_at,
            )
        )
    return found


def resolve(session: Session, user: User, names: list[str]) -> list[str]:
    """The models as the worker loads them: `job:<id>` replaced by that audit's saved directory;
    every local directory checked. Raises RewardModelError naming the first bad one."""
    return [_resolve_one(session, user, name, k) for k, name in enumerate(names)]


def _resolve_one(session: Session, user: User, name: str, k: int) -> str:
    where = f"reward_models[{k}]"
    if name.startswith(JOB_PREFIX):
        job_id = name.removeprefix(JOB_PREFIX).strip()
        job = session.get(Job, int(job_id)) if job_id.isdigit() else None
        if job is None or job.owner_id != user.id or job.kind != "audit":
            raise RewardModelError(f"{where}: {name!r} is not an audit of yours")
        directory = (job.metrics or {}).get("model_dir")
        if job.status != "succeeded" or not directory:
            raise RewardModelError(
                f"{where}: audit {job.id} saved no model (launch it with save_model and "
                "mode='lora', and let it succeed)"
            )
        check_directory(Path(directory), where)
        return str(Path(directory).resolve())
    if looks_like_path(name):
        check_directory(Path(name).expanduser(), where)
    return name


def check_directory(path: Path, where: str) -> None:
    """A local reward model: a directory with a config.json naming a sequence-classification
    architecture with one label (anything else would score through a random head)."""
    if not path.is_dir():
        raise RewardModelError(f"{where}: model directory {str(path)!r} does not exist")
    config_file = path / "config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise RewardModelError(
            f"{where}: {str(path)!r} holds no readable config.json: not a transformers model "
            "directory"
        ) from None
    architectures = config.get("architectures") or []
    if architectures and not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise RewardModelError(
            f"{where}: {str(path)!r} is a {architectures[0]}, not a reward model (a "
            "sequence-classification model with one output)"
        )
    labels = config.get("id2label") or {}
    if len(labels) > 1:
        raise RewardModelError(
            f"{where}: {str(path)!r} has {len(labels)} output labels; a reward model has one"
        )
