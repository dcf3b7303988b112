"""Names of the per-pair scores the engine produces: re-exported from the method registry.

`worker.influence.methods` is the one place methods and their columns are defined; this module
keeps the older import path working.
"""

from __future__ import annotations

from worker.influence.methods import (
    GRADIENT_METHODS,
    HARM_COLUMNS,
    METHOD_NAMES,
    SCORE_COLUMNS,
    harm_column,
)

METHODS: tuple[str, ...] = METHOD_NAMES
"""Score methods a job can ask for, by name (the registry's order)."""

__all__ = [
    "GRADIENT_METHODS",
    "HARM_COLUMNS",
    "METHODS",
    "METHOD_NAMES",
    "SCORE_COLUMNS",
    "harm_column",
]
