"""The registry entries of outside reward models' columns (worker/influence/reward_models.py
computes them; worker/influence/methods.py adds them to the score columns): one margin slot per
model an audit names in `reward_models` (the names in its metrics), then their vote."""

from __future__ import annotations

from worker.influence.column_spec import ColumnSpec


def _reward_model_columns(slots: int) -> tuple[ColumnSpec, ...]:
    """Outside reward models' columns (worker/influence/reward_models.py): one margin slot per
    model named in an audit's `reward_models` (the names in its metrics), then their vote."""
    margins = tuple(
        ColumnSpec(
            f"rm_margin_{k}",
            label=f"reward model {k} margin",
            unit="reward difference",
            orientation="lower_harmful",
            higher=f"the audit's reward model {k} prefers chosen by more",
        )
        for k in range(1, slots + 1)
    )
    return margins + (
        ColumnSpec(
            "rm_mean",
            label="reward models' mean margin",
            unit="reward difference",
            orientation="lower_harmful",
            higher="the outside reward models agree with the label",
        ),
        ColumnSpec(
            "rm_spread",
            label="reward models' spread",
            unit="reward difference (std)",
            orientation="unsigned",
            higher="the outside reward models' margins differ",
        ),
        ColumnSpec(
            "rm_votes_against",
            label="reward models against the label",
            unit="models",
            orientation="higher_harmful",
            higher="more outside reward models prefer the rejected answer",
        ),
        ColumnSpec(
            "rm_ambiguous",
            label="reward models split (ambiguous)",
            unit="1 = ambiguous, 0 = not",
            orientation="unsigned",
            higher="the outside reward models split on the pair",
        ),
    )


REWARD_MODEL_SLOTS = 4
"""How many reward models an audit may name (one margin column each)."""

REWARD_MODEL_COLUMNS: tuple[ColumnSpec, ...] = _reward_model_columns(REWARD_MODEL_SLOTS)
"""Filled by the job runner when an audit names `reward_models` (no method computes them)."""


__all__ = ["REWARD_MODEL_COLUMNS", "REWARD_MODEL_SLOTS"]
