"""A fitted reward model and its per-pair gradients: what every score is computed from.

The three ways to get one: LoRA training's gradients (`lora_fitted`), the exact head on cached
features (`head_fitted`) and a bring-your-own model's head (`pretrained_fitted`).
"""

from __future__ import annotations

import copy
import dataclasses
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from worker.influence.config import EngineConfig
from worker.influence.crossfit import CrossFit, Fitter
from worker.influence.curvature import GaussNewton, MatVec, exact_hvp
from worker.influence.data import Pair
from worker.influence.features import POOLINGS, PairViews, Pooled, backbone_features, pair_views
from worker.influence.gradients import per_pair_margin_gradients
from worker.influence.head import MIN_L2, HeadChoice, choose_head, fit_head, head_fold_fitter
from worker.influence.model import Encoded, RewardModel, add_lora, head_module_name, load_backbone
from worker.influence.projection import KroneckerProjector
from worker.influence.reporter import Reporter
from worker.influence.scores import length_difference
from worker.influence.train import (
    Checkpoint,
    ShouldCancel,
    evaluate_margins,
    summarise,
    train_reward_model,
)


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
    head_weight: Tensor | None = None  # w of a linear head (head, pretrained): Δ = wᵀz
    interactions: list[tuple[int, int, float]] = field(default_factory=list)  # group method
    _gauss_newton: GaussNewton | None = field(default=None, repr=False)

    def gauss_newton(self) -> GaussNewton:
        """The Gauss–Newton matrix of the training pairs, built once per fitted model."""
        if self._gauss_newton is None:
            assert self.grads is not None
            self._gauss_newton = GaussNewton(self.grads, self.margins)
        return self._gauss_newton


def lora_fold_fitter(
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


def lora_fitted(
    rm: RewardModel,
    train_enc,
    val_enc,
    checkpoints: list[Checkpoint],
    config: EngineConfig,
    report: Reporter,
    should_cancel: ShouldCancel | None,
    needs_grads: bool,
) -> Fitted:
    """LoRA mode: both splits' margins under θ*, with per-pair margin gradients (projected when
    `projection_dim` asks) when a method needs them, and the exact HVP for hessian='exact'."""
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


def fit_head_mode(
    backbone,
    train_enc,
    val_enc,
    train: Sequence[Pair],
    val: Sequence[Pair],
    device,
    config: EngineConfig,
    report: Reporter,
    should_cancel: ShouldCancel | None,
    features: tuple[Pooled, Pooled] | None = None,
) -> tuple[Fitted, list[dict]]:
    """Head and pretrained modes: every feature view of both splits in one pass (or `features`,
    computed elsewhere), then the exact convex fit."""
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
        head_weight=w,
    )


def save_reward_model(rm: RewardModel, tokenizer: Any, target: Path) -> Path:
    """Write the reward model, LoRA merged into the backbone, as a transformers directory.

    Written to a sibling folder first and renamed, so a crash never leaves half a model.
    """
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
