"""One audit, end to end: load a backbone, train the reward model, take per-pair gradients, score.

`run_audit` is the engine's entry point for the job pipeline and the CLI; it knows nothing of the
database or Celery. Stages, in order: loading_model, training, validation_gradient,
per_pair_gradients, scoring.
"""

from __future__ import annotations

import dataclasses
import math
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from worker.influence.benchmark_table import method_benchmark
from worker.influence.config import EngineConfig
from worker.influence.crossfit import CrossFit, Fitter, cross_fit
from worker.influence.curvature import DIRECT_MAX_DIM, GaussNewton, MatVec, exact_hvp
from worker.influence.data import Pair
from worker.influence.features import (
    PairViews,
    Pooled,
    backbone_features,
    pair_views,
    truncation_rate,
)
from worker.influence.gradients import Projector, per_pair_margin_gradients
from worker.influence.head import MIN_L2, HeadChoice, choose_head, fit_head, head_fold_fitter
from worker.influence.methods import GRADIENT_METHODS, SCORE_COLUMNS, harm_column
from worker.influence.model import (
    Encoded,
    RewardModel,
    add_lora,
    encode,
    head_module_name,
    load_backbone,
    resolve_device,
)
from worker.influence.projection import KroneckerProjector
from worker.influence.scores import (
    bt_loss,
    corrected_loss,
    datainf_scores,
    gradient_similarity,
    influence_scores,
    length_difference,
    length_harm,
    self_influence,
    solve_influence,
    tracin_term,
    validation_gradient,
)
from worker.influence.train import (
    Cancelled,
    Checkpoint,
    Progress,
    ShouldCancel,
    check_cancel,
    evaluate_margins,
    summarise,
    train_reward_model,
)
from worker.influence.trust import mislabelled_estimate, validation_trust

__all__ = ["STAGES", "AuditResult", "Cancelled", "run_audit", "harm_column"]

STAGES: tuple[str, ...] = (
    "loading_model",
    "training",
    "validation_gradient",
    "per_pair_gradients",
    "scoring",
)

SELF_INFLUENCE_SKETCH = 4096
"""Sketch size for self-influence when min(n, p) is too large for an exact factorisation."""


@dataclass
class Fitted:
    """A trained reward model and its per-pair gradients: what every score is computed from."""

    rm: RewardModel | None
    margins: np.ndarray  # [n] Δ_i under θ*
    grads: Tensor | None  # [n, p] (or [n, k]) margin gradients d_i
    val_margins: np.ndarray  # [m]
    val_grads: Tensor | None  # [m, p]
    blocks: list[tuple[str, slice]]
    ridge: float = 0.0  # L2 term of the training objective (head mode)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    exact_matvec: MatVec | None = None
    projector: KroneckerProjector | None = None
    encoded: tuple = ()  # (train, val) token ids
    tokenizer: object = None
    seen_margins: list[np.ndarray] = field(default_factory=list)  # per epoch, before each update
    length_diff: np.ndarray | None = None  # characters of chosen − rejected, training pairs
    val_length_diff: np.ndarray | None = None
    fold_fitter: Fitter | None = None  # trains a fresh model on a subset, for cross-fitting
    head_choice: HeadChoice | None = None
    crossfit: CrossFit | None = None  # filled by the first method that needs it
    g_val: Tensor | None = None  # ∇L_val when computed elsewhere (the sharded engine)
    interactions: list[tuple[int, int, float]] = field(default_factory=list)  # group method
    _gauss_newton: GaussNewton | None = field(default=None, repr=False)

    def gauss_newton(self) -> GaussNewton:
        """The Gauss–Newton matrix of the training pairs, built once per fitted model."""
        if self._gauss_newton is None:
            assert self.grads is not None
            self._gauss_newton = GaussNewton(self.grads, self.margins)
        return self._gauss_newton


@dataclass
class AuditResult:
    """Per-pair scores aligned with the training pairs, and the job's diagnostics.

    `scores` keys are a subset of `SCORE_COLUMNS`, each a float64 array of len(train); always
    present: harm, loss, margin, harm_loss. `metrics` is JSON-serialisable.
    """

    scores: dict[str, np.ndarray]
    metrics: dict
    state: Fitted | None = field(default=None, repr=False)
    interactions: list[tuple[int, int, float]] = field(default_factory=list)
    """(training position, partner position, κ): each group candidate's strongest partners."""


def run_audit(
    train: Sequence[Pair],
    val: Sequence[Pair],
    config: EngineConfig,
    progress: Progress | None = None,
    should_cancel: ShouldCancel | None = None,
    keep_state: bool = False,
    save_model_to: str | Path | None = None,
    features: tuple[Pooled, Pooled] | None = None,
) -> AuditResult:
    """Train the reward model on `train`, score every training pair against `val`.

    `progress(stage, fraction, message)` is called as stages advance; `should_cancel()` is polled
    every few batches and `Cancelled` is raised when it returns true. Bad inputs raise ValueError.
    `keep_state` keeps the trained model and gradients on the result (benchmarks, tests).
    `save_model_to` (LoRA mode) writes the trained reward model, adapters merged, as a
    transformers directory there (`metrics["model_dir"]`): `mode="pretrained"` scores with it.
    `features` (head and pretrained modes): the backbone's pooled features of the training and
    validation pairs, as `backbone_features` returns them, computed elsewhere (the sharded
    feature tasks of worker/shards.py); the backbone is then not run over the pairs here.
    """
    config.validate()
    _check_pairs(train, "training", minimum=2)
    _check_pairs(val, "validation", minimum=1)
    warnings: list[str] = []
    device = resolve_device(config.device)
    report = _Reporter(progress, device)
    if features is not None and config.mode not in ("head", "pretrained"):
        raise ValueError(
            f"precomputed features need mode 'head' or 'pretrained', not {config.mode!r}"
        )

    report.start("loading_model")
    backbone, tokenizer = load_backbone(config)
    train_enc = encode(tokenizer, train, config.max_length)
    val_enc = encode(tokenizer, val, config.max_length)
    check_cancel(should_cancel)
    needs_grads = any(m in GRADIENT_METHODS for m in config.methods)
    metrics: dict = {
        "device": str(device),
        "n_train": len(train),
        "n_val": len(val),
        "model": config.model,
        "mode": config.mode,
    }

    if config.mode in ("head", "pretrained"):
        fitted, history = _fit_head(
            backbone,
            train_enc,
            val_enc,
            train,
            val,
            device,
            config,
            report,
            should_cancel,
            features,
        )
        assert fitted.grads is not None and fitted.head_choice is not None
        metrics["n_trainable_params"] = int(fitted.grads.shape[1])
        metrics.update(fitted.head_choice.metrics())
    else:
        rm = RewardModel(add_lora(backbone, config), device)
        metrics["n_trainable_params"] = rm.n_params
        report.done("loading_model")
        report.start("training")
        training = train_reward_model(rm, train_enc, val_enc, config, report.update, should_cancel)
        history = training.history
        metrics["epoch_seconds"] = training.seconds_per_epoch
        report.done("training")
        fitted = _gradients(
            rm, train_enc, val_enc, training.checkpoints, config, report, should_cancel, needs_grads
        )
        fitted.seen_margins = training.seen_margins
        fitted.length_diff = length_difference(train)
        fitted.val_length_diff = length_difference(val)
        fitted.fold_fitter = _lora_fold_fitter(train_enc, val_enc, config, rm.device, should_cancel)
    fitted.tokenizer = tokenizer
    metrics["history"] = history
    metrics["truncation_rate"] = {
        "train": truncation_rate(train_enc, config.max_length),
        "val": truncation_rate(val_enc, config.max_length),
    }
    metrics["val_accuracy"] = float((fitted.val_margins > 0).mean())
    metrics["val_loss"] = float(bt_loss(fitted.val_margins).mean())
    metrics["train_accuracy"] = float((fitted.margins > 0).mean())
    metrics["train_loss"] = float(bt_loss(fitted.margins).mean())
    metrics["trust"] = validation_trust(fitted.val_margins)
    metrics["method_benchmark"] = method_benchmark(config.mode, len(train))
    if not metrics["trust"]["is_evidence"]:
        warnings.append(metrics["trust"]["message"])

    report.start("scoring")
    scores, score_metrics, score_warnings = score_fitted(fitted, config, report, should_cancel)
    warnings.extend(score_warnings)
    metrics.update(score_metrics)
    if fitted.crossfit is None and fitted.rm is None:
        # Head fits cost milliseconds: cross-fit for the estimate even when no method asked.
        _crossfit(fitted, config, report, should_cancel)
    metrics["mislabelled"] = mislabelled_estimate(
        fitted.crossfit.oof_margin if fitted.crossfit is not None else fitted.margins,
        scores["harm"],
        source="out_of_fold" if fitted.crossfit is not None else "in_sample",
    )
    report.done("scoring")

    metrics["seconds"] = report.seconds
    metrics["peak_memory_mb"] = report.overall_peak_memory_mb() or _peak_memory_mb(device)
    metrics["stage_peak_memory_mb"] = report.peak_memory_mb
    if save_model_to is not None:
        if fitted.rm is None:
            raise ValueError("save_model_to needs mode='lora': no trained transformers model")
        metrics["model_dir"] = str(save_reward_model(fitted.rm, tokenizer, Path(save_model_to)))
    metrics["warnings"] = warnings
    return AuditResult(
        scores=scores,
        metrics=metrics,
        state=fitted if keep_state else None,
        interactions=fitted.interactions,
    )


def score_fitted(
    fitted: Fitted,
    config: EngineConfig,
    report: _Reporter | None = None,
    should_cancel: ShouldCancel | None = None,
) -> tuple[dict[str, np.ndarray], dict, list[str]]:
    """Every asked-for score from a fitted model: (scores, metrics, warnings).

    Separate from training so a benchmark can re-score one model under several dampings.
    """
    report = report or _Reporter(None)
    margins = fitted.margins
    loss = bt_loss(margins)
    scores: dict[str, np.ndarray] = {"loss": loss, "margin": margins.copy(), "harm_loss": loss}
    metrics: dict = {"method_seconds": {}}
    warnings: list[str] = []
    interactions: list[tuple[int, int, float]] = []
    grads, val_grads = fitted.grads, fitted.val_grads
    methods = [m for m in config.methods if m != "loss"]
    gn = None
    g_val = None
    if any(m in GRADIENT_METHODS for m in methods):
        assert grads is not None
        gn = fitted.gauss_newton()
        if fitted.g_val is not None:
            g_val = fitted.g_val.double()
        else:
            assert val_grads is not None
            g_val = validation_gradient(fitted.val_margins, val_grads)
        metrics["val_gradient_norm"] = float(torch.linalg.vector_norm(g_val))
    for k, method in enumerate(methods):
        check_cancel(should_cancel)
        start = time.perf_counter()
        if method in ("oof_loss", "ensemble"):
            crossfit = _crossfit(fitted, config, report, should_cancel)
            if method == "oof_loss":
                scores["oof_margin"] = crossfit.oof_margin
                scores["harm_oof_loss"] = crossfit.oof_loss
            else:
                scores["harm_ensemble"] = -crossfit.ensemble_margin
                scores["ensemble_disagreement"] = crossfit.disagreement
            metrics["crossfit"] = {
                "folds": crossfit.folds,
                "repeats": crossfit.repeats,
                "members": len(crossfit.member_margins),
            }
        elif method == "length":
            if fitted.length_diff is None or fitted.val_length_diff is None:
                raise RuntimeError("the length method needs the pairs' texts (length_diff)")
            harm, direction = length_harm(fitted.length_diff, fitted.val_length_diff)
            scores["harm_length"] = harm
            metrics["length_direction"] = direction
        else:
            assert gn is not None and g_val is not None and grads is not None
            if method == "gradient_similarity":
                dot, cosine = gradient_similarity(margins, grads, g_val)
                scores["harm_gradient_similarity"] = -dot
                scores["harm_gradient_cosine"] = -cosine
            elif method == "influence":
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
                effect = influence_scores(margins, grads, solve.ihvp)
                scores["removal_effect_influence"] = effect
                scores["harm_influence"] = -effect
                metrics["influence"] = solve.metrics()
                warnings.extend(solve.warnings)
            elif method == "datainf":
                effect = datainf_scores(margins, grads, g_val, fitted.blocks)
                scores["removal_effect_datainf"] = effect
                scores["harm_datainf"] = -effect
            elif method == "self_influence":
                scores["harm_self_influence"] = _self_influence(fitted, gn, config, warnings)
            elif method == "corrected_loss":
                if "harm_self_influence" not in scores:
                    scores["harm_self_influence"] = _self_influence(fitted, gn, config, warnings)
                scores["harm_corrected_loss"] = corrected_loss(loss, scores["harm_self_influence"])
            elif method == "tracin":
                scores["harm_tracin"] = -_tracin(fitted, config, should_cancel)
            elif method == "group":
                columns, metrics["group"], interactions = _group(fitted, gn, config)
                if "removal_effect_influence" in scores:
                    del columns["removal_effect_influence"], columns["harm_influence"]
                scores.update(columns)
        metrics["method_seconds"][method] = time.perf_counter() - start
        report.update("scoring", (k + 1) / len(methods), method)
    computed = [m for m in config.methods if harm_column(m) in scores]
    chosen = config.default_method if config.default_method in computed else computed[0]
    scores["harm"] = scores[harm_column(chosen)]
    metrics["default_method"] = chosen
    scores = {k: np.asarray(v, dtype=np.float64) for k, v in scores.items()}
    for key, value in scores.items():
        if key not in SCORE_COLUMNS:
            raise RuntimeError(f"engine produced unknown score column {key!r}")
        if key not in _PARTIAL_COLUMNS and not np.all(np.isfinite(value)):
            warnings.append(f"{key} has non-finite values; check damping and training")
    fitted.interactions = interactions
    return scores, metrics, warnings


_PARTIAL_COLUMNS = frozenset({"group_order", "group_gain"})
"""Columns that are NaN (stored as null) by design for pairs outside the candidate set."""


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
    from worker.influence.curvature import DIRECT_MAX_DIM
    from worker.influence.group import candidate_set, group_influence, select

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


def _crossfit(
    fitted: Fitted,
    config: EngineConfig,
    report: _Reporter,
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


def _lora_fold_fitter(
    train_enc: Encoded,
    val_enc: Encoded,
    config: EngineConfig,
    device: torch.device,
    should_cancel: ShouldCancel | None,
) -> Fitter:
    """Cross-fitting in LoRA mode: a fresh backbone and adapter per fold, same recipe and seed."""

    def fit(positions: np.ndarray, member: int):
        backbone, _ = load_backbone(dataclasses.replace(config, seed=config.seed + 1 + member))
        rm = RewardModel(add_lora(backbone, config), device)
        subset = Encoded(ids=[train_enc.ids[int(i)] for i in positions], pad_id=train_enc.pad_id)
        train_reward_model(rm, subset, val_enc, config, None, should_cancel)
        return lambda: evaluate_margins(rm, train_enc)

    return fit


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


def _gradients(
    rm: RewardModel,
    train_enc,
    val_enc,
    checkpoints: list[Checkpoint],
    config: EngineConfig,
    report: _Reporter,
    should_cancel: ShouldCancel | None,
    needs_grads: bool,
) -> Fitted:
    projector: KroneckerProjector | None = None
    if needs_grads and config.projection_dim is not None and config.projection_dim < rm.n_params:
        # The sharded engine's projection, so both engines give the same projected scores.
        projector = KroneckerProjector.for_model(rm, config.projection_dim, config.seed)
    blocks = projector.out_blocks if projector is not None else rm.blocks()

    def margins_and_grads(enc, stage: str) -> tuple[np.ndarray, Tensor | None]:
        """Δ for every pair of `enc`, with per-pair margin gradients when a method needs them."""
        report.start(stage)
        out: tuple[np.ndarray, Tensor | None]
        if needs_grads:
            out = per_pair_margin_gradients(
                rm,
                enc,
                config.chunk_size(rm.device.type),
                projector=projector,
                progress=report.fraction(stage),
                should_cancel=should_cancel,
            )
        else:
            out = evaluate_margins(rm, enc), None
        report.done(stage)
        return out

    val_margins, val_grads = margins_and_grads(val_enc, "validation_gradient")
    margins, grads = margins_and_grads(train_enc, "per_pair_gradients")
    exact = None
    if needs_grads and config.hessian == "exact" and "influence" in config.methods:
        n = len(train_enc)
        size = n if config.hvp_pairs == 0 else min(n, config.hvp_pairs)
        index = np.sort(np.random.default_rng(config.seed).choice(n, size, replace=False))
        exact = exact_hvp(rm, train_enc, index.tolist(), config.chunk_size(rm.device.type))
    return Fitted(
        rm=rm,
        margins=margins,
        grads=grads,
        val_margins=val_margins,
        val_grads=val_grads,
        blocks=blocks,
        checkpoints=checkpoints,
        exact_matvec=exact,
        projector=projector,
        encoded=(train_enc, val_enc),
    )


def _fit_head(
    backbone,
    train_enc,
    val_enc,
    train: Sequence[Pair],
    val: Sequence[Pair],
    device,
    config: EngineConfig,
    report: _Reporter,
    should_cancel: ShouldCancel | None,
    features: tuple[Pooled, Pooled] | None = None,
) -> tuple[Fitted, list[dict]]:
    """Head mode: every feature view of both splits in one pass (or `features`, computed
    elsewhere), then the exact convex fit."""
    report.done("loading_model")
    report.start("training")
    n, m = len(train_enc), len(val_enc)
    fraction = report.fraction("training")
    if features is not None:
        pooled_tr = _check_pooled(features[0], n, "training")
        pooled_va = _check_pooled(features[1], m, "validation")
    else:
        pooled_tr = backbone_features(
            backbone,
            train_enc,
            device,
            2 * config.chunk_size(device.type),
            lambda f: fraction(0.9 * f * n / (n + m), None),
            should_cancel,
        )
        pooled_va = backbone_features(
            backbone,
            val_enc,
            device,
            2 * config.chunk_size(device.type),
            lambda f: fraction(0.9 * (n + f * m) / (n + m), None),
            should_cancel,
        )
    views_tr, views_va = pair_views(pooled_tr, train), pair_views(pooled_va, val)
    if config.mode == "pretrained":
        fitted, history = pretrained_fitted(backbone, views_tr, views_va, config, train, val)
    else:
        fitted, history = head_fitted(views_tr, views_va, config, train, val)
    report.done("training")
    # Δ_i = wᵀz_i is linear in w, so the per-pair margin gradient is z_i itself.
    for stage in ("validation_gradient", "per_pair_gradients"):
        report.start(stage)
        report.done(stage)
    return fitted, history


def _check_pooled(pooled: Pooled, n: int, split: str) -> Pooled:
    """Precomputed features must hold every pooling, one row per pair of the split."""
    from worker.influence.features import POOLINGS

    missing = [name for name in POOLINGS if name not in pooled]
    if missing:
        raise ValueError(f"precomputed {split} features lack the pooling(s) {missing}")
    for name, (chosen, rejected) in pooled.items():
        if len(chosen) != n or len(rejected) != n:
            raise ValueError(
                f"precomputed {split} features {name!r} have {len(chosen)}/{len(rejected)} rows "
                f"for {n} pairs"
            )
    return pooled


def head_fitted(
    views_train: PairViews,
    views_val: PairViews,
    config: EngineConfig,
    train: Sequence[Pair],
    val: Sequence[Pair],
) -> tuple[Fitted, list[dict]]:
    """The exact head on the feature view, L2 and length weight chosen on validation loss.

    Public so a benchmark can fit many labellings of one dataset from features it computed once
    (a flipped pair's features are the negated row) through the same code path as a job.
    """
    start = time.perf_counter()
    choice = choose_head(
        views_train, views_val, config.head_features, config.weight_decay, config.head_length_weight
    )
    z, z_val = choice.apply(views_train[choice.view]), choice.apply(views_val[choice.view])
    w, iterations = fit_head(z, choice.l2)
    fitted = _linear_fitted(z, z_val, w, max(choice.l2, MIN_L2), choice, z, train, val)
    margins, val_margins = fitted.margins, fitted.val_margins
    history = [
        {
            "newton_iterations": iterations,
            "l2": max(choice.l2, MIN_L2),
            "features": choice.view,
            "length_weight": choice.length_weight,
            "validation_loss_grid": choice.table,
            "fit_seconds": time.perf_counter() - start,
            **{f"train_{k}": v for k, v in summarise(margins).items()},
            **{f"val_{k}": v for k, v in summarise(val_margins).items()},
        }
    ]
    return fitted, history


def pretrained_fitted(
    backbone: torch.nn.Module,
    views_train: PairViews,
    views_val: PairViews,
    config: EngineConfig,
    train: Sequence[Pair],
    val: Sequence[Pair],
) -> tuple[Fitted, list[dict]]:
    """Bring your own reward model: its own scalar head on its own features, nothing trained.

    θ is the head's weight vector w (a bias cancels in every margin), so Δ_i = wᵀz_i on the
    head's input features exactly as the model computes it, the margin gradient is z_i, and
    influence, self-influence and the rest are those of the model as given, on the damped
    Gauss–Newton matrix (no L2 term: the model was not fitted here). Cross-fitting refits a
    fresh head on the frozen features (L2 chosen on validation), which is what oof_loss and
    ensemble then measure.
    """
    name = head_module_name(backbone)
    head = getattr(backbone, name)
    if not isinstance(head, torch.nn.Linear) or head.out_features != 1:
        raise ValueError(
            f"mode='pretrained' scores through a scalar head that is one Linear layer; this "
            f"model's {name!r} is {type(head).__name__}. Use mode='head' to fit a new head on its "
            "features, or mode='lora' to train one"
        )
    w = head.weight.detach().double().reshape(-1).cpu()
    z, z_val = views_train["pooler"], views_val["pooler"]
    refit = choose_head(views_train, views_val, "pooler", config.weight_decay)
    fitted = _linear_fitted(z, z_val, w, 0.0, refit, refit.apply(z), train, val)
    margins, val_margins = fitted.margins, fitted.val_margins
    history = [
        {
            "pretrained": True,
            "features": "pooler",
            "refit_l2": refit.l2,
            **{f"train_{k}": v for k, v in summarise(margins).items()},
            **{f"val_{k}": v for k, v in summarise(val_margins).items()},
        }
    ]
    return fitted, history


def _linear_fitted(
    z: Tensor,
    z_val: Tensor,
    w: Tensor,
    ridge: float,
    choice: HeadChoice,
    refit_features: Tensor,
    train: Sequence[Pair],
    val: Sequence[Pair],
) -> Fitted:
    """A linear head's state: margins wᵀz, margin gradients z, and heads refitted for folds."""
    return Fitted(
        rm=None,
        margins=(z @ w).cpu().numpy(),
        grads=z,
        val_margins=(z_val @ w).cpu().numpy(),
        val_grads=z_val,
        blocks=[("head", slice(0, z.shape[1]))],
        ridge=ridge,
        length_diff=length_difference(train),
        val_length_diff=length_difference(val),
        fold_fitter=head_fold_fitter(refit_features, choice.l2),
        head_choice=choice,
    )


def save_reward_model(rm: RewardModel, tokenizer: Any, target: Path) -> Path:
    """Write the reward model, LoRA merged into the backbone, as a transformers directory.

    Written to a sibling folder first and renamed, so a crash never leaves half a model.
    """
    import copy
    import shutil

    module: Any = copy.deepcopy(rm.module).cpu()
    merged: Any = module.merge_and_unload() if hasattr(module, "merge_and_unload") else module
    target = target.expanduser().resolve()
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    merged.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    if target.exists():
        shutil.rmtree(target)
    partial.rename(target)
    return target


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


def _check_pairs(pairs: Sequence[Pair], name: str, minimum: int) -> None:
    if len(pairs) < minimum:
        raise ValueError(
            f"the {name} set has {len(pairs)} pair(s); at least {minimum} needed"
            + (
                " (give a validation dataset or more pairs to split from)"
                if name == "validation"
                else ""
            )
        )
    for i, pair in enumerate(pairs):
        for part in ("prompt", "chosen", "rejected"):
            if not isinstance(getattr(pair, part, None), str):
                raise ValueError(f"{name} pair {i}: {part} must be a string")


def _peak_memory_mb(device: torch.device) -> dict[str, float]:
    peak = {"cpu_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.type == "cuda":
        peak["cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return peak


class _Reporter:
    """Forwards stage progress to the caller, times each stage and records its peak memory.

    On CUDA a stage's peak is the most memory allocated during it; on the CPU it is the process's
    peak resident set so far (the OS keeps no per-stage high-water mark), so it only grows.
    """

    def __init__(self, progress: Progress | None, device: torch.device | None = None) -> None:
        self.progress = progress
        self.device = device
        self.seconds: dict[str, float] = {}
        self.peak_memory_mb: dict[str, dict[str, float]] = {}
        self._started: dict[str, float] = {}

    def start(self, stage: str) -> None:
        self._started[stage] = time.perf_counter()
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self.update(stage, 0.0, None)

    def done(self, stage: str) -> None:
        self.seconds[stage] = time.perf_counter() - self._started.get(stage, time.perf_counter())
        if self.device is not None:
            self.peak_memory_mb[stage] = _peak_memory_mb(self.device)
        self.update(stage, 1.0, None)

    def overall_peak_memory_mb(self) -> dict[str, float]:
        """The largest peak of any stage, per kind of memory."""
        peak: dict[str, float] = {}
        for stage in self.peak_memory_mb.values():
            for kind, value in stage.items():
                peak[kind] = max(peak.get(kind, 0.0), value)
        return peak

    def update(self, stage: str, fraction: float, message: str | None) -> None:
        if self.progress is not None:
            self.progress(stage, float(min(1.0, max(0.0, fraction))), message)

    def fraction(self, stage: str) -> Callable:
        """A progress callback for one stage taking (fraction[, message])."""

        def call(fraction: float, message: str | None = None) -> None:
            if not math.isnan(fraction):
                self.update(stage, fraction, message)

        return call
