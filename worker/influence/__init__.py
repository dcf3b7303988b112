"""The influence engine: reward-model training and per-pair scores, free of DB and Celery.

Importing this package stays cheap (no torch); the heavy modules load on first use.
"""

from worker.influence.columns import METHODS, SCORE_COLUMNS

__all__ = ["METHODS", "SCORE_COLUMNS"]
