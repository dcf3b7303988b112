"""One audit, end to end: load a backbone, train the reward model, take per-pair gradients, score.

`run_audit` is the engine's entry point for the job pipeline and the CLI; it knows nothing of the
database or Celery. Stages, in order: loading_model, training, validation_gradient,
per_pair_gradients, scoring.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from worker.influence.benchmark_table import method_benchmark
from worker.influence.config import EngineConfig
from worker.influence.data import Pair
from worker.influence.features import Pooled, truncation_rate
from worker.influence.fitted import (
    Fitted,
    fit_head_mode,
    head_fitted,
    lora_fitted,
    lora_fold_fitter,
    pretrained_fitted,
    save_reward_model,
)
from worker.influence.methods import METHODS, harm_column
from worker.influence.model import (
    RewardModel,
    add_lora,
    encode,
    load_backbone,
    resolve_device,
)
from worker.influence.reporter import Reporter, peak_memory_mb
from worker.influence.results import AuditMetrics
from worker.influence.scores import bt_loss, length_difference
from worker.influence.scoring import crossfit_once, score_fitted
from worker.influence.targeting import score_against_target
from worker.influence.train import (
    Cancelled,
    Progress,
    ShouldCancel,
    check_cancel,
    train_reward_model,
)
from worker.influence.trust import mislabelled_estimate, validation_trust

__all__ = [
    "STAGES",
    "AuditResult",
    "Cancelled",
    "Fitted",
    "harm_column",
    "head_fitted",
    "pretrained_fitted",
    "run_audit",
    "save_reward_model",
    "score_fitted",
]

STAGES: tuple[str, ...] = (
    "loading_model",
    "training",
    "validation_gradient",
    "per_pair_gradients",
    "scoring",
)


@dataclass
class AuditResult:
    """Per-pair scores aligned with the training pairs, and the job's diagnostics.

    `scores` keys are a subset of `SCORE_COLUMNS`, each a float64 array of len(train); always
    present: harm, loss, margin, harm_loss. `metrics` holds the engine's part of the job's
    metrics (the job runner adds its own fields before storing them).
    """

    scores: dict[str, np.ndarray]
    metrics: AuditMetrics
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
    target: Sequence[Pair] | None = None,
) -> AuditResult:
    """Train the reward model on `train`, score every training pair against `val`.

    `target`: measure the target-aware methods against these pairs (worker/influence/targeting.py).

    `progress(stage, fraction, message)` is called as stages advance; `should_cancel()` is polled
    every few batches and `Cancelled` is raised when it returns true. Bad inputs raise ValueError.
    `keep_state` keeps the trained model and gradients on the result (benchmarks, tests).
    `save_model_to` (LoRA mode) writes the trained reward model, adapters merged, as a
    transformers directory there (`metrics.model_dir`): `mode="pretrained"` scores with it.
    `features` (head and pretrained modes): the backbone's pooled features of the training and
    validation pairs, as `backbone_features` returns them, computed elsewhere (the sharded
    feature tasks of the job runner); the backbone is then not run over the pairs here.
    """
    config.validate()
    _check_pairs(train, "training", minimum=2)
    _check_pairs(val, "validation", minimum=1)
    device = resolve_device(config.device)
    report = Reporter(progress, device)
    if features is not None and config.mode not in ("head", "pretrained"):
        raise ValueError(
            f"precomputed features need mode 'head' or 'pretrained', not {config.mode!r}"
        )
    metrics: dict = {
        "device": str(device),
        "n_train": len(train),
        "n_val": len(val),
        "model": config.model,
        "mode": config.mode,
    }
    fitted = _fit(train, val, config, report, should_cancel, features, device, metrics)
    warnings = _fit_metrics(fitted, len(train), config, metrics)

    report.start("scoring")
    score = score_fitted if target is None else score_against_target(target)
    scores, score_metrics, score_warnings = score(fitted, config, report, should_cancel)
    warnings.extend(score_warnings)
    metrics.update(score_metrics)
    if fitted.crossfit is None and fitted.rm is None:
        # Head fits cost milliseconds: cross-fit for the estimate even when no method asked.
        crossfit_once(fitted, config, report, should_cancel)
    metrics["mislabelled"] = mislabelled_estimate(
        fitted.crossfit.oof_margin if fitted.crossfit is not None else fitted.margins,
        scores["harm"],
        source="out_of_fold" if fitted.crossfit is not None else "in_sample",
    )
    report.done("scoring")

    metrics["seconds"] = report.seconds
    metrics["peak_memory_mb"] = report.overall_peak_memory_mb() or peak_memory_mb(device)
    metrics["stage_peak_memory_mb"] = report.peak_memory_mb
    if save_model_to is not None:
        if fitted.rm is None:
            raise ValueError("save_model_to needs mode='lora': no trained transformers model")
        metrics["model_dir"] = str(
            save_reward_model(fitted.rm, fitted.tokenizer, Path(save_model_to))
        )
    metrics["warnings"] = warnings
    return AuditResult(
        scores=scores,
        # Validated here: a key no field of AuditMetrics declares fails at once.
        metrics=AuditMetrics.model_validate({"kind": "audit", **metrics}),
        state=fitted if keep_state else None,
        interactions=fitted.interactions,
    )


def _fit(
    train: Sequence[Pair],
    val: Sequence[Pair],
    config: EngineConfig,
    report: Reporter,
    should_cancel: ShouldCancel | None,
    features: tuple[Pooled, Pooled] | None,
    device: torch.device,
    metrics: dict,
) -> Fitted:
    """Load the backbone, then fit: the exact head (head, pretrained) or LoRA training and its
    gradients. Adds the parameter count, training history and truncation to `metrics`."""
    report.start("loading_model")
    backbone, tokenizer = load_backbone(config)
    train_enc = encode(tokenizer, train, config.max_length)
    val_enc = encode(tokenizer, val, config.max_length)
    check_cancel(should_cancel)
    if config.mode in ("head", "pretrained"):
        fitted, history = fit_head_mode(
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
        needs_grads = any(METHODS[m].needs_gradients for m in config.methods)
        fitted = lora_fitted(
            rm, train_enc, val_enc, training.checkpoints, config, report, should_cancel, needs_grads
        )
        fitted.seen_margins = training.seen_margins
        fitted.length_diff = length_difference(train)
        fitted.val_length_diff = length_difference(val)
        fitted.fold_fitter = lora_fold_fitter(train_enc, val_enc, config, rm.device, should_cancel)
    fitted.tokenizer = tokenizer
    metrics["history"] = history
    metrics["truncation_rate"] = {
        "train": truncation_rate(train_enc, config.max_length),
        "val": truncation_rate(val_enc, config.max_length),
    }
    return fitted


def _fit_metrics(fitted: Fitted, n_train: int, config: EngineConfig, metrics: dict) -> list[str]:
    """Accuracy and loss of the fitted model on both splits, the trust verdict and the
    benchmark's row; returns the warnings so far."""
    warnings: list[str] = []
    metrics["val_accuracy"] = float((fitted.val_margins > 0).mean())
    metrics["val_loss"] = float(bt_loss(fitted.val_margins).mean())
    metrics["train_accuracy"] = float((fitted.margins > 0).mean())
    metrics["train_loss"] = float(bt_loss(fitted.margins).mean())
    metrics["trust"] = validation_trust(fitted.val_margins)
    metrics["method_benchmark"] = method_benchmark(config.mode, n_train)
    if not metrics["trust"]["is_evidence"]:
        warnings.append(metrics["trust"]["message"])
    return warnings


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
