"""Names of the per-pair scores the engine produces; the database's `scores` table mirrors them.

Sign convention (../shared/SCIENCE.md): every `harm_*` column is oriented so that higher means more
harmful. `removal_effect_*` is e_i itself, the predicted change of validation loss if pair i is
removed (negative = harmful). `loss` and `margin` are raw values under the trained model;
`oof_margin` is the cross-fitted margin (models that never saw the pair) and
`ensemble_disagreement` the fold models' spread of the margin.
"""

from __future__ import annotations

METHODS: tuple[str, ...] = (
    "loss",
    "gradient_similarity",
    "influence",
    "datainf",
    "self_influence",
    "corrected_loss",
    "tracin",
    "length",
    "oof_loss",
    "ensemble",
)
"""Score methods a job can ask for, by name."""

SCORE_COLUMNS: tuple[str, ...] = (
    "harm",
    "loss",
    "margin",
    "harm_loss",
    "harm_gradient_similarity",
    "harm_gradient_cosine",
    "harm_influence",
    "removal_effect_influence",
    "harm_datainf",
    "removal_effect_datainf",
    "harm_self_influence",
    "harm_corrected_loss",
    "harm_tracin",
    "harm_length",
    "harm_oof_loss",
    "oof_margin",
    "harm_ensemble",
    "ensemble_disagreement",
)
"""Every per-pair column; `harm` is the job's default method, the one users see first."""
