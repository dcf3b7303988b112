"""A sharded audit's context (its options, engine config and artifact keys), the artifact store,
and the shard plan every stage reads."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from sqlalchemy.orm import Session

from backend.models import Job
from backend.settings import get_settings
from backend.storage.artifacts import ArtifactStore, config_hash, dataset_prefix
from backend.storage.job_config import AuditOptions
from worker.influence.config import EngineConfig
from worker.jobs import store

ARTIFACT_VERSION = 2
"""Bumped when the layout or meaning of an artifact changes, so old ones are never reused
(2: the LoRA plan holds the job's canaries and the model is trained on them)."""


@dataclass(frozen=True)
class JobContext:
    job_id: int
    dataset_id: int
    options: AuditOptions
    config: EngineConfig
    prefix: str

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"


def load_context(factory: Callable[[], Session], job_id: int) -> JobContext:
    with factory() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise LookupError(f"job {job_id} no longer exists")
        options = store.audit_options(job.config)
        config = options.engine_config()
        recipe = {
            "version": ARTIFACT_VERSION,
            "dataset": job.dataset_id,
            "val_fraction": options.val_fraction,
            "val_dataset_id": options.val_dataset_id,
            "engine": dataclasses.asdict(config),
        }
        prefix = f"{dataset_prefix(job.dataset_id)}/{config_hash(recipe)}"
        return JobContext(job_id, job.dataset_id, options, config, prefix)


@lru_cache(maxsize=1)
def artifact_store(root: str | None = None) -> ArtifactStore:
    return ArtifactStore(root or get_settings().artifact_root)


def split_ids(session: Session, context: JobContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(training, validation, validation pairs of the dataset itself) pair ids of the job."""
    return store.split_ids(session, context.dataset_id, context.options, context.config.seed)


# --- shards ---------------------------------------------------------------------------------


def effective_shard_size(config: EngineConfig) -> int:
    """`shard_size` rounded up to a multiple of every gradient chunk the job could use (32 on
    CUDA, 8 on the CPU, or the configured one), so shards hold whole chunks."""
    chunk = config.gradient_chunk or 32
    return max(chunk, math.ceil(config.shard_size / chunk) * chunk)


def n_shards(n_train: int, config: EngineConfig) -> int:
    return max(1, math.ceil(n_train / effective_shard_size(config)))


def feature_blocks(n_train: int, n_val: int, size: int) -> list[tuple[str, int, int]]:
    """(split, start, stop) of each feature shard: blocks of `size` training pairs, then of
    validation pairs, in the split's order."""
    return [("train", s, min(s + size, n_train)) for s in range(0, n_train, size)] + [
        ("val", s, min(s + size, n_val)) for s in range(0, n_val, size)
    ]


def plan(context: JobContext) -> dict[str, np.ndarray]:
    """The LoRA canvas's plan (pair ids, the shards' order, lengths), written by `train`."""
    return artifact_store().get_arrays(context.key("plan.npz"))


def shard_positions(plan: dict[str, np.ndarray], shard: int) -> np.ndarray:
    size = int(plan["shard_size"])
    return plan["order"][shard * size : (shard + 1) * size]


def shard_count(plan: dict[str, np.ndarray]) -> int:
    return math.ceil(len(plan["order"]) / int(plan["shard_size"]))


def gradient_key(context: JobContext, shard: int) -> str:
    return context.key(f"gradients/{shard:05d}.npz")
