"""The influence engine: reward-model training and per-pair scores, free of DB and Celery.

Importing this package stays cheap (no torch); the heavy modules load on first use.
"""

from worker.influence.config import EngineConfig
from worker.influence.data import Pair
from worker.influence.methods import (
    GRADIENT_METHODS,
    HARM_COLUMNS,
    METHOD_NAMES,
    METHODS,
    SCORE_COLUMNS,
    MethodSpec,
    harm_column,
)

__all__ = [
    "GRADIENT_METHODS",
    "HARM_COLUMNS",
    "METHODS",
    "METHOD_NAMES",
    "SCORE_COLUMNS",
    "EngineConfig",
    "MethodSpec",
    "Pair",
    "harm_column",
]
