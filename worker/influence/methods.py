"""The score methods a job can ask for, in one registry: names, columns, what they need.

Every other list of methods (the columns module, the backend's sort keys and harm columns, the API's
enums, the UI's options) is derived from `METHODS` here. Torch-free: the backend imports it.

Sign convention (../shared/SCIENCE.md): every `harm_*` column is oriented so that higher means more
harmful. `removal_effect_*` is e_i itself, the predicted change of validation loss if pair i is
removed (negative = harmful). `loss` and `margin` are raw values under the trained model;
`oof_margin` is the cross-fitted margin (models that never saw the pair) and
`ensemble_disagreement` the fold models' spread of the margin.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

MethodName = Literal[
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
    "group",
]
"""A method's name, as a job's `methods` and `default_method` take it (an enum in the API)."""


@dataclass(frozen=True)
class MethodSpec:
    """One score method: what it is called, which columns it fills and what it needs."""

    name: MethodName
    label: str
    """Human name for the UI."""
    harm_column: str
    """The `harm_*` column it fills (higher = more harmful)."""
    columns: tuple[str, ...]
    """Every score column it fills, its harm column among them."""
    orientation: str
    """What a high harm means, in one sentence."""
    description: str
    """One or two sentences for the UI and the docs."""
    needs_gradients: bool = False
    """Computed from per-pair gradients of the fitted model."""
    needs_validation: bool = False
    """Uses the validation pairs (their gradient, or their length habit)."""
    needs_curvature: bool = False
    """Solves with the damped curvature (Gauss–Newton or exact Hessian)."""
    needs_checkpoints: bool = False
    """Uses the intermediate checkpoints of SGD training."""
    lora_only: bool = False
    """Only in mode='lora' (the other modes have no training trajectory)."""


_SPECS: tuple[MethodSpec, ...] = (
    MethodSpec(
        name="loss",
        label="loss",
        harm_column="harm_loss",
        columns=("loss", "margin", "harm_loss"),
        orientation="High: the trained reward model disagrees with the label (a large BT loss).",
        description=(
            "Bradley–Terry loss −log σ(margin) and the margin under the trained model; always "
            "computed because it costs nothing, and the baseline every other score must beat."
        ),
    ),
    MethodSpec(
        name="gradient_similarity",
        label="gradient similarity",
        harm_column="harm_gradient_similarity",
        columns=("harm_gradient_similarity", "harm_gradient_cosine"),
        orientation="High: the pair's loss gradient points against the validation gradient.",
        description=(
            "Dot product (and cosine) of the pair's gradient with the validation-loss gradient: "
            "first-order influence with the curvature replaced by the identity."
        ),
        needs_gradients=True,
        needs_validation=True,
    ),
    MethodSpec(
        name="influence",
        label="influence",
        harm_column="harm_influence",
        columns=("harm_influence", "removal_effect_influence"),
        orientation="High: removing the pair is predicted to lower the validation loss.",
        description=(
            "Influence function (Koh & Liang): the predicted change of validation loss if the "
            "pair is removed, from one solve with the damped Gauss–Newton matrix (conjugate "
            "gradient or an exact Woodbury solve) or exact Hessian-vector products."
        ),
        needs_gradients=True,
        needs_validation=True,
        needs_curvature=True,
    ),
    MethodSpec(
        name="datainf",
        label="datainf",
        harm_column="harm_datainf",
        columns=("harm_datainf", "removal_effect_datainf"),
        orientation="High: removing the pair is predicted to lower the validation loss.",
        description=(
            "DataInf (Kwon et al. 2024): influence with a closed-form per-layer inverse of the "
            "curvature, no solve."
        ),
        needs_gradients=True,
        needs_validation=True,
    ),
    MethodSpec(
        name="self_influence",
        label="self influence",
        harm_column="harm_self_influence",
        columns=("harm_self_influence",),
        orientation="High: the pair moved the model on its own (outliers and mislabels).",
        description=(
            "Self-influence g_iᵀ H_λ⁻¹ g_i: large for outliers and mislabels; needs no validation "
            "set."
        ),
        needs_gradients=True,
        needs_curvature=True,
    ),
    MethodSpec(
        name="corrected_loss",
        label="corrected loss",
        harm_column="harm_corrected_loss",
        columns=("harm_corrected_loss", "harm_self_influence"),
        orientation="High: a large loss, a large self-influence, or both, on one scale.",
        description=(
            "z(loss) + z(self-influence): the in-sample loss corrected for pairs the model has "
            "memorised; fills the self-influence column too."
        ),
        needs_gradients=True,
        needs_curvature=True,
    ),
    MethodSpec(
        name="tracin",
        label="tracin",
        harm_column="harm_tracin",
        columns=("harm_tracin",),
        orientation="High: along training, the pair's steps raised the validation loss.",
        description=(
            "TracIn-CP: the learning-rate-weighted dot products of the pair's gradient with the "
            "validation gradient, summed over the training checkpoints (LoRA mode only)."
        ),
        needs_gradients=True,
        needs_validation=True,
        needs_checkpoints=True,
        lora_only=True,
    ),
    MethodSpec(
        name="length",
        label="length heuristic",
        harm_column="harm_length",
        columns=("harm_length",),
        orientation=(
            "High: the chosen answer breaks the validation pairs' length habit (shorter than the "
            "rejected one where chosen answers are usually longer, or the reverse)."
        ),
        description=(
            "The model-free length heuristic: a chosen answer shorter than the rejected one is "
            "suspect, or longer, whichever the validation pairs say."
        ),
        needs_validation=True,
    ),
    MethodSpec(
        name="oof_loss",
        label="out-of-fold loss",
        harm_column="harm_oof_loss",
        columns=("harm_oof_loss", "oof_margin"),
        orientation="High: models that never saw the pair disagree with its label.",
        description=(
            "K-fold out-of-fold loss: each pair scored by models trained on the other folds, "
            "averaged over crossfit_repeats fold partitions; also the out-of-fold margin."
        ),
    ),
    MethodSpec(
        name="ensemble",
        label="ensemble (−mean margin)",
        harm_column="harm_ensemble",
        columns=("harm_ensemble", "ensemble_disagreement"),
        orientation="High: the fold models, on average, prefer the rejected answer.",
        description=(
            "Minus the cross-fitted fold models' mean margin, with their disagreement (the "
            "margin's spread over the models)."
        ),
    ),
    MethodSpec(
        name="group",
        label="group (greedy, interaction-aware)",
        harm_column="harm_group",
        columns=(
            "harm_group",
            "group_order",
            "group_gain",
            "harm_influence",
            "removal_effect_influence",
        ),
        orientation=(
            "High: greedy pruning removes the pair early — its removal, given the pairs removed "
            "before it, lowers the validation loss most."
        ),
        description=(
            "Interaction-aware group influence (Heo et al. 2026): removing a set S changes the "
            "validation loss by Σ e_i + ½ ΣΣ κ(i, j), κ(i, j) = Δθ_iᵀ H_val Δθ_j. Greedy selection "
            "over the candidates (the group_candidates pairs with the most harmful first-order "
            "influence) orders them; group_order is that order (1 = first removed), group_gain the "
            "predicted change of validation loss the step adds. Near-duplicates of a pair already "
            "removed are redundant (κ > 0) and move down. prune_budget pairs are the selection."
        ),
        needs_gradients=True,
        needs_validation=True,
        needs_curvature=True,
    ),
)

METHODS: dict[str, MethodSpec] = {spec.name: spec for spec in _SPECS}
"""Score methods a job can ask for, by name, in the order the API and the UI list them."""

METHOD_NAMES: tuple[MethodName, ...] = tuple(spec.name for spec in _SPECS)
"""The methods' names, in registry order (equal to the `MethodName` literal's values)."""

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
    "harm_group",
    "group_order",
    "group_gain",
)
"""Every per-pair column; `harm` is the job's default method, the one users see first. The
`scores` table of backend/models.py mirrors this order; every method's columns are among these."""

HARM_COLUMNS: tuple[str, ...] = tuple(c for c in SCORE_COLUMNS if c.startswith("harm"))
"""Columns oriented so that higher = more harmful: `harm`, then every method's harm column and the
gradient cosine, in column order."""

GRADIENT_METHODS: frozenset[str] = frozenset(s.name for s in _SPECS if s.needs_gradients)
"""Methods computed from per-pair gradients (and curvature) of the fitted model."""


def harm_column(method: str) -> str:
    """The `harm_*` column a method fills; KeyError naming the known methods otherwise."""
    try:
        return METHODS[method].harm_column
    except KeyError:
        raise KeyError(
            f"unknown method {method!r}; known methods: {', '.join(METHOD_NAMES)}"
        ) from None


def _check() -> None:
    """The registry agrees with itself: run at import, so a bad edit fails every test at once."""
    if typing.get_args(MethodName) != METHOD_NAMES:
        raise AssertionError("MethodName and the registry list different methods")
    for spec in _SPECS:
        if spec.harm_column not in spec.columns or not spec.harm_column.startswith("harm_"):
            raise AssertionError(f"{spec.name}: its harm column must be a harm_* column it fills")
        missing = set(spec.columns) - set(SCORE_COLUMNS)
        if missing:
            raise AssertionError(f"{spec.name} fills unknown columns {sorted(missing)}")


_check()
