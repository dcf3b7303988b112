"""The job queue's Celery configuration, shared by the API's client (which enqueues and revokes
by task name) and the worker's app (worker/celery_app.py, which registers the tasks).

Redis (or any Celery broker) via BROKER_URL; without one, kombu's filesystem transport under the
data directory, so the embedded setup needs no server. Two queues: `GPU_QUEUE` for training and
per-pair gradients (one worker per GPU), `CPU_QUEUE` for reductions, scoring shards and
bookkeeping; the job entry task (which runs head-mode and verify jobs itself) goes to the GPU
queue. Chords (a sharded audit's fan-in) count finished shards in the result backend: Redis
beside a Redis broker, Celery's SQLAlchemy backend on a SQLite file beside the filesystem broker.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from celery import Celery
from kombu import Queue

from backend.settings import Settings, get_settings
from worker import tasknames

GPU_QUEUE = "prefaudit-gpu"
CPU_QUEUE = "prefaudit-cpu"
QUEUES: tuple[str, ...] = (GPU_QUEUE, CPU_QUEUE)

TASK_ROUTES: dict[str, dict[str, str]] = {
    # The entry task runs verify jobs itself, so it goes where the models run.
    tasknames.RUN_JOB: {"queue": GPU_QUEUE},
    tasknames.FEATURES: {"queue": GPU_QUEUE},
    tasknames.HEAD: {"queue": CPU_QUEUE},
    tasknames.TRAIN: {"queue": GPU_QUEUE},
    tasknames.GRADIENTS: {"queue": GPU_QUEUE},
    tasknames.REDUCE: {"queue": CPU_QUEUE},
    tasknames.SCORES: {"queue": CPU_QUEUE},
    tasknames.FINALIZE: {"queue": CPU_QUEUE},
    tasknames.REWARDS: {"queue": GPU_QUEUE},
}


def broker_config(settings: Settings) -> dict[str, Any]:
    if not settings.uses_filesystem_broker:
        return {
            "broker_url": settings.broker_url,
            # Redis redelivers what is not acknowledged within this long; tasks are shards, so
            # an hour is far above any one of them (the reaper handles dead workers sooner).
            "broker_transport_options": {"visibility_timeout": settings.visibility_timeout_seconds},
            "result_backend_transport_options": {
                "visibility_timeout": settings.visibility_timeout_seconds
            },
        }
    folder = settings.broker_folder
    queue = folder / "queue"
    processed = folder / "processed"
    control = folder / "control"
    for path in (queue, processed, control):
        path.mkdir(parents=True, exist_ok=True)
    return {
        "broker_url": "filesystem://",
        "broker_transport_options": {
            "data_folder_in": str(queue),
            "data_folder_out": str(queue),
            "processed_folder": str(processed),
            "store_processed": False,
            # Exchange bindings; kombu's default is ./control in the current directory.
            "control_folder": str(control),
        },
        # The filesystem transport has no fanout exchange for remote control.
        "worker_enable_remote_control": False,
    }


def celery_config(settings: Settings) -> dict[str, Any]:
    """Everything both sides configure alike: broker, result backend, queues, routes, acks."""
    return {
        **broker_config(settings),
        "result_backend": settings.result_backend_url,
        "result_expires": 7 * 24 * 3600,
        "task_default_queue": GPU_QUEUE,
        "task_queues": [Queue(name) for name in QUEUES],
        "task_routes": TASK_ROUTES,
        # Job state lives in our database; only chord members keep a result (chords need one).
        "task_ignore_result": True,
        # Tasks are idempotent: acknowledge after running, and when the process running one dies
        # (a killed prefork child), reject it so the broker delivers it again at once.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_connection_retry_on_startup": True,
        # Chord fan-in polls the SQLAlchemy backend; Redis counts natively.
        "result_chord_join_timeout": 60,
    }


def make_celery(settings: Settings | None = None, include: list[str] | None = None) -> Celery:
    """A Celery app on the configured broker; the worker's includes its task modules."""
    app = Celery("prefaudit", include=include or [])
    app.conf.update(**celery_config(settings or get_settings()))
    return app


@lru_cache(maxsize=1)
def queue_client() -> Celery:
    """The API's client: sends tasks by name (worker/tasknames.py) and revokes them."""
    return make_celery()


def send_task(name: str, *args: Any, **kwargs: Any) -> str:
    """Put task `name` on the broker with these arguments; returns its Celery id."""
    return str(queue_client().send_task(name, args=list(args), kwargs=kwargs).id)


def revoke(task_ids: list[str]) -> None:
    """Revoke queued tasks (not over the filesystem transport, which has no remote control)."""
    if task_ids and not get_settings().uses_filesystem_broker:
        queue_client().control.revoke(task_ids)
