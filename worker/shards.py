"""Audits as Celery canvases that any number of workers share.

    LoRA:  train ─▶ chord(gradients[shard]) ─▶ reduce ─▶ chord(scores[shard]) ─▶ finalize
    head:  chord(features[shard]) ─▶ head      (mode 'head' or 'pretrained')

In head and pretrained modes the backbone's forward passes over every pair are the whole cost:
`features` (GPU queue, one task per block of training or validation pairs) writes their pooled
features, and `head` (CPU queue) fits the head on them and scores every pair, exactly as the
single-task engine does from the same features.

* train (GPU queue): loads and tokenises the pairs from the database in batches, trains the LoRA
  reward model, writes the adapter weights, the shard plan and the validation gradient.
* gradients (GPU queue, one task per shard of the length-sorted training set): per-pair margin
  gradients of the shard, projected when the job uses a projection, written as one artifact.
* reduce (CPU queue): the Gauss–Newton curvature accumulated over the shards' artifacts, one
  Cholesky factorisation, u = (G + λI)⁻¹ g_val (worker/influence/stream.py).
* scores (CPU queue, per shard): every per-pair score of the shard, upserted by (job, pair).
* finalize (CPU queue): the global columns (corrected_loss, harm), the trust figures, metrics;
  marks the job succeeded.

Tasks pass ids, never tensors: arrays go through the artifact store (worker/artifacts.py) under a
hash of the configuration. Every task is idempotent and claims a `job_tasks` row before it works:
a redelivered task whose work is done returns at once, one whose previous owner died takes over,
one that finds a live owner waits for it. A heartbeat thread keeps the row fresh, reports
progress and notices a cancelled job within `heartbeat_seconds`; the reaper
(backend/services/reaper.py) re-dispatches a job whose tasks stopped beating.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import resource
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

import numpy as np
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.db import get_sessionmaker
from backend.job_states import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED
from backend.models import Job, JobTask, Pair, Score, as_utc, utcnow
from backend.settings import get_settings
from worker.artifacts import ArtifactStore, config_hash, dataset_prefix
from worker.influence.config import EngineConfig
from worker.influence.data import split_validation

log = logging.getLogger(__name__)

ARTIFACT_VERSION = 1
"""Bumped when the layout or meaning of an artifact changes, so old ones are never reused."""

STAGE_WEIGHTS: dict[str, float] = {
    "train": 0.45,
    "gradients": 0.35,
    "reduce": 0.05,
    "scores": 0.10,
    "finalize": 0.05,
}
"""Share of the job's progress bar per stage (a MiniLM LoRA audit on the CPU, roughly)."""

STAGE_LABELS: dict[str, str] = {
    "train": "training",
    "gradients": "per_pair_gradients",
    "reduce": "solving",
    "scores": "scoring",
    "finalize": "saving",
}
"""The job's `stage` while a canvas stage runs (the names the single-task engine reports)."""

FEATURE_STAGE_WEIGHTS: dict[str, float] = {"features": 0.9, "head": 0.1}
"""The head-mode canvas's progress shares: the backbone's forward passes are nearly all of it."""

STAGE_LABELS.update(features="extracting_features", head="fitting_head")

_PROGRESS_STAGES = frozenset(STAGE_WEIGHTS) | frozenset(FEATURE_STAGE_WEIGHTS)

_LOAD_BATCH = 2000
_UPSERT_BATCH = 2000


class Busy(Exception):
    """Another live process runs this task; this delivery gives way."""


def owner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_alive(owner: str | None) -> bool:
    """False only when the owner ran on this host and its process is gone."""
    if not owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------------------------
# The job's context: options, engine config, artifact keys.


@dataclass(frozen=True)
class JobContext:
    job_id: int
    dataset_id: int
    options: Any  # backend.schemas.AuditCreate
    config: EngineConfig
    prefix: str

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"


def effective_shard_size(config: EngineConfig) -> int:
    """`shard_size` rounded up to a multiple of every gradient chunk the job could use (32 on
    CUDA, 8 on the CPU, or the configured one), so shards hold whole chunks."""
    chunk = config.gradient_chunk or 32
    return max(chunk, math.ceil(config.shard_size / chunk) * chunk)


def n_shards(n_train: int, config: EngineConfig) -> int:
    return max(1, math.ceil(n_train / effective_shard_size(config)))


def load_context(factory: Callable[[], Session], job_id: int) -> JobContext:
    from backend.schemas import AuditCreate

    with factory() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise LookupError(f"job {job_id} no longer exists")
        options = AuditCreate.model_validate(job.config)
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


# --------------------------------------------------------------------------------------------
# Claims and heartbeats.


class TaskRun:
    """The claim on one `job_tasks` row, its heartbeat thread, and the job's cancel flag."""

    def __init__(
        self,
        factory: Callable[[], Session],
        job_id: int,
        stage: str,
        shard: int = 0,
        celery_id: str | None = None,
    ) -> None:
        self.factory = factory
        self.job_id, self.stage, self.shard = job_id, stage, shard
        self.celery_id = celery_id
        self.owner = f"{owner_name()}:{uuid.uuid4().hex[:6]}"
        self.settings = get_settings()
        self.fraction = 0.0
        self.pairs = 0
        self._cancelled = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.perf_counter()
        self.row_id: int | None = None
        self.label = STAGE_LABELS.get(stage, stage)  # named in a failure's message

    # The owner is host:pid:nonce; liveness looks at host:pid.
    def _alive(self, owner: str | None) -> bool:
        return _owner_alive(owner.rsplit(":", 1)[0] if owner and owner.count(":") >= 2 else owner)

    def claim(self) -> str:
        """'run' (this process owns the task now), 'done' (its work exists) or 'stop' (the job
        is finished or cancelled). Waits while a live owner runs it, up to the stale time."""
        deadline = time.monotonic() + self.settings.stale_seconds + self.settings.heartbeat_seconds
        while True:
            outcome = self._try_claim()
            if outcome != "busy":
                if outcome == "run":
                    self._start_heartbeat()
                return outcome
            if time.monotonic() > deadline:
                raise Busy(f"{self.stage}[{self.shard}] of job {self.job_id} is still running")
            time.sleep(min(1.0, self.settings.heartbeat_seconds))

    def _row(self, session: Session) -> JobTask:
        row = session.scalar(
            select(JobTask).where(
                JobTask.job_id == self.job_id,
                JobTask.stage == self.stage,
                JobTask.shard == self.shard,
            )
        )
        if row is not None:
            return row
        row = JobTask(job_id=self.job_id, stage=self.stage, shard=self.shard, status=QUEUED)
        session.add(row)
        try:
            session.commit()
        except IntegrityError:  # another delivery created it first
            session.rollback()
            return self._row(session)
        return row

    def _try_claim(self) -> str:
        with self.factory() as session:
            job_status = session.scalar(select(Job.status).where(Job.id == self.job_id))
            if job_status is None or job_status in (CANCELLED, FAILED):
                return "stop"
            row = self._row(session)
            self.row_id = row.id
            if row.status == SUCCEEDED:
                return "done"
            if job_status == SUCCEEDED:
                return "stop"
            now = utcnow()
            cutoff = now - timedelta(seconds=self.settings.stale_seconds)
            beat = as_utc(row.heartbeat_at)
            live = row.status == RUNNING and beat is not None and beat > cutoff
            if live and self._alive(row.owner):
                return "busy"
            # Compare-and-set on what was read: two takers never both win.
            taken = session.execute(
                update(JobTask)
                .where(
                    JobTask.id == row.id,
                    JobTask.status == row.status,
                    (JobTask.owner == row.owner)
                    if row.owner is not None
                    else JobTask.owner.is_(None),
                )
                .values(
                    status=RUNNING,
                    owner=self.owner,
                    celery_id=self.celery_id or row.celery_id,
                    attempts=JobTask.attempts + 1,
                    started_at=now,
                    heartbeat_at=now,
                    progress=0.0,
                    error=None,
                )
            ).rowcount  # type: ignore[attr-defined]
            session.commit()
            return "run" if taken else "busy"

    def _start_heartbeat(self) -> None:
        self._started = time.perf_counter()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="heartbeat")
        self._thread.start()

    def _beat(self) -> None:
        interval = self.settings.heartbeat_seconds
        while not self._stop.wait(interval):
            try:
                self.write_heartbeat()
            except Exception:  # a database hiccup must not kill the task; the next beat retries
                log.exception(
                    "heartbeat of job %s %s[%s] failed", self.job_id, self.stage, self.shard
                )

    def write_heartbeat(self) -> None:
        with self.factory() as session:
            session.execute(
                update(JobTask)
                .where(JobTask.id == self.row_id, JobTask.owner == self.owner)
                .values(heartbeat_at=utcnow(), progress=self.fraction)
            )
            status = session.scalar(select(Job.status).where(Job.id == self.job_id))
            if status != RUNNING:
                self._cancelled.set()
            elif self.stage in _PROGRESS_STAGES:
                update_job_progress(session, self.job_id)
            session.commit()

    def progress(self, fraction: float, message: str | None = None) -> None:
        if not math.isnan(fraction):
            self.fraction = max(0.0, min(1.0, fraction))

    def should_cancel(self) -> bool:
        return self._cancelled.is_set()

    def finish(self, status: str, error: str | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self.factory() as session:
            session.execute(
                update(JobTask)
                .where(JobTask.id == self.row_id, JobTask.owner == self.owner)
                .values(
                    status=status,
                    progress=1.0 if status == SUCCEEDED else self.fraction,
                    finished_at=utcnow(),
                    heartbeat_at=utcnow(),
                    seconds=time.perf_counter() - self._started,
                    peak_rss_mb=peak_rss_mb(),
                    pairs=self.pairs,
                    error=error,
                )
            )
            if status == SUCCEEDED and self.stage in _PROGRESS_STAGES:
                update_job_progress(session, self.job_id)
            session.commit()


def update_job_progress(session: Session, job_id: int) -> None:
    """The job's one progress figure and stage, from its task rows (weighted by stage)."""
    rows = session.execute(
        select(JobTask.stage, JobTask.status, JobTask.progress).where(JobTask.job_id == job_id)
    ).all()
    if not rows:
        return
    per_stage: dict[str, list[float]] = {}
    for stage, status, progress in rows:
        per_stage.setdefault(stage, []).append(1.0 if status == SUCCEEDED else progress or 0.0)
    total = 0.0
    current = None
    weights = FEATURE_STAGE_WEIGHTS if "features" in per_stage else STAGE_WEIGHTS
    for stage, weight in weights.items():
        values = per_stage.get(stage)
        done = sum(values) / len(values) if values else 0.0
        total += weight * done
        if current is None and done < 1.0:
            current = stage
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == RUNNING)
        .values(progress=min(0.999, total), stage=STAGE_LABELS[current or list(weights)[-1]])
    )


def run_stage(
    job_id: int,
    stage: str,
    shard: int,
    work: Callable[[JobContext, TaskRun], None],
    celery_id: str | None = None,
    factory: Callable[[], Session] | None = None,
) -> str:
    """Claim the task, run `work`, record the outcome. Returns 'done', 'ran' or 'stopped'.

    A failure of the work fails the job (with the stage in the message) and returns 'stopped':
    the task itself succeeds, so Celery does not retry a deterministic error.
    """
    from worker.influence.train import Cancelled

    factory = factory or get_sessionmaker()
    run = TaskRun(factory, job_id, stage, shard, celery_id)
    outcome = run.claim()
    if outcome == "done":
        return "done"
    if outcome == "stop":
        return "stopped"
    try:
        context = load_context(factory, job_id)
        work(context, run)
    except Cancelled:
        run.finish(CANCELLED)
        return "stopped"
    except Exception as exc:
        import traceback

        log.exception("job %s: %s[%s] failed", job_id, stage, shard)
        message = f"{type(exc).__name__} during {run.label}: {exc}"
        run.finish(FAILED, message)
        fail_job(factory, job_id, message, traceback.format_exc())
        return "stopped"
    run.finish(SUCCEEDED)
    return "ran"


def fail_job(factory: Callable[[], Session], job_id: int, message: str, details: str = "") -> None:
    with factory() as session:
        job = session.get(Job, job_id)
        if job is None or job.status != RUNNING:
            return
        job.status, job.error, job.finished_at = FAILED, message, utcnow()
        if details:
            job.metrics = {**(job.metrics or {}), "traceback": details[-8000:]}
        session.commit()


# --------------------------------------------------------------------------------------------
# Dispatch.


def canvas_kind(config: EngineConfig) -> str | None:
    """'lora' or 'features' (the canvas an audit with this config runs as), or None where it
    runs in one task (see worker.influence.stream.unsupported)."""
    from worker.influence.stream import unsupported

    if config.mode in ("head", "pretrained"):
        return "features"
    return "lora" if unsupported(config) is None else None


def canvas(job_id: int, shards: int, kind: str = "lora") -> tuple[Any, dict[tuple[str, int], str]]:
    """The job's Celery canvas (immutable signatures by task name: ids in, nothing passed on)
    and the Celery id given to each (stage, shard), so a cancel can revoke what is queued."""
    from celery import chain, chord, group

    from worker.celery_app import celery_app

    ids: dict[tuple[str, int], str] = {}
    # Lists, not generators: a group keeps a generator lazy, and `ids` must be complete before
    # the caller records the tasks.

    def sig(stage: str, shard: int | None = None) -> Any:
        task_id = str(uuid.uuid4())
        ids[(stage, shard or 0)] = task_id
        args = (job_id,) if shard is None else (job_id, shard)
        signature = celery_app.signature(f"prefaudit.{stage}", args=args, immutable=True)
        return signature.set(task_id=task_id)

    if kind == "features":
        return chord(group([sig("features", s) for s in range(shards)]), sig("head")), ids
    flow = chain(
        sig("train"),
        chord(group([sig("gradients", s) for s in range(shards)]), sig("reduce")),
        chord(group([sig("scores", s) for s in range(shards)]), sig("finalize")),
    )
    return flow, ids


def dispatch(
    job_id: int,
    n_train: int,
    config: EngineConfig,
    factory: Callable[[], Session] | None = None,
    n_val: int = 0,
) -> str:
    """Record the job's tasks (queued, with their Celery ids) and send its canvas; returns the
    id of the first task. Rows of finished tasks keep their state: a re-dispatch skips them."""
    factory = factory or get_sessionmaker()
    kind = canvas_kind(config) or "lora"
    if kind == "features":
        count = len(feature_blocks(n_train, n_val, effective_shard_size(config)))
    else:
        count = n_shards(n_train, config)
    flow, ids = canvas(job_id, count, kind)
    with factory() as session:
        existing = {
            (row.stage, row.shard): row
            for row in session.scalars(select(JobTask).where(JobTask.job_id == job_id))
        }
        for (stage, shard), task_id in ids.items():
            row = existing.get((stage, shard))
            if row is None:
                session.add(
                    JobTask(
                        job_id=job_id, stage=stage, shard=shard, status=QUEUED, celery_id=task_id
                    )
                )
            elif row.status != SUCCEEDED:
                row.celery_id = task_id
        session.commit()
    flow.apply_async()
    return ids[("features", 0) if kind == "features" else ("train", 0)]


# --------------------------------------------------------------------------------------------
# Loading pairs in bounded memory.


def _pair_ids(session: Session, dataset_id: int) -> np.ndarray:
    ids = session.scalars(
        select(Pair.id).where(Pair.dataset_id == dataset_id).order_by(Pair.source_index)
    ).all()
    return np.asarray(ids, dtype=np.int64)


def _split_ids(session: Session, context: JobContext) -> tuple[np.ndarray, ...]:
    """(training, validation, validation pairs of the dataset itself) pair ids: the validation
    dataset, or the seeded split of the dataset the single-task engine makes too."""
    options = context.options
    all_ids = _pair_ids(session, context.dataset_id)
    if options.val_dataset_id is not None:
        return all_ids, _pair_ids(session, options.val_dataset_id), np.zeros(0, dtype=np.int64)
    train_pos, val_pos = split_validation(len(all_ids), options.val_fraction, context.config.seed)
    return all_ids[train_pos], all_ids[val_pos], all_ids[val_pos]


def _row_batches(session: Session, pair_ids: np.ndarray) -> Iterator[tuple[list[int], list[Any]]]:
    """(positions in `pair_ids`, (id, prompt, chosen, rejected) rows) a batch at a time, so texts
    are held one batch at a time; raises if any of the pairs is gone."""
    position = {int(pid): k for k, pid in enumerate(pair_ids)}
    found = 0
    for start in range(0, len(pair_ids), _LOAD_BATCH):
        chunk = [int(p) for p in pair_ids[start : start + _LOAD_BATCH]]
        rows = session.execute(
            select(Pair.id, Pair.prompt, Pair.chosen, Pair.rejected).where(Pair.id.in_(chunk))
        ).all()
        found += len(rows)
        yield [position[row.id] for row in rows], list(rows)
    if found < len(pair_ids):
        raise LookupError(f"{len(pair_ids) - found} pair(s) of the job were deleted while it ran")


def _pairs_by_ids(session: Session, pair_ids: np.ndarray) -> list[Any]:
    """The engine's pairs of the given ids, in the given order."""
    from worker.influence.data import Pair as EnginePair

    pairs: list[Any] = [None] * len(pair_ids)
    for positions, rows in _row_batches(session, pair_ids):
        for k, row in zip(positions, rows, strict=True):
            pairs[k] = EnginePair(row.prompt, row.chosen, row.rejected)
    return pairs


def _encode_rows(tokenizer: Any, rows: Sequence[Any], max_length: int) -> tuple[list, np.ndarray]:
    from worker.influence.data import Pair as EnginePair
    from worker.influence.model import encode

    pairs = [EnginePair(r.prompt, r.chosen, r.rejected) for r in rows]
    enc = encode(tokenizer, pairs, max_length)
    diffs = np.array([len(p.chosen) - len(p.rejected) for p in pairs], dtype=np.float64)
    return enc.ids, diffs


def _encode_by_ids(
    session: Session, tokenizer: Any, pair_ids: np.ndarray, max_length: int
) -> tuple[list, np.ndarray]:
    """Token ids and length differences of the given pairs, in the given order."""
    ids: list = [None] * len(pair_ids)
    diffs = np.empty(len(pair_ids))
    for positions, rows in _row_batches(session, pair_ids):
        encoded, chunk_diffs = _encode_rows(tokenizer, rows, max_length)
        for k, tokens, diff in zip(positions, encoded, chunk_diffs, strict=True):
            ids[k] = tokens
            diffs[k] = diff
    return ids, diffs


# --------------------------------------------------------------------------------------------
# The model, cached per process across shards of one job.


@lru_cache(maxsize=1)
def _base_model(config_key: str) -> tuple[Any, Any]:
    """(RewardModel with fresh LoRA adapters, tokenizer) for a config (keyed by its JSON)."""
    import json

    from worker.influence.model import RewardModel, add_lora, load_backbone, resolve_device

    config = EngineConfig(**json.loads(config_key))
    backbone, tokenizer = load_backbone(config)
    return RewardModel(add_lora(backbone, config), resolve_device(config.device)), tokenizer


def _model(context: JobContext, trained: bool) -> tuple[Any, Any]:
    import json

    import torch

    rm, tokenizer = _base_model(json.dumps(dataclasses.asdict(context.config), sort_keys=True))
    if trained:
        weights = artifact_store().get_arrays(context.key("adapter.npz"))
        with torch.no_grad():
            for name, param in rm.params.items():
                param.copy_(torch.from_numpy(weights[name]).to(param.device, param.dtype))
    return rm, tokenizer


def _projector(context: JobContext, rm: Any, space: Any) -> Any:
    if space.projection_dim is None:
        return None
    from worker.influence.projection import KroneckerProjector

    return KroneckerProjector.for_model(rm, space.projection_dim, context.config.seed)


def _space(context: JobContext, n_params: int, n_train: int) -> Any:
    from worker.influence.stream import choose_space

    return choose_space(n_params, n_train, context.config)


def _blocks(rm: Any, projector: Any) -> list[slice]:
    blocks = projector.out_blocks if projector is not None else rm.blocks()
    return [block for _, block in blocks]


# --------------------------------------------------------------------------------------------
# The stages.


def train(context: JobContext, run: TaskRun) -> None:
    """Tokenise, split, train; write the adapter, the plan and the validation gradient."""
    from worker.influence.model import Encoded
    from worker.influence.stream import shard_positions, validation_gradient_streamed
    from worker.influence.train import train_reward_model

    store, config, factory = artifact_store(), context.config, run.factory
    if store.exists(context.key("train.json")):
        return  # a rerun of the same configuration: the model and plan exist
    # Fresh adapters: the cached model may hold trained weights (of this job or another).
    _base_model.cache_clear()
    run.label = "loading_model"
    rm, tokenizer = _model(context, trained=False)
    run.label = "loading_data"
    with factory() as session:
        train_ids, val_ids, val_in_dataset = _split_ids(session, context)
        train_tokens, train_diffs = _encode_by_ids(session, tokenizer, train_ids, config.max_length)
        val_tokens, val_diffs = _encode_by_ids(session, tokenizer, val_ids, config.max_length)
    if len(train_ids) < 2 or len(val_ids) < 1:
        raise ValueError(f"{len(train_ids)} training and {len(val_ids)} validation pairs: too few")
    pad = int(tokenizer.pad_token_id)
    train_enc, val_enc = Encoded(train_tokens, pad), Encoded(val_tokens, pad)
    run.pairs = len(train_enc)

    def progress(stage: str, fraction: float, message: str | None = None) -> None:
        run.progress(0.9 * fraction, message)

    run.label = "training"
    training = train_reward_model(rm, train_enc, val_enc, config, progress, run.should_cancel)
    model_dir = None
    if config.save_model:
        from worker.influence.audit import save_reward_model

        model_dir = str(save_reward_model(rm, tokenizer, _model_dir(run.factory, context)))
    run.label = "per_pair_gradients"
    space = _space(context, rm.n_params, len(train_enc))
    projector = _projector(context, rm, space)
    chunk = config.chunk_size(rm.device.type)
    val_margins, g_val, val_grads = validation_gradient_streamed(
        rm, val_enc, chunk, projector, should_cancel=run.should_cancel, keep=_needs_group(config)
    )
    run.progress(1.0)
    positions = shard_positions(train_enc.lengths(), effective_shard_size(config), chunk)
    from worker.influence.features import truncation_rate

    store.put_arrays(
        context.key("adapter.npz"),
        {name: p.detach().cpu().numpy() for name, p in rm.params.items()},
    )
    store.put_arrays(
        context.key("plan.npz"),
        {
            "train_ids": train_ids,
            "val_ids": val_ids,
            "val_in_dataset": val_in_dataset,
            "order": np.concatenate(positions),
            "shard_size": np.asarray(len(positions[0])),
            "train_length_diff": train_diffs,
            "val_length_diff": val_diffs,
        },
    )
    val_arrays = {"margins": val_margins, "g_val": g_val}
    if val_grads is not None:
        val_arrays["grads"] = val_grads
    store.put_arrays(context.key("val.npz"), val_arrays)
    store.put_json(
        context.key("train.json"),
        {
            "history": training.history,
            "epoch_seconds": training.seconds_per_epoch,
            "n_trainable_params": rm.n_params,
            "space": space.kind,
            "projection": projector.describe() if projector is not None else None,
            "warnings": list(space.warnings),
            "shards": len(positions),
            "device": str(rm.device),
            "truncation_rate": {
                "train": truncation_rate(train_enc, config.max_length),
                "val": truncation_rate(val_enc, config.max_length),
            },
            "train_peak_rss_mb": peak_rss_mb(),
            "model_dir": model_dir,
        },
    )


def _model_dir(factory: Callable[[], Session], context: JobContext) -> Any:
    """Beside the dataset's stored original, so deleting the dataset deletes its models too."""
    from pathlib import Path

    from backend.models import Dataset

    with factory() as session:
        dataset = session.get(Dataset, context.dataset_id)
        assert dataset is not None
        return Path(dataset.original_path).parent / "models" / f"job-{context.job_id}"


def _plan(context: JobContext) -> dict[str, np.ndarray]:
    return artifact_store().get_arrays(context.key("plan.npz"))


def _shard_positions(plan: dict[str, np.ndarray], shard: int) -> np.ndarray:
    size = int(plan["shard_size"])
    return plan["order"][shard * size : (shard + 1) * size]


def gradients(context: JobContext, run: TaskRun, shard: int) -> None:
    """Per-pair margin gradients of one shard (projected when the job projects)."""
    from worker.influence.model import Encoded
    from worker.influence.stream import shard_gradients, shard_stats
    from worker.influence.train import check_cancel

    store = artifact_store()
    key = context.key(f"gradients/{shard:05d}.npz")
    if store.exists(key):
        return
    plan = _plan(context)
    positions = _shard_positions(plan, shard)
    if len(positions) == 0:
        raise ValueError(f"shard {shard} is empty: the plan has {len(plan['order'])} pairs")
    meta = store.get_json(context.key("train.json"))
    # A cancel that lands while the shard loads its model is seen before the next step, not only
    # once the gradient loop polls: loading takes seconds on a busy machine.
    check_cancel(run.should_cancel)
    rm, tokenizer = _model(context, trained=True)
    check_cancel(run.should_cancel)
    space = _space(context, rm.n_params, len(plan["train_ids"]))
    if meta.get("space") != space.kind:
        raise RuntimeError("the shard's gradient space differs from the training task's")
    projector = _projector(context, rm, space)
    pair_ids = plan["train_ids"][positions]
    with run.factory() as session:
        tokens, _ = _encode_by_ids(session, tokenizer, pair_ids, context.config.max_length)
    check_cancel(run.should_cancel)
    run.pairs = len(tokens)
    margins, grads = shard_gradients(
        rm,
        Encoded(tokens, int(tokenizer.pad_token_id)),
        context.config.chunk_size(rm.device.type),
        projector,
        run.progress,
        run.should_cancel,
    )
    stats = shard_stats(margins, grads, _blocks(rm, projector))
    store.put_arrays(key, {"margins": margins, "grads": grads, **stats.as_arrays()})


def await_stage(run: TaskRun, stage: str, count: int, timeout: float | None = None) -> None:
    """Wait until all `count` tasks of `stage` succeeded.

    A chord fires its body when its count of finished members reaches the group's size; a
    member delivered twice (a redelivery after its worker died mid-acknowledgement) can count
    twice and fire it early, so the body checks the database before it reads any artifact. A
    member that died is run again by the reaper's re-dispatch while this waits.
    """
    from worker.influence.train import Cancelled

    settings = get_settings()
    deadline = time.monotonic() + (timeout or 40 * settings.stale_seconds)
    while True:
        with run.factory() as session:
            done = session.scalar(
                select(func.count()).where(
                    JobTask.job_id == run.job_id,
                    JobTask.stage == stage,
                    JobTask.status == SUCCEEDED,
                )
            )
        if done is not None and done >= count:
            return
        if run.should_cancel():
            raise Cancelled("cancelled by request")
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done} of {count} {stage} tasks finished in time")
        time.sleep(min(1.0, settings.heartbeat_seconds))


def _shard_count(plan: dict[str, np.ndarray]) -> int:
    return math.ceil(len(plan["order"]) / int(plan["shard_size"]))


def _shard_keys(context: JobContext, plan: dict[str, np.ndarray]) -> list[str]:
    return [context.key(f"gradients/{s:05d}.npz") for s in range(_shard_count(plan))]


def reduce(context: JobContext, run: TaskRun) -> None:
    """The curvature over every shard, one factorisation, the solve."""
    from worker.influence.stream import Reduction, ShardStats

    store = artifact_store()
    if store.exists(context.key("solution.json")):
        return
    plan = _plan(context)
    await_stage(run, "gradients", _shard_count(plan))
    meta = store.get_json(context.key("train.json"))
    keys = _shard_keys(context, plan)
    needs = set(context.config.methods) & {
        "gradient_similarity",
        "influence",
        "self_influence",
        "corrected_loss",
        "datainf",
        "group",
    }
    if meta["space"] == "in_memory":
        _reduce_in_memory(context, run, plan, keys)
        return
    if not needs:
        store.put_json(context.key("solution.json"), {"solve": None})
        return
    stats = [ShardStats.from_arrays(store.get_arrays(k)) for k in keys]
    val = store.get_arrays(context.key("val.npz"))
    rm, _ = _model(context, trained=False)
    space = _space(context, rm.n_params, len(plan["train_ids"]))
    blocks = _blocks(rm, _projector(context, rm, space))
    reduction = Reduction.start(stats, blocks, val["g_val"], n_params=rm.n_params)
    for k, key in enumerate(keys):
        shard = store.get_arrays(key)
        reduction.add(shard["margins"], shard["grads"], "datainf" in needs)
        run.progress(0.9 * (k + 1) / len(keys))
        if run.should_cancel():
            from worker.influence.train import Cancelled

            raise Cancelled("cancelled by request")
    # u fills the influence columns; asked only for group, they are group's first-order effects,
    # damped like its factor (as the single-task engine's group does).
    config = context.config
    influence = config.influence_solve_damping() if "influence" in config.methods else None
    solution = reduction.solve(config.damping, influence)
    store.put_arrays(context.key("solution.npz"), solution.as_arrays())
    store.put_json(
        context.key("solution.json"),
        {
            "solve": solution.metrics,
            "max_scaled_norm": max(s.max_scaled_norm for s in stats),
            "val_gradient_norm": float(np.linalg.norm(val["g_val"])),
        },
    )


def _factor_damping(solve: dict) -> float | None:
    """λ of the reduction's Cholesky factor (self-influence's and group's damping)."""
    return solve.get("self_influence_damping_absolute", solve.get("damping_absolute"))


def _reduce_in_memory(
    context: JobContext, run: TaskRun, plan: dict[str, np.ndarray], keys: list[str]
) -> None:
    """Exact gradients too many for a dense curvature: the single-task engine's scorer on all of
    them (small jobs only), each shard's scores written back as an artifact."""
    import torch

    from worker.influence.audit import Fitted, score_fitted

    store = artifact_store()
    shards = [store.get_arrays(k) for k in keys]
    val = store.get_arrays(context.key("val.npz"))
    rm, _ = _model(context, trained=False)
    fitted = Fitted(
        rm=None,
        margins=np.concatenate([s["margins"] for s in shards]),
        grads=torch.from_numpy(np.concatenate([s["grads"] for s in shards])),
        val_margins=val["margins"],
        val_grads=torch.from_numpy(val["grads"]) if "grads" in val else None,
        blocks=rm.blocks(),
        g_val=torch.from_numpy(val["g_val"]),
    )
    # length and corrected_loss are global columns, filled by the scores and finalize stages.
    methods = [m for m in context.config.methods if m not in ("length", "corrected_loss")]
    if "corrected_loss" in context.config.methods and "self_influence" not in methods:
        methods.append("self_influence")
    config = dataclasses.replace(context.config, methods=methods or ["loss"])
    scores, metrics, warnings = score_fitted(fitted, config)
    start = 0
    for k, shard in enumerate(shards):
        stop = start + len(shard["margins"])
        columns = {name: values[start:stop] for name, values in scores.items() if name != "harm"}
        store.put_arrays(context.key(f"scores/{k:05d}.npz"), columns)
        start = stop
        run.progress((k + 1) / len(shards))
    group = None
    if "group" in metrics:
        # Positions of `fitted` follow the shards: the plan's order.
        ids = plan["train_ids"][plan["order"]]
        group = {
            "metrics": metrics["group"],
            "interactions": [[int(ids[i]), int(ids[j]), k] for i, j, k in fitted.interactions],
        }
    store.put_json(
        context.key("solution.json"),
        {
            "solve": metrics.get("influence"),
            "warnings": warnings,
            "in_memory": True,
            "group": group,
        },
    )


def scores(context: JobContext, run: TaskRun, shard: int) -> None:
    """Every per-pair score of one shard, upserted by (job, pair)."""
    from worker.influence.stream import Solution, score_shard

    store = artifact_store()
    plan = _plan(context)
    positions = _shard_positions(plan, shard)
    pair_ids = plan["train_ids"][positions]
    solution_meta = store.get_json(context.key("solution.json"))
    methods = context.config.methods
    if solution_meta.get("in_memory"):
        columns = store.get_arrays(context.key(f"scores/{shard:05d}.npz"))
    else:
        data = store.get_arrays(context.key(f"gradients/{shard:05d}.npz"))
        solution = None
        if solution_meta.get("solve") is not None:
            solution = Solution.from_arrays(
                store.get_arrays(context.key("solution.npz")), solution_meta["solve"]
            )
        columns = score_shard(
            data["margins"],
            data["grads"],
            solution,
            methods,
            float(solution_meta.get("max_scaled_norm", 0.0)),
        )
    if "length" in methods:
        from worker.influence.scores import length_harm

        columns["harm_length"], _ = length_harm(
            plan["train_length_diff"][positions], plan["val_length_diff"]
        )
    run.pairs = len(pair_ids)
    with run.factory() as session:
        upsert_scores(session, context.job_id, pair_ids, "train", columns, run.progress)
        session.commit()


def _clean(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else value


def upsert_scores(
    session: Session,
    job_id: int,
    pair_ids: np.ndarray,
    split: str,
    columns: dict[str, np.ndarray],
    progress: Callable[[float], None] | None = None,
) -> None:
    """Insert or replace the (job, pair) rows: a shard that runs twice leaves one row per pair."""
    from backend.db import upsert
    from backend.services.scores import ensure_partition

    ensure_partition(session, job_id)
    names = sorted(columns)
    for start in range(0, len(pair_ids), _UPSERT_BATCH):
        rows = []
        for k in range(start, min(start + _UPSERT_BATCH, len(pair_ids))):
            row: dict[str, Any] = {"job_id": job_id, "pair_id": int(pair_ids[k]), "split": split}
            for name in names:
                row[name] = _clean(float(columns[name][k]))
            rows.append(row)
        session.execute(upsert(session, Score, rows, ["job_id", "pair_id"]))
        if progress is not None:
            progress(min(1.0, (start + _UPSERT_BATCH) / max(1, len(pair_ids))))


def finalize(context: JobContext, run: TaskRun) -> None:
    """Global columns, trust and metrics; marks the job succeeded (one transaction)."""
    from worker.influence.audit import harm_column
    from worker.influence.benchmark_table import method_benchmark
    from worker.influence.trust import mislabelled_estimate, validation_trust

    store, config = artifact_store(), context.config
    plan = _plan(context)
    await_stage(run, "scores", _shard_count(plan))
    meta = store.get_json(context.key("train.json"))
    solution_meta = store.get_json(context.key("solution.json"))
    val = store.get_arrays(context.key("val.npz"))
    n_train = len(plan["train_ids"])
    with run.factory() as session:
        job = session.get(Job, context.job_id, with_for_update=True)
        if job is None or job.status != RUNNING:
            return
        count = session.scalar(
            select(func.count()).where(Score.job_id == job.id, Score.split == "train")
        )
        if count != n_train:
            raise RuntimeError(f"{count} score rows for {n_train} training pairs")
        group = None
        if _needs_group(config):
            group = _group_stage(context, session, plan, solution_meta, val)
        metrics = _global_columns(session, job.id, config, harm_column)
        if group is not None:
            metrics["group"] = group
        if "length" in config.methods:
            from worker.influence.scores import length_harm

            _, metrics["length_direction"] = length_harm(np.zeros(1), plan["val_length_diff"])
        if len(plan["val_in_dataset"]):
            upsert_scores(session, job.id, plan["val_in_dataset"], "val", {})
        margins, harm = _columns(session, job.id, ("margin", "harm"))
        val_margins = val["margins"]
        trust = validation_trust(val_margins)
        warnings = list(meta.get("warnings", [])) + list(solution_meta.get("warnings", []))
        if not trust["is_evidence"]:
            warnings.append(trust["message"])
        rows = session.execute(
            select(JobTask.stage, JobTask.seconds, JobTask.peak_rss_mb, JobTask.owner).where(
                JobTask.job_id == job.id
            )
        ).all()
        seconds: dict[str, float] = {}
        for stage, secs, _, _ in rows:
            seconds[stage] = seconds.get(stage, 0.0) + (secs or 0.0)
        peak = max((r.peak_rss_mb or 0.0) for r in rows) if rows else peak_rss_mb()
        loss = np.logaddexp(0.0, -margins)
        val_loss = np.logaddexp(0.0, -val_margins)
        metrics.update(
            engine="sharded",
            device=meta["device"],
            model=config.model,
            mode=config.mode,
            n_train=n_train,
            n_val=len(plan["val_ids"]),
            n_trainable_params=meta["n_trainable_params"],
            history=meta["history"],
            epoch_seconds=meta["epoch_seconds"],
            truncation_rate=meta["truncation_rate"],
            gradient_space=meta["space"],
            projection=meta["projection"],
            shards=meta["shards"],
            worker_processes=len({(r.owner or "").rsplit(":", 1)[0] for r in rows}),
            val_accuracy=float((val_margins > 0).mean()),
            val_loss=float(val_loss.mean()),
            train_accuracy=float((margins > 0).mean()),
            train_loss=float(loss.mean()),
            trust=trust,
            method_benchmark=method_benchmark(config.mode, n_train),
            mislabelled=mislabelled_estimate(margins, harm, source="in_sample"),
            # Seconds per stage summed over its tasks (the single-task engine's stage names).
            seconds={STAGE_LABELS.get(k, k): round(v, 3) for k, v in seconds.items()},
            peak_memory_mb={"cpu_rss_mb": peak},
            artifacts=context.prefix,
            validation_source=(
                f"dataset {context.options.val_dataset_id}"
                if context.options.val_dataset_id is not None
                else f"seeded {context.options.val_fraction:.0%} split (seed {config.seed})"
            ),
            warnings=warnings,
        )
        if meta.get("model_dir"):
            metrics["model_dir"] = meta["model_dir"]
        if solution_meta.get("solve") is not None:
            metrics["influence"] = solution_meta["solve"]
        if "val_gradient_norm" in solution_meta:
            metrics["val_gradient_norm"] = solution_meta["val_gradient_norm"]
        started = as_utc(job.started_at)
        if started is not None:
            metrics["seconds_total"] = round((utcnow() - started).total_seconds(), 3)
        job.metrics = metrics
        job.status, job.stage, job.progress = SUCCEEDED, "done", 1.0
        job.finished_at = utcnow()
        session.commit()
        from backend.services.query import refresh_stats

        refresh_stats(session, job)  # percentiles and counts for the review, once


def _needs_group(config: EngineConfig) -> bool:
    return "group" in config.methods


def _group_stage(
    context: JobContext,
    session: Session,
    plan: dict[str, np.ndarray],
    solution_meta: dict,
    val: dict[str, np.ndarray],
) -> dict:
    """The group method over the shards (worker.influence.group): candidates by first-order
    effect from the stored scores, their Δθ in the gradient space of the job (exact or
    projected) through the reduction's one Cholesky factor, greedy selection, then the
    group columns and the strongest interactions written. Returns the job's `group` metrics."""
    from backend.models import Interaction
    from worker.influence.curvature import sigmoid
    from worker.influence.group import GroupInfluence
    from worker.influence.group import select as select_greedy
    from worker.influence.stream import Solution

    job_id, config = context.job_id, context.config
    where = (Score.job_id == job_id, Score.split == "train")
    session.execute(delete(Interaction).where(Interaction.job_id == job_id))
    if solution_meta.get("in_memory"):
        # The single-task scorer ran in the reduction: its columns are stored; add the rest.
        stored = solution_meta.get("group") or {}
        _insert_interactions(session, job_id, stored.get("interactions", []))
        return stored.get("metrics", {})
    started = time.perf_counter()
    store = artifact_store()
    solution = Solution.from_arrays(store.get_arrays(context.key("solution.npz")), {})
    if "grads" not in val:
        raise RuntimeError("the group method needs the validation gradients (val.npz 'grads')")
    from scipy.linalg import cho_solve

    rows = session.execute(
        select(Score.pair_id)
        .where(*where, Score.removal_effect_influence.is_not(None))
        .order_by(Score.removal_effect_influence, Score.pair_id)
        .limit(config.group_candidates)
    ).all()
    candidates = np.asarray([r.pair_id for r in rows], dtype=np.int64)
    slot = {int(pid): k for k, pid in enumerate(candidates)}
    d_val = val["grads"].astype(np.float64)
    m, n = len(val["margins"]), solution.n
    q = cho_solve((solution.factor, True), d_val.T)  # (G + λI)⁻¹ D_valᵀ [d, m]
    projected = np.zeros((m, len(candidates)))  # D_val Δθ_C
    for shard in range(_shard_count(plan)):
        ids = plan["train_ids"][_shard_positions(plan, shard)]
        inside = np.isin(ids, candidates)
        if not inside.any():
            continue
        data = store.get_arrays(context.key(f"gradients/{shard:05d}.npz"))
        g = data["grads"][inside].astype(np.float64) * (-sigmoid(-data["margins"][inside]))[:, None]
        projected[:, [slot[int(i)] for i in ids[inside]]] = (q.T @ g.T) / n
    c_val = -sigmoid(-val["margins"])
    prob = sigmoid(val["margins"])
    group = GroupInfluence(
        candidates=np.arange(len(candidates)),
        effect=(c_val @ projected) / m,
        factor=np.sqrt(prob * (1.0 - prob) / m)[:, None] * projected,
        seconds=time.perf_counter() - started,
    )
    selection = select_greedy(
        group,
        len(plan["train_ids"]),
        config.prune_budget,
        damping_absolute=_factor_damping(solution_meta.get("solve") or {}),
    )
    session.execute(update(Score).where(*where).values(harm_group=0.0))
    upsert_scores(
        session,
        job_id,
        candidates,
        "train",
        {
            "group_order": selection.order,
            "group_gain": selection.gain,
            "harm_group": selection.harm,
        },
    )
    links = [[int(candidates[i]), int(candidates[j]), k] for i, j, k in selection.interactions]
    _insert_interactions(session, job_id, links)
    return selection.metrics


def _insert_interactions(session: Session, job_id: int, links: list) -> None:
    from backend.models import Interaction

    rows = [
        {"job_id": job_id, "pair_id": int(i), "other_id": int(j), "kappa": float(k)}
        for i, j, k in links
        if math.isfinite(k)
    ]
    for start in range(0, len(rows), _UPSERT_BATCH):
        session.execute(insert(Interaction), rows[start : start + _UPSERT_BATCH])


def _columns(session: Session, job_id: int, names: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    rows = session.execute(
        select(*(getattr(Score, n) for n in names))
        .where(Score.job_id == job_id, Score.split == "train")
        .order_by(Score.pair_id)
    ).all()
    data = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(names))
    return tuple(data[:, k] for k in range(len(names)))


def _global_columns(
    session: Session, job_id: int, config: EngineConfig, harm_column: Callable[[str], str]
) -> dict:
    """corrected_loss = z(loss) + z(self-influence) over all pairs, and `harm`, both in SQL
    (two-pass mean and population spread, as numpy's standardise)."""
    where = (Score.job_id == job_id, Score.split == "train")
    if "corrected_loss" in config.methods:
        value: Any = 0.0
        for column in (Score.loss, Score.harm_self_influence):
            mean = session.scalar(select(func.avg(column)).where(*where))
            if mean is None:
                continue
            deviation = column - float(mean)
            var = session.scalar(select(func.avg(deviation * deviation)).where(*where))
            if var is not None and var > 0:
                value = value + deviation / math.sqrt(float(var))
        session.execute(update(Score).where(*where).values(harm_corrected_loss=value))
    methods = list(config.methods)
    default = config.default_method if config.default_method in methods else methods[0]
    session.execute(update(Score).where(*where).values(harm=getattr(Score, harm_column(default))))
    return {"default_method": default}


# --------------------------------------------------------------------------------------------
# Head and pretrained modes: the backbone's features shard by shard, then one head fit.


def feature_blocks(n_train: int, n_val: int, size: int) -> list[tuple[str, int, int]]:
    """(split, start, stop) of each feature shard: blocks of `size` training pairs, then of
    validation pairs, in the split's order."""
    return [("train", s, min(s + size, n_train)) for s in range(0, n_train, size)] + [
        ("val", s, min(s + size, n_val)) for s in range(0, n_val, size)
    ]


@lru_cache(maxsize=1)
def _backbone(config_key: str) -> tuple[Any, Any]:
    """(backbone with its head, tokenizer) for a config (keyed by its JSON), once per process."""
    import json

    from worker.influence.model import load_backbone

    return load_backbone(EngineConfig(**json.loads(config_key)))


_POOLED_SIDES = ("chosen", "rejected")


def features(context: JobContext, run: TaskRun, shard: int) -> None:
    """The pooled backbone features of one block of training or validation pairs."""
    import json

    from worker.influence.features import backbone_features
    from worker.influence.model import Encoded, resolve_device

    store, config = artifact_store(), context.config
    key = context.key(f"features/{shard:05d}.npz")
    if store.exists(key):
        return
    run.label = "loading_model"
    backbone, tokenizer = _backbone(json.dumps(dataclasses.asdict(config), sort_keys=True))
    with run.factory() as session:
        train_ids, val_ids, _ = _split_ids(session, context)
        blocks = feature_blocks(len(train_ids), len(val_ids), effective_shard_size(config))
        if shard >= len(blocks):
            raise ValueError(f"feature shard {shard} of {len(blocks)}: the dataset changed")
        split, start, stop = blocks[shard]
        ids = (train_ids if split == "train" else val_ids)[start:stop]
        tokens, _ = _encode_by_ids(session, tokenizer, ids, config.max_length)
    run.pairs = len(ids)
    run.label = "extracting_features"
    device = resolve_device(config.device)
    pooled = backbone_features(
        backbone,
        Encoded(tokens, int(tokenizer.pad_token_id)),
        device,
        2 * config.chunk_size(device.type),
        run.progress,
        run.should_cancel,
    )
    # The backbone computes in fp32 (or less), so fp32 storage loses nothing.
    arrays = {
        f"{name}_{side}": tensor.float().cpu().numpy()
        for name, pair in pooled.items()
        for side, tensor in zip(_POOLED_SIDES, pair, strict=True)
    }
    store.put_arrays(key, {**arrays, "pair_ids": ids})


def _gather_features(
    context: JobContext, blocks: list[tuple[str, int, int]], ids: dict[str, np.ndarray]
) -> dict[str, Any]:
    """{split: Pooled} from the feature shards, checked against the split's pair ids."""
    import torch

    store = artifact_store()
    parts: dict[str, list[dict[str, np.ndarray]]] = {"train": [], "val": []}
    for shard, (split, start, stop) in enumerate(blocks):
        arrays = store.get_arrays(context.key(f"features/{shard:05d}.npz"))
        if not np.array_equal(arrays["pair_ids"], ids[split][start:stop]):
            raise RuntimeError(f"feature shard {shard} holds other pairs than the job's {split}")
        parts[split].append(arrays)
    out: dict[str, Any] = {}
    for split, shards in parts.items():
        names = sorted({key.rsplit("_", 1)[0] for key in shards[0] if key != "pair_ids"})
        out[split] = {
            name: tuple(
                torch.from_numpy(np.concatenate([a[f"{name}_{side}"] for a in shards])).double()
                for side in _POOLED_SIDES
            )
            for name in names
        }
    return out


def head(context: JobContext, run: TaskRun) -> None:
    """Fit the head on the gathered features and score every pair (the single-task engine's
    code from `run_audit` on), then store the scores and finish the job."""
    from worker.influence.audit import run_audit
    from worker.pipeline import _save_scores, validation_source

    config, factory = context.config, run.factory
    with factory() as session:
        train_ids, val_ids, val_in_dataset = _split_ids(session, context)
    blocks = feature_blocks(len(train_ids), len(val_ids), effective_shard_size(config))
    await_stage(run, "features", len(blocks))
    pooled = _gather_features(context, blocks, {"train": train_ids, "val": val_ids})
    with factory() as session:
        train_pairs = _pairs_by_ids(session, train_ids)
        val_pairs = _pairs_by_ids(session, val_ids)
    run.pairs = len(train_pairs)
    started = time.perf_counter()

    def progress(stage: str, fraction: float, message: str | None = None) -> None:
        run.progress(fraction, message)

    result = run_audit(
        train_pairs,
        val_pairs,
        config,
        progress=progress,
        should_cancel=run.should_cancel,
        features=(pooled["train"], pooled["val"]),
    )
    with factory() as session:
        tasks = session.execute(
            select(JobTask.stage, JobTask.seconds, JobTask.peak_rss_mb).where(
                JobTask.job_id == context.job_id, JobTask.stage == "features"
            )
        ).all()
    metrics = {
        **result.metrics,
        "n_train": len(train_ids),
        "n_val": len(val_ids),
        "validation_source": validation_source(context.options, config.seed),
        "engine": "sharded features",
        "shards": len(blocks),
        "feature_task_seconds": round(sum(t.seconds or 0.0 for t in tasks), 3),
        "worker_peak_rss_mb": max([t.peak_rss_mb or 0.0 for t in tasks] + [peak_rss_mb()]),
        "head_seconds": round(time.perf_counter() - started, 3),
    }
    _save_scores(
        factory,
        context.job_id,
        train_ids.tolist(),
        val_in_dataset.tolist(),
        result.scores,
        metrics,
        result.interactions,
    )
