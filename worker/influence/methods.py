"""The score methods a job can ask for, in one registry: their columns, computations and needs.

Each entry names the columns it fills (label, unit, orientation), its single-task computation,
its per-shard scorer and global finaliser for the sharded engine, and what it needs. Every other
list of methods or columns (the database table, the API's `PairScores` and enums, the UI's lists,
both engines' dispatch) is derived from `METHODS` here. Torch-free: the backend imports it.

Sign convention (../shared/SCIENCE.md): every `harm_*` column is oriented so that higher means more
harmful. `removal_effect_*` is e_i itself, the predicted change of validation loss if pair i is
removed (negative = harmful). `loss` and `margin` are raw values under the trained model;
`oof_margin` is the cross-fitted margin (models that never saw the pair) and
`ensemble_disagreement` the fold models' spread of the margin.
"""

from __future__ import annotations

import importlib
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from worker.influence.column_spec import ColumnSpec as ColumnSpec
from worker.influence.column_spec import Orientation as Orientation
from worker.influence.judge_columns import JUDGE_COLUMN_SPECS
from worker.influence.reward_columns import REWARD_MODEL_COLUMNS

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

AUTO: Final = "auto"
"""`default_method`'s value that lets the job choose its `harm` ranking by its own evidence
(canaries and validation figures: worker/influence/canaries.py). Every method name forces that
method instead, `length` included."""
DefaultMethodName = Literal["auto", MethodName]
"""What `default_method` takes: `AUTO` or a method's name."""
AUTO_PROVISIONAL: Final = "length"
"""What `AUTO` resolves to where nothing chooses (the engine without a job around it; the job
replaces it by its canaries' choice): the ranking that needs no model."""


@dataclass(frozen=True)
class MethodSpec:
    """One score method: its columns, what it needs and the functions that compute it.

    The functions are named as "module:function" (worker.influence modules) so this registry
    stays torch-free; `worker.influence.dispatch` resolves them.
    """

    name: MethodName
    label: str
    """Human name for the UI."""
    harm_column: str
    """The `harm_*` column it fills (higher = more harmful)."""
    owns: tuple[ColumnSpec, ...]
    """The columns this method introduces, in table order, its harm column among them."""
    orientation: str
    """What a high harm means, in one sentence."""
    description: str
    """One or two sentences for the UI and the docs."""
    also_fills: tuple[str, ...] = ()
    """Columns of other methods it fills too (group fills influence's first-order columns)."""
    single: str | None = None
    """The single-task computation, `(ScoringContext) -> None` (None: computed for every job)."""
    shard: str | None = None
    """The sharded engine's per-shard scorer, `(ShardInputs) -> dict[str, ndarray]`."""
    finalise: str | None = None
    """The sharded engine's global step over every pair, `(columns, GlobalInputs) ->
    (new columns, metrics)`, run after every shard is scored."""
    reads: tuple[str, ...] = ()
    """The columns `finalise` reads (what the sharded path loads back)."""
    always: bool = False
    """Computed for every job, asked for or not (loss costs nothing)."""
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
    needs_crossfit: bool = False
    """Trains fold models on every pair but a fold: one task holds every pair."""

    @property
    def columns(self) -> tuple[str, ...]:
        """Every score column it fills, its harm column among them."""
        return tuple(c.name for c in self.owns) + self.also_fills

    @property
    def streamable(self) -> bool:
        """The sharded engine can compute it (per shard, then globally)."""
        return self.always or self.shard is not None or self.finalise is not None


NATS = "nats (Δ validation loss)"
"""The unit of an influence: a predicted change of mean validation BT loss."""

HARM = ColumnSpec(
    "harm",
    label="harm (default)",
    unit="the default method's",
    orientation="higher_harmful",
    higher="ranked most harmful by the audit's default",
    indexed=True,
)
"""The job's default method's harm column, copied: the one users see first."""

_SPECS: tuple[MethodSpec, ...] = (
    MethodSpec(
        name="loss",
        label="loss",
        harm_column="harm_loss",
        owns=(
            ColumnSpec(
                "loss",
                label="BT loss",
                unit="nats",
                orientation="higher_harmful",
                higher="the model disagrees with the label",
                indexed=True,
            ),
            ColumnSpec(
                "margin",
                label="margin",
                unit="reward difference",
                orientation="lower_harmful",
                higher="the model prefers chosen by more",
            ),
            ColumnSpec(
                "harm_loss",
                label="BT loss",
                unit="nats",
                orientation="higher_harmful",
                higher="the model disagrees with the label",
                ranked=False,
                shown=False,
            ),
        ),
        orientation="High: the trained reward model disagrees with the label (a large BT loss).",
        description=(
            "Bradley–Terry loss −log σ(margin) and the margin under the trained model; always "
            "computed because it costs nothing, and the baseline every other score must beat."
        ),
        single="scoring:score_loss",
        shard="stream:loss_shard",
        always=True,
    ),
    MethodSpec(
        name="gradient_similarity",
        label="gradient similarity",
        harm_column="harm_gradient_similarity",
        owns=(
            ColumnSpec(
                "harm_gradient_similarity",
                label="gradient similarity",
                unit="gradient dot product",
                orientation="higher_harmful",
                higher="its gradient opposes the validation gradient",
                indexed=True,
            ),
            ColumnSpec(
                "harm_gradient_cosine",
                label="gradient cosine",
                unit="cosine, −1 to 1",
                orientation="higher_harmful",
                higher="its gradient points against validation",
            ),
        ),
        orientation="High: the pair's loss gradient points against the validation gradient.",
        description=(
            "Dot product (and cosine) of the pair's gradient with the validation-loss gradient: "
            "first-order influence with the curvature replaced by the identity."
        ),
        single="scoring:score_gradient_similarity",
        shard="stream:gradient_similarity_shard",
        needs_gradients=True,
        needs_validation=True,
    ),
    MethodSpec(
        name="influence",
        label="influence",
        harm_column="harm_influence",
        owns=(
            ColumnSpec(
                "harm_influence",
                label="influence",
                unit=NATS,
                orientation="higher_harmful",
                higher="removing it lowers the validation loss most",
                indexed=True,
            ),
            ColumnSpec(
                "removal_effect_influence",
                label="removal effect (influence)",
                unit=NATS,
                orientation="lower_harmful",
                higher="removing it raises the validation loss",
                ranked=False,
                shown=False,
            ),
        ),
        orientation="High: removing the pair is predicted to lower the validation loss.",
        description=(
            "Influence function (Koh & Liang): the predicted change of validation loss if the "
            "pair is removed, from one solve with the damped Gauss–Newton matrix (conjugate "
            "gradient or an exact Woodbury solve) or exact Hessian-vector products."
        ),
        single="scoring:score_influence",
        shard="stream:influence_shard",
        needs_gradients=True,
        needs_validation=True,
        needs_curvature=True,
    ),
    MethodSpec(
        name="datainf",
        label="datainf",
        harm_column="harm_datainf",
        owns=(
            ColumnSpec(
                "harm_datainf",
                label="DataInf",
                unit=NATS,
                orientation="higher_harmful",
                higher="removing it lowers the validation loss (DataInf)",
            ),
            ColumnSpec(
                "removal_effect_datainf",
                label="removal effect (DataInf)",
                unit=NATS,
                orientation="lower_harmful",
                higher="removing it raises the validation loss (DataInf)",
                ranked=False,
                shown=False,
            ),
        ),
        orientation="High: removing the pair is predicted to lower the validation loss.",
        description=(
            "DataInf (Kwon et al. 2024): influence with a closed-form per-layer inverse of the "
            "curvature, no solve."
        ),
        single="scoring:score_datainf",
        shard="stream:datainf_shard",
        needs_gradients=True,
        needs_validation=True,
    ),
    MethodSpec(
        name="self_influence",
        label="self influence",
        harm_column="harm_self_influence",
        owns=(
            ColumnSpec(
                "harm_self_influence",
                label="self-influence",
                unit="g_iᵀ H_λ⁻¹ g_i",
                orientation="higher_harmful",
                higher="memorised: the model bends most to fit it",
            ),
        ),
        orientation="High: the pair moved the model on its own (outliers and mislabels).",
        description=(
            "Self-influence g_iᵀ H_λ⁻¹ g_i: large for outliers and mislabels; needs no validation "
            "set."
        ),
        single="scoring:score_self_influence",
        shard="stream:self_influence_shard",
        needs_gradients=True,
        needs_curvature=True,
    ),
    MethodSpec(
        name="corrected_loss",
        label="corrected loss",
        harm_column="harm_corrected_loss",
        owns=(
            ColumnSpec(
                "harm_corrected_loss",
                label="corrected loss",
                unit="sum of two z-scores",
                orientation="higher_harmful",
                higher="high loss not explained by memorisation",
            ),
        ),
        also_fills=("harm_self_influence",),
        orientation="High: a large loss, a large self-influence, or both, on one scale.",
        description=(
            "z(loss) + z(self-influence): the in-sample loss corrected for pairs the model has "
            "memorised; fills the self-influence column too."
        ),
        single="scoring:score_corrected_loss",
        shard="stream:self_influence_shard",
        finalise="stream:corrected_loss_global",
        reads=("loss", "harm_self_influence"),
        needs_gradients=True,
        needs_curvature=True,
    ),
    MethodSpec(
        name="tracin",
        label="tracin",
        harm_column="harm_tracin",
        owns=(
            ColumnSpec(
                "harm_tracin",
                label="TracIn",
                unit="learning rate × gradient dot product",
                orientation="higher_harmful",
                higher="its training steps raised the validation loss",
            ),
        ),
        orientation="High: along training, the pair's steps raised the validation loss.",
        description=(
            "TracIn-CP: the learning-rate-weighted dot products of the pair's gradient with the "
            "validation gradient, summed over the training checkpoints (LoRA mode only)."
        ),
        single="scoring:score_tracin",
        needs_gradients=True,
        needs_validation=True,
        needs_checkpoints=True,
        lora_only=True,
    ),
    MethodSpec(
        name="length",
        label="length heuristic",
        harm_column="harm_length",
        owns=(
            ColumnSpec(
                "harm_length",
                label="length heuristic",
                unit="characters",
                orientation="higher_harmful",
                higher="chosen is much shorter than rejected",
            ),
        ),
        orientation=(
            "High: the chosen answer breaks the validation pairs' length habit (shorter than the "
            "rejected one where chosen answers are usually longer, or the reverse)."
        ),
        description=(
            "The model-free length heuristic: a chosen answer shorter than the rejected one is "
            "suspect, or longer, whichever the validation pairs say."
        ),
        single="scoring:score_length",
        finalise="stream:length_global",
        needs_validation=True,
    ),
    MethodSpec(
        name="oof_loss",
        label="out-of-fold loss",
        harm_column="harm_oof_loss",
        owns=(
            ColumnSpec(
                "harm_oof_loss",
                label="out-of-fold loss",
                unit="nats",
                orientation="higher_harmful",
                higher="a model that never saw it disagrees with the label",
            ),
            ColumnSpec(
                "oof_margin",
                label="out-of-fold margin",
                unit="reward difference",
                orientation="lower_harmful",
                higher="models that never saw it prefer chosen by more",
                ranked=False,
            ),
        ),
        orientation="High: models that never saw the pair disagree with its label.",
        description=(
            "K-fold out-of-fold loss: each pair scored by models trained on the other folds, "
            "averaged over crossfit_repeats fold partitions; also the out-of-fold margin."
        ),
        single="scoring:score_oof_loss",
        needs_crossfit=True,
    ),
    MethodSpec(
        name="ensemble",
        label="ensemble (−mean margin)",
        harm_column="harm_ensemble",
        owns=(
            ColumnSpec(
                "harm_ensemble",
                label="ensemble (−mean margin)",
                unit="reward difference",
                orientation="higher_harmful",
                higher="an ensemble agrees the label looks wrong",
            ),
            ColumnSpec(
                "ensemble_disagreement",
                label="ensemble disagreement",
                unit="reward difference (spread)",
                orientation="unsigned",
                higher="the ensemble's members disagree",
            ),
        ),
        orientation="High: the fold models, on average, prefer the rejected answer.",
        description=(
            "Minus the cross-fitted fold models' mean margin, with their disagreement (the "
            "margin's spread over the models)."
        ),
        single="scoring:score_ensemble",
        needs_crossfit=True,
    ),
    MethodSpec(
        name="group",
        label="group (greedy, interaction-aware)",
        harm_column="harm_group",
        owns=(
            ColumnSpec(
                "harm_group",
                label="group (greedy)",
                unit="greedy rank, reversed",
                orientation="higher_harmful",
                higher="removed early by interaction-aware pruning",
                shown=False,
            ),
            ColumnSpec(
                "group_order",
                label="greedy order",
                unit="position (1 = removed first)",
                orientation="lower_harmful",
                higher="removed late by interaction-aware pruning",
                ranked=False,
                partial=True,
            ),
            ColumnSpec(
                "group_gain",
                label="greedy step Δ val. loss",
                unit=NATS,
                orientation="lower_harmful",
                higher="its greedy step lowers the validation loss less",
                ranked=False,
                partial=True,
            ),
        ),
        also_fills=("harm_influence", "removal_effect_influence"),
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
        single="scoring:score_group",
        # Per shard, group's first-order effects (the influence columns); the greedy selection
        # over the shards' candidates is the sharded job runner's finalize stage.
        shard="stream:influence_shard",
        needs_gradients=True,
        needs_validation=True,
        needs_curvature=True,
    ),
)

METHODS: dict[str, MethodSpec] = {spec.name: spec for spec in _SPECS}
"""Score methods a job can ask for, by name, in the order the API and the UI list them."""

METHOD_NAMES: tuple[MethodName, ...] = tuple(spec.name for spec in _SPECS)
"""The methods' names, in registry order (equal to the `MethodName` literal's values)."""


OUTSIDE_COLUMN_SPECS: tuple[ColumnSpec, ...] = REWARD_MODEL_COLUMNS + JUDGE_COLUMN_SPECS
"""Columns no method computes: the outside reward models' (an audit's `reward_models`) and the
LLM judge's (a judge job)."""


def score_column_specs(specs: Iterable[MethodSpec]) -> tuple[ColumnSpec, ...]:
    """Every per-pair column, in table order: `harm`, the outside columns, then each method's own
    (so a method registered later adds its columns at the end).

    The one derivation of the column list: the database table, the API's `PairScores` and
    `ScoreColumn` and the UI's lists all start here (a test passes extra methods)."""
    return (HARM,) + OUTSIDE_COLUMN_SPECS + tuple(c for spec in specs for c in spec.owns)


SCORE_COLUMN_SPECS: tuple[ColumnSpec, ...] = score_column_specs(_SPECS)
"""Every per-pair column, in table order; `harm` is the job's default method's harm column."""

SCORE_COLUMNS: tuple[str, ...] = tuple(c.name for c in SCORE_COLUMN_SPECS)
"""Every per-pair column's name; the `scores` table of backend/models.py is built from these."""

COLUMNS: dict[str, ColumnSpec] = {c.name: c for c in SCORE_COLUMN_SPECS}
"""Score columns by name."""

HARM_COLUMNS: tuple[str, ...] = tuple(c for c in SCORE_COLUMNS if c.startswith("harm"))
"""Columns oriented so that higher = more harmful: `harm`, then every method's harm column and the
gradient cosine, in column order."""

PARTIAL_COLUMNS: frozenset[str] = frozenset(c.name for c in SCORE_COLUMN_SPECS if c.partial)
"""Columns that are NaN (stored as null) by design for some pairs."""

INDEXED_COLUMNS: tuple[str, ...] = tuple(c.name for c in SCORE_COLUMN_SPECS if c.indexed)
"""Score columns with a (job, split, column, pair) index."""

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


def default_method(methods: Sequence[str], asked: str) -> str:
    """The method whose harm fills `harm`: the one asked for when the job computes it, else the
    first method of the job (`AUTO` reads as `AUTO_PROVISIONAL`; a job replaces it by its own
    choice, worker/jobs/canary.py)."""
    wanted = AUTO_PROVISIONAL if asked == AUTO else asked
    return wanted if wanted in methods else methods[0]


def computation(ref: str) -> Callable[..., Any]:
    """The function a registry entry names, imported on first use (the computations need torch,
    the registry must not): "module:function" of worker.influence, or of a dotted module path."""
    module, _, name = ref.partition(":")
    package = module if "." in module else f"worker.influence.{module}"
    return getattr(importlib.import_module(package), name)


def filled_columns() -> frozenset[str]:
    """Every column some registered method fills, and `harm`: what an engine may produce (read
    from `METHODS` at call time, so a method registered later counts)."""
    return frozenset({HARM.name, *(c for spec in METHODS.values() for c in spec.columns)})


def _check() -> None:
    """The registry agrees with itself: run at import, so a bad edit fails every test at once."""
    if typing.get_args(MethodName) != METHOD_NAMES:
        raise AssertionError("MethodName and the registry list different methods")
    if len(set(SCORE_COLUMNS)) != len(SCORE_COLUMNS):
        raise AssertionError("two methods own the same column")
    for spec in _SPECS:
        if spec.harm_column not in spec.columns or not spec.harm_column.startswith("harm_"):
            raise AssertionError(f"{spec.name}: its harm column must be a harm_* column it fills")
        missing = set(spec.columns + spec.reads) - set(SCORE_COLUMNS)
        if missing:
            raise AssertionError(f"{spec.name} fills unknown columns {sorted(missing)}")
        if spec.single is None:
            raise AssertionError(f"{spec.name} names no single-task computation")
    for column in SCORE_COLUMN_SPECS:
        if column.name.startswith("harm") and column.orientation != "higher_harmful":
            raise AssertionError(f"{column.name}: a harm column is higher_harmful")


_check()

TARGET_AWARE: tuple[str, ...] = tuple(
    name for name, spec in METHODS.items() if spec.needs_validation and spec.needs_gradients
)
"""Methods a targeted audit measures against its target set instead of the validation loss
(they read the validation gradient); the others never read the target."""
