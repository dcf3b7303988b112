"""The worker's Celery application: the shared queue configuration (backend/storage/queue.py)
with the task modules included, and one torch thread pool per worker process."""

from __future__ import annotations

import os
from typing import Any

from celery.signals import worker_process_init

from backend.storage.queue import make_celery


@worker_process_init.connect
def _limit_threads(**_: Any) -> None:
    """One BLAS/torch thread pool per worker process: PREFAUDIT_TORCH_THREADS (default: torch's)."""
    threads = os.environ.get("PREFAUDIT_TORCH_THREADS")
    if threads:
        import torch  # heavy: only when a thread count is asked for, in the task process

        torch.set_num_threads(int(threads))


celery_app = make_celery(include=["worker.tasks"])
