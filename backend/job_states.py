"""Job and task states: a leaf module that the API, the services and the worker all import.

A job goes queued -> running -> succeeded | failed | cancelled. A sharded audit's tasks (one row
each in `job_tasks`) go queued -> running -> succeeded | failed | cancelled too; a running task
whose heartbeat stopped is taken over by the next delivery of its message.
"""

from __future__ import annotations

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"

FINISHED: tuple[str, ...] = (SUCCEEDED, FAILED, CANCELLED)
ACTIVE: tuple[str, ...] = (QUEUED, RUNNING)
