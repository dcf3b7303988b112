"""The single-task engine's scoring: every asked method's computation on one fitted model.

`score_fitted` runs each method the registry (worker/influence/methods.py) names for the job, in
the job's order; each `score_<method>` fills the method's columns on a shared `ScoringContext`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from worker.influence.config import EngineConfig
from worker.influence.crossfit import CrossFit, cross_fit
from worker.influence.curvature import DIRECT_MAX_DIM, GaussNewton
from worker.influence.fitted import Fitted
from worker.influence.gradients import Projector, per_pair_margin_gradients
from worker.influence.group import candidate_set, group_influence, select
from worker.influence.methods import (
    METHODS,
    PARTIAL_COLUMNS,
    computation,
    default_method,
    filled_columns,
    harm_column,
)
from worker.influence.reporter import Reporter
from worker.influence.scores import (
    bt_loss,
    corrected_loss,
    datainf_scores,
    gradient_similarity,
    influence_scores,
    length_harm,
    self_influence,
    solve_influence,
    tracin_term,
    validation_gradient,
)
from worker.influence.train import ShouldCancel, check_cancel

SELF_INFLUENCE_SKETCH = 4096
"""Sketch size for self-influence when min(n, p) is too large for an exact factorisation."""


@dataclass
class ScoringContext:
    """One scoring run: the fitted model, the job's config, and what the methods fill."""

    fitted: Fitted
    config: EngineConfig
    report: Reporter
    should_cancel: ShouldCancel | None
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    interactions: list[tuple[int, int, float]] = field(default_factory=list)
    gauss_newton: GaussNewton | None = None
    g_val: Tensor | None = None  # ∇L_val, float64

    def gradients(self) -> tuple[GaussNewton, Tensor, Tensor]:
        """(Gauss–Newton matrix, g_val, per-pair gradients) for a gradient method."""
        grads = self.fitted.grads
        assert self.gauss_newton is not None and self.g_val is not None and grads is not None
        return self.gauss_newton, self.g_val, grads


def score_fitted(
    fitted: Fitted,
    config: EngineConfig,
    report: Reporter | None = None,
    should_cancel: ShouldCancel | None = None,
) -> tuple[dict[str, np.ndarray], dict, list[str]]:
    """Every asked-for score from a fitted model: (scores, metrics, warnings).

    Separate from training so a benchmark can re-score one model under several dampings.
    """
    ctx = ScoringContext(fitted, config, report or Reporter(None), should_cancel)
    ctx.metrics["method_seconds"] = {}
    for spec in METHODS.values():
        if spec.always:
            assert spec.single is not None
            computation(spec.single)(ctx)
    methods = [m for m in config.methods if not METHODS[m].always]
    if any(METHODS[m].needs_gradients for m in methods):
        _prepare_gradients(ctx)
    for k, method in enumerate(methods):
        check_cancel(should_cancel)
        start = time.perf_counter()
        single = METHODS[method].single
        assert single is not None
        computation(single)(ctx)
        ctx.metrics["method_seconds"][method] = time.perf_counter() - start
        ctx.report.update("scoring", (k + 1) / len(methods), method)
    return _finish(ctx)


def _prepare_gradients(ctx: ScoringContext) -> None:
    """The Gauss–Newton matrix and the validation gradient every gradient method shares."""
    fitted = ctx.fitted
    assert fitted.grads is not None
    ctx.gauss_newton = fitted.gauss_newton()
    if fitted.g_val is not None:
        ctx.g_val = fitted.g_val.double()
    else:
        assert fitted.val_grads is not None
        ctx.g_val = validation_gradient(fitted.val_margins, fitted.val_grads)
    ctx.metrics["val_gradient_norm"] = float(torch.linalg.vector_norm(ctx.g_val))


def _finish(ctx: ScoringContext) -> tuple[dict[str, np.ndarray], dict, list[str]]:
    """`harm` from the default method, float64 columns, and a warning per non-finite column."""
    scores, config = ctx.scores, ctx.config
    computed = [m for m in config.methods if harm_column(m) in scores]
    chosen = default_method(computed, config.default_method)
    scores["harm"] = scores[harm_column(chosen)]
    ctx.metrics["default_method"] = chosen
    scores = {k: np.asarray(v, dtype=np.float64) for k, v in scores.items()}
    known = filled_columns()
    for key, value in scores.items():
        if key not in known:
            raise RuntimeError(f"engine produced unknown score column {key!r}")
        if key not in PARTIAL_COLUMNS and not np.all(np.isfinite(value)):
            ctx.warnings.append(f"{key} has non-finite values; check damping and training")
    ctx.fitted.interactions = ctx.interactions
    return scores, ctx.metrics, ctx.warnings


def score_loss(ctx: ScoringContext) -> None:
    """The BT loss and margin under the trained model (every job)."""
    margins = ctx.fitted.margins
    loss = bt_loss(margins)
    ctx.scores.update(loss=loss, margin=margins.copy(), harm_loss=loss)


def score_gradient_similarity(ctx: ScoringContext) -> None:
    _, g_val, grads = ctx.gradients()
    dot, cosine = gradient_similarity(ctx.fitted.margins, grads, g_val)
    ctx.scores["harm_gradient_similarity"] = -dot
    ctx.scores["harm_gradient_cosine"] = -cosine


def score_influence(ctx: ScoringContext) -> None:
    gn, g_val, grads = ctx.gradients()
    config, fitted = ctx.config, ctx.fitted
    damping, reference = config.influence_solve_damping()
    solve = solve_influence(
        gn,
        g_val,
        damping,
        config.solver,
        config.cg_tol,
        config.cg_max_iter,
        fitted.exact_matvec,
        fitted.ridge,
        reference,
    )
    effect = influence_scores(fitted.margins, grads, solve.ihvp)
    ctx.scores["removal_effect_influence"] = effect
    ctx.scores["harm_influence"] = -effect
    ctx.metrics["influence"] = solve.metrics()
    ctx.warnings.extend(solve.warnings)


def score_datainf(ctx: ScoringContext) -> None:
    _, g_val, grads = ctx.gradients()
    effect = datainf_scores(ctx.fitted.margins, grads, g_val, ctx.fitted.blocks)
    ctx.scores["removal_effect_datainf"] = effect
    ctx.scores["harm_datainf"] = -effect


def score_self_influence(ctx: ScoringContext) -> None:
    gn, _, _ = ctx.gradients()
    ctx.scores["harm_self_influence"] = _self_influence(ctx.fitted, gn, ctx.config, ctx.warnings)


def score_corrected_loss(ctx: ScoringContext) -> None:
    if "harm_self_influence" not in ctx.scores:
        score_self_influence(ctx)
    ctx.scores["harm_corrected_loss"] = corrected_loss(
        ctx.scores["loss"], ctx.scores["harm_self_influence"]
    )


def score_tracin(ctx: ScoringContext) -> None:
    ctx.gradients()
    ctx.scores["harm_tracin"] = -_tracin(ctx.fitted, ctx.config, ctx.should_cancel)


def score_length(ctx: ScoringContext) -> None:
    fitted = ctx.fitted
    if fitted.length_diff is None or fitted.val_length_diff is None:
        raise RuntimeError("the length method needs the pairs' texts (length_diff)")
    harm, direction = length_harm(fitted.length_diff, fitted.val_length_diff)
    ctx.scores["harm_length"] = harm
    ctx.metrics["length_direction"] = direction


def score_oof_loss(ctx: ScoringContext) -> None:
    crossfit = _crossfit_metrics(ctx)
    ctx.scores["oof_margin"] = crossfit.oof_margin
    ctx.scores["harm_oof_loss"] = crossfit.oof_loss


def score_ensemble(ctx: ScoringContext) -> None:
    crossfit = _crossfit_metrics(ctx)
    ctx.scores["harm_ensemble"] = -crossfit.ensemble_margin
    ctx.scores["ensemble_disagreement"] = crossfit.disagreement


def score_group(ctx: ScoringContext) -> None:
    gn, _, _ = ctx.gradients()
    columns, ctx.metrics["group"], ctx.interactions = _group(ctx.fitted, gn, ctx.config)
    if "removal_effect_influence" in ctx.scores:
        del columns["removal_effect_influence"], columns["harm_influence"]
    ctx.scores.update(columns)


def _crossfit_metrics(ctx: ScoringContext) -> CrossFit:
    crossfit = crossfit_once(ctx.fitted, ctx.config, ctx.report, ctx.should_cancel)
    ctx.metrics["crossfit"] = {
        "folds": crossfit.folds,
        "repeats": crossfit.repeats,
        "members": len(crossfit.member_margins),
    }
    return crossfit


def _group(
    fitted: Fitted, gn: GaussNewton, config: EngineConfig
) -> tuple[dict[str, np.ndarray], dict, list[tuple[int, int, float]]]:
    """Greedy interaction-aware selection over the candidates (worker.influence.group).

    The curvature is self-influence's: G + (ridge + λ)I, λ = damping × trace(G)/p (not the
    influence solve's `influence_damping`, so group's own first-order effects, which fill the
    influence columns when influence is not asked for, can differ from influence's). Returns
    the columns, the job's `group` metrics and each candidate's strongest interactions as
    (training position, partner position, κ).
    """
    assert fitted.grads is not None and fitted.val_grads is not None
    if min(gn.n, gn.dim) > DIRECT_MAX_DIM:
        raise ValueError(
            f"the group method needs one exact factorisation of the curvature ({gn.n} pairs × "
            f"{gn.dim} parameters is above {DIRECT_MAX_DIM}); set projection_dim"
        )
    scale = gn.mean_diagonal()
    lam = config.damping * (scale if scale > 0 else 1.0)
    inverse = gn.factor(fitted.ridge + lam)
    margins, n = fitted.margins, len(fitted.margins)
    everyone = group_influence(
        inverse.solve, fitted.grads, margins, fitted.val_grads, fitted.val_margins, np.arange(n)
    )
    candidates = candidate_set(everyone.effect, config.group_candidates)
    selection = select(everyone.subset(candidates), n, config.prune_budget, damping_absolute=lam)
    order, gain, harm = np.full(n, np.nan), np.full(n, np.nan), np.zeros(n)
    order[candidates], gain[candidates] = selection.order, selection.gain
    harm[candidates] = selection.harm
    interactions = [
        (int(candidates[i]), int(candidates[j]), kappa) for i, j, kappa in selection.interactions
    ]
    metrics = selection.metrics
    columns = {
        "harm_group": harm,
        "group_order": order,
        "group_gain": gain,
        # The first-order effects of the same solve: top-K by them is what greedy is compared to.
        "removal_effect_influence": everyone.effect,
        "harm_influence": -everyone.effect,
    }
    return columns, metrics, interactions


def crossfit_once(
    fitted: Fitted,
    config: EngineConfig,
    report: Reporter,
    should_cancel: ShouldCancel | None,
) -> CrossFit:
    """The fold models' margins, trained once per fitted model and shared by oof_loss/ensemble."""
    if fitted.crossfit is None:
        if fitted.fold_fitter is None:
            raise RuntimeError("cross-fitting needs a fold fitter on the fitted model")

        def fit(positions: np.ndarray, member: int):
            check_cancel(should_cancel)
            assert fitted.fold_fitter is not None
            return fitted.fold_fitter(positions, member)

        fitted.crossfit = cross_fit(
            len(fitted.margins),
            fit,
            config.crossfit_folds,
            config.crossfit_repeats,
            config.seed,
            progress=lambda f: report.update("scoring", f, "cross-fitting"),
        )
    return fitted.crossfit


def _self_influence(
    fitted: Fitted, gn: GaussNewton, config: EngineConfig, warnings: list[str]
) -> np.ndarray:
    """g_iᵀ H_λ⁻¹ g_i for every training pair (sketched when too large to factor exactly)."""
    assert fitted.grads is not None
    self_gn, self_grads = gn, fitted.grads
    if min(gn.n, gn.dim) > DIRECT_MAX_DIM:
        # Per-pair solves need one exact factorisation; sketch the gradients to fit one.
        sketch = Projector(fitted.blocks, SELF_INFLUENCE_SKETCH, config.seed, fitted.grads.device)
        self_grads = sketch(fitted.grads)
        self_gn = GaussNewton(self_grads, fitted.margins)
        warnings.append(
            f"self_influence used a seeded {sketch.dim}-dimensional sketch of the "
            f"gradients ({gn.n} pairs × {gn.dim} parameters is too large to factor); "
            "set projection_dim to choose the sketch yourself"
        )
    return self_influence(self_gn, fitted.margins, self_grads, config.damping, fitted.ridge)


def _tracin(fitted: Fitted, config: EngineConfig, should_cancel: ShouldCancel | None) -> np.ndarray:
    """TracIn-CP over the per-epoch checkpoints; the last one is θ*, whose gradients exist."""
    assert fitted.rm is not None and fitted.grads is not None and fitted.val_grads is not None
    train_enc, val_enc = fitted.encoded
    total = np.zeros(len(fitted.margins))
    for checkpoint in fitted.checkpoints[:-1]:
        margins, grads = per_pair_margin_gradients(
            fitted.rm,
            train_enc,
            config.chunk_size(fitted.rm.device.type),
            params=checkpoint.params,
            projector=fitted.projector,
            should_cancel=should_cancel,
        )
        val_margins, val_grads = per_pair_margin_gradients(
            fitted.rm,
            val_enc,
            config.chunk_size(fitted.rm.device.type),
            params=checkpoint.params,
            projector=fitted.projector,
            should_cancel=should_cancel,
        )
        total += tracin_term(margins, grads, val_margins, val_grads, checkpoint.learning_rate)
        del grads, val_grads
    last = fitted.checkpoints[-1].learning_rate if fitted.checkpoints else config.learning_rate
    total += tracin_term(fitted.margins, fitted.grads, fitted.val_margins, fitted.val_grads, last)
    return total
