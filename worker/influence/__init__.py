"""The influence engine: reward-model training and per-pair scores, free of DB and Celery.

Importing this package stays cheap (no torch); the heavy modules load on first use.
"""

from worker.influence.columns import METHODS, SCORE_COLUMNS
from worker.influence.config import EngineConfig
from worker.influence.data import Pair

__all__ = ["METHODS", "SCORE_COLUMNS", "EngineConfig", "Pair"]
