"""Targeted audits: influence against a target set T instead of the validation split.

A target set is a few dozen to hundreds of pairs that show the behaviour a user wants (IF_RLHF,
ACL 2025; ../shared/SCIENCE.md, "Targeted audits"). The model is fitted and judged exactly as in
any audit (its validation split chooses the head's hyperparameters and the length direction and
gives the trust figures); only the measurement changes: the target-aware methods (influence,
gradient similarity, DataInf, TracIn, group) read f = L_T(θ), the BT loss on T, through its
gradient g_T = (1/|T|) Σ_t −(1 − p_t) d_t, so removal_effect_i = (1/n) g_Tᵀ H_λ⁻¹ g_i and
harm_influence = −removal_effect_i ranks the training pairs that push the model away from T.
The training-loss family (loss, oof/corrected loss, self-influence, length) never reads T.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import torch

from worker.influence.config import EngineConfig
from worker.influence.data import Pair
from worker.influence.features import backbone_features, pair_views
from worker.influence.fitted import Fitted
from worker.influence.gradients import per_pair_margin_gradients
from worker.influence.methods import TARGET_AWARE
from worker.influence.model import encode, load_backbone, resolve_device
from worker.influence.reporter import Reporter
from worker.influence.scores import bt_loss
from worker.influence.scoring import score_fitted
from worker.influence.train import ShouldCancel, check_cancel, evaluate_margins

ScoreResult = tuple[dict[str, np.ndarray], dict, list[str]]


def aim_at_target(
    fitted: Fitted,
    target: Sequence[Pair],
    config: EngineConfig,
    report: Reporter,
    should_cancel: ShouldCancel | None,
) -> tuple[Fitted, dict]:
    """The fitted model with the target set in the validation set's place for scoring, and the
    job's `target` metrics (the fitted model's accuracy and loss on T, the methods aimed at it).

    Only what the target-aware methods read is replaced (the validation margins, gradients and
    token ids); the validation length differences stay, so `length` keeps its direction."""
    check_cancel(should_cancel)
    report.update("scoring", 0.0, f"gradient of the {len(target)}-pair target set")
    if fitted.rm is not None:
        enc = encode(fitted.tokenizer, target, config.max_length)
        needs_grads = fitted.grads is not None
        if needs_grads:
            margins, grads = per_pair_margin_gradients(
                fitted.rm,
                enc,
                config.chunk_size(fitted.rm.device.type),
                projector=fitted.projector,
                should_cancel=should_cancel,
            )
        else:
            margins, grads = evaluate_margins(fitted.rm, enc), None
        encoded = (fitted.encoded[0], enc) if fitted.encoded else ()
    else:
        grads = _head_target_features(fitted, target, config, should_cancel)
        assert fitted.head_weight is not None
        margins = (grads @ fitted.head_weight).cpu().numpy()
        encoded = fitted.encoded
    aimed = dataclasses.replace(
        fitted, val_margins=np.asarray(margins), val_grads=grads, encoded=encoded, g_val=None
    )
    metrics = {
        "n_pairs": len(target),
        "accuracy": float((np.asarray(margins) > 0).mean()),
        "loss": float(bt_loss(np.asarray(margins)).mean()),
        "methods": [m for m in config.methods if m in TARGET_AWARE],
        "training_loss_methods": [m for m in config.methods if m not in TARGET_AWARE],
    }
    return aimed, metrics


def _head_target_features(
    fitted: Fitted, target: Sequence[Pair], config: EngineConfig, should_cancel: ShouldCancel | None
) -> torch.Tensor:
    """The head's input features z_t of the target pairs (its margin gradients): the same
    backbone (reloaded, seeded as the job's), pooling, view and scaling as the training pairs."""
    backbone, tokenizer = load_backbone(config)
    device = resolve_device(config.device)
    enc = encode(tokenizer, target, config.max_length)
    pooled = backbone_features(
        backbone, enc, device, 2 * config.chunk_size(device.type), None, should_cancel
    )
    views = pair_views(pooled, target)
    if config.mode == "pretrained":
        return views["pooler"].double()  # as pretrained_fitted: the head's own input
    choice = fitted.head_choice
    assert choice is not None
    return choice.apply(views[choice.view])


def score_against_target(target: Sequence[Pair]) -> Callable[..., ScoreResult]:
    """`score_fitted` with `target` in the validation set's place (`aim_at_target`): the
    caller's `fitted` keeps its validation margins and gets what scoring filled (cross-fits,
    group interactions); the metrics carry the target's under 'target'."""
    if len(target) < 1:
        raise ValueError("the target set is empty; a targeted audit needs its pairs")
    for i, pair in enumerate(target):
        for part in ("prompt", "chosen", "rejected"):
            if not isinstance(getattr(pair, part, None), str):
                raise ValueError(f"target pair {i}: {part} must be a string")

    def score(
        fitted: Fitted,
        config: EngineConfig,
        report: Reporter,
        should_cancel: ShouldCancel | None,
    ) -> ScoreResult:
        aimed, target_metrics = aim_at_target(fitted, target, config, report, should_cancel)
        scores, metrics, warnings = score_fitted(aimed, config, report, should_cancel)
        fitted.crossfit, fitted.interactions = aimed.crossfit, aimed.interactions
        metrics["target"] = target_metrics
        return scores, metrics, warnings

    return score
