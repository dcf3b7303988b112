"""The storage layer that the API (backend.services) and the worker (worker.jobs) both stand on:
score tables, their statistics, the ranking queries, a job's decoded config, job artifacts and the
job queue's configuration. It imports neither side."""
