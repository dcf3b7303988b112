"""The Celery application. Redis (or any Celery broker) via BROKER_URL; without one, kombu's
filesystem transport under the data directory, so the embedded setup needs no server."""

from __future__ import annotations

from typing import Any

from celery import Celery

from backend.settings import Settings, get_settings

QUEUE = "prefaudit"


def broker_config(settings: Settings) -> dict[str, Any]:
    if not settings.uses_filesystem_broker:
        return {"broker_url": settings.broker_url}
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


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery("prefaudit", include=["worker.tasks"])
    app.conf.update(
        **broker_config(settings),
        task_default_queue=QUEUE,
        # Job state lives in our database; Celery's result backend would be a second truth.
        task_ignore_result=True,
        # Jobs are long and idempotent: acknowledge after running, one at a time per process.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
    )
    if not settings.uses_filesystem_broker:
        # A job may run for hours; Redis redelivers unacknowledged tasks after this long.
        app.conf.broker_transport_options = {"visibility_timeout": 24 * 3600}
    return app


celery_app = make_celery()
