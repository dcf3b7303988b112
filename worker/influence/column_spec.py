"""One per-pair score column as the registry declares it (worker/influence/methods.py re-exports
it): its own module, so column groups filled outside the methods (reward models) can be declared
beside the code that fills them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Orientation = Literal["higher_harmful", "lower_harmful", "unsigned"]
"""Which end of a column is the harmful one: `harm_*` columns are all "higher_harmful"."""


@dataclass(frozen=True)
class ColumnSpec:
    """One per-pair score column: the database column, the API field and the UI's label."""

    name: str
    label: str
    """Human name for the UI (ranking menus, the pair's score table)."""
    unit: str
    """What the number is measured in."""
    orientation: Orientation
    higher: str
    """What a high value means, in a few words (shown beside a ranking)."""
    indexed: bool = False
    """Has a (job, split, column, pair) index: its sorted pages cost the same at any depth."""
    ranked: bool = True
    """Offered as a ranking and filter column in the review UI."""
    shown: bool = True
    """Listed among a pair's scores (False where it repeats another column)."""
    partial: bool = False
    """NaN (stored as null) by design for some pairs (group's columns outside the candidates)."""
