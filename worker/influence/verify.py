"""Retrain verification: does the reward model get better when the flagged pairs are removed?

Retrains from scratch with the audit's recipe on all pairs, on the pruned set and on a random
removal of the same size, for several seeds, and compares pairwise accuracy and BT loss on an
evaluation set with paired differences (SCIENCE.md, "How we know it works", item 4).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from worker.influence.config import EngineConfig
from worker.influence.data import Pair
from worker.influence.features import backbone_features, pair_views
from worker.influence.head import fit_head, head_scale
from worker.influence.model import (
    Encoded,
    RewardModel,
    add_lora,
    encode,
    load_backbone,
    resolve_device,
)
from worker.influence.results import VerifyArms, VerifyMetrics
from worker.influence.stats import excludes_zero, paired_difference, summarize
from worker.influence.train import (
    Cancelled,
    Progress,
    ShouldCancel,
    check_cancel,
    evaluate_margins,
    train_reward_model,
)

__all__ = ["ARMS", "Cancelled", "FitResult", "Retrainer", "run_verify"]

ARMS: tuple[str, ...] = ("full", "pruned", "random")
"""Training sets of a verification, per seed: all pairs, pruned pairs, a random removal."""

STAGE = "retraining"


@dataclass
class FitResult:
    """One retrain from scratch, evaluated on the evaluation pairs."""

    n_train: int
    accuracy: float  # fraction of evaluation pairs with Δ > 0
    loss: float  # mean BT loss softplus(−Δ) over evaluation pairs
    seconds: float
    margins: np.ndarray  # Δ of every evaluation pair [m], float64


def evaluation_result(margins: np.ndarray, n_train: int, seconds: float) -> FitResult:
    """Accuracy and mean BT loss of a set of evaluation margins."""
    margins = np.asarray(margins, dtype=np.float64)
    return FitResult(
        n_train=n_train,
        accuracy=float((margins > 0).mean()),
        loss=float(np.logaddexp(0.0, -margins).mean()),
        seconds=seconds,
        margins=margins,
    )


@dataclass
class Retrainer:
    """Fits `config`'s reward model on subsets of the training pairs and evaluates each fit.

    Head mode (`config.mode == "head"`): the frozen backbone's pooled feature differences
    z_i = f(x_i, y_c) − f(x_i, y_r) are computed once, and every fit is the exact convex head fit on
    the kept rows, so a retrain takes milliseconds and does not depend on the seed. LoRA mode: the
    texts are tokenised once; each fit loads the backbone fresh with `torch.manual_seed(seed)` and
    trains with the seeded recipe, so equal seeds give equal models. Build it with `for_pairs` or,
    in head mode, `from_features`.
    """

    config: EngineConfig
    n_train: int
    train_enc: Encoded | None = None  # LoRA mode: tokenised training pairs
    eval_enc: Encoded | None = None
    features: Tensor | None = None  # head mode: z of the training pairs [n, h]
    eval_features: Tensor | None = None  # head mode: z of the evaluation pairs [m, h]

    @classmethod
    def for_pairs(
        cls,
        train: Sequence[Pair],
        evaluation: Sequence[Pair],
        config: EngineConfig,
        progress: Callable[[float], None] | None = None,
        should_cancel: ShouldCancel | None = None,
    ) -> Retrainer:
        """Tokenise both sets; in head mode also compute their frozen features (`progress` 0→1)."""
        config.validate()
        backbone, tokenizer = load_backbone(config)
        train_enc = encode(tokenizer, train, config.max_length)
        eval_enc = encode(tokenizer, evaluation, config.max_length)
        if config.mode != "head":
            return cls(config, len(train), train_enc=train_enc, eval_enc=eval_enc)
        device = resolve_device(config.device)
        n, m = len(train), len(evaluation)
        batch = 2 * config.chunk_size(device.type)

        def part(offset: int, size: int) -> Callable[[float], None] | None:
            if progress is None:
                return None
            return lambda f: progress((offset + f * size) / (n + m))

        pooled_tr = backbone_features(backbone, train_enc, device, batch, part(0, n), should_cancel)
        pooled_ev = backbone_features(backbone, eval_enc, device, batch, part(n, m), should_cancel)
        # A verify job passes the audit's chosen view and length weight ('auto' here, with no
        # validation pairs to choose on, keeps the head's own input).
        view = config.head_features if config.head_features != "auto" else "pooler"
        z = pair_views(pooled_tr, train)[view]
        z_ev = pair_views(pooled_ev, evaluation)[view]
        scale = head_scale(z, view, config.head_length_weight or 1.0)
        return cls(config, n, features=z / scale, eval_features=z_ev / scale)

    @classmethod
    def from_features(
        cls, features: Tensor, eval_features: Tensor, config: EngineConfig
    ) -> Retrainer:
        """A head-mode retrainer over precomputed feature differences z [n, h] and [m, h].

        Swapping chosen and rejected negates z, so a benchmark that flips labels reuses one
        feature pass for every noise level.
        """
        if config.mode != "head":
            raise ValueError("precomputed features make sense only with mode='head'")
        config.validate()
        return cls(config, int(features.shape[0]), features=features, eval_features=eval_features)

    def fit(
        self,
        keep: np.ndarray | Sequence[bool],
        seed: int,
        progress: Callable[[float], None] | None = None,
        should_cancel: ShouldCancel | None = None,
    ) -> FitResult:
        """Retrain from scratch on the training pairs where `keep` is true, with `seed`.

        Head mode fits with `config.weight_decay` as given (0 means the minimum, 1e-6): to retrain
        with the L2 an audit chose on its validation pairs, pass its `metrics["head_l2"]`, as the
        job pipeline does (`worker.jobs.verify.verify_config`).
        """
        mask = np.asarray(keep, dtype=bool)
        if mask.shape != (self.n_train,):
            raise ValueError(f"keep has shape {mask.shape}; expected ({self.n_train},)")
        index = np.flatnonzero(mask)
        if index.size == 0:
            raise ValueError("keep selects no training pair; nothing to train on")
        check_cancel(should_cancel)
        config = dataclasses.replace(self.config, seed=int(seed))
        start = time.perf_counter()
        if self.features is not None:
            assert self.eval_features is not None
            rows = torch.as_tensor(index, device=self.features.device)
            w, _ = fit_head(self.features[rows], config.weight_decay)
            margins = (self.eval_features @ w).cpu().numpy()
        else:
            margins = self._fit_lora(index, config, progress, should_cancel)
        return evaluation_result(margins, int(index.size), time.perf_counter() - start)

    def _fit_lora(
        self,
        index: np.ndarray,
        config: EngineConfig,
        progress: Callable[[float], None] | None,
        should_cancel: ShouldCancel | None,
    ) -> np.ndarray:
        assert self.train_enc is not None and self.eval_enc is not None
        backbone, _ = load_backbone(config)
        rm = RewardModel(add_lora(backbone, config), resolve_device(config.device))
        subset = Encoded(ids=[self.train_enc.ids[i] for i in index], pad_id=self.train_enc.pad_id)
        # train_reward_model reports a validation pass after every epoch; it is pointed at one
        # evaluation pair because only the final model is evaluated (below, once, in eval mode),
        # which saves epochs − 1 passes over the evaluation set on a CPU.
        sentinel = Encoded(ids=self.eval_enc.ids[:1], pad_id=self.eval_enc.pad_id)

        def on_progress(_stage: str, fraction: float, _message: str | None) -> None:
            if progress is not None:
                progress(fraction)

        train_reward_model(rm, subset, sentinel, config, on_progress, should_cancel)
        return evaluate_margins(rm, self.eval_enc)


def run_verify(
    train: Sequence[Pair],
    evaluation: Sequence[Pair],
    prune: Sequence[bool] | np.ndarray,
    config: EngineConfig,
    seeds: Sequence[int],
    progress: Progress | None = None,
    should_cancel: ShouldCancel | None = None,
    alternatives: dict[str, Sequence[bool] | np.ndarray] | None = None,
) -> VerifyMetrics:
    """Retrain on all pairs, the pruned set and a random removal of the same size, per seed.

    `alternatives` adds arms that prune other sets of the same size ({"top_k": mask}, the
    first-order top-K beside a greedy selection: an arm `VerifyArms` declares); each is compared
    with the pruned arm and with random removal, paired by seed.

    `prune[i]` true removes training pair i. The random arm removes as many pairs, drawn with
    `numpy.random.default_rng(seed)`. Every arm uses `dataclasses.replace(config, seed=seed)`.
    Progress: stage "features" (the frozen backbone's features, tokenising in LoRA mode), then
    "retraining", fraction = finished retrains / all retrains (fractional within a
    LoRA retrain), message "seed 1/3: pruned". `should_cancel` is polled between retrains and
    inside training; `Cancelled` is raised. Returns the verify job's metrics (the engine's
    fields; the job runner adds where the pairs came from).
    """
    mask, seed_list = _check_inputs(train, evaluation, prune, config, seeds)
    n, n_removed = len(train), int(mask.sum())
    extra = {name: np.asarray(m, dtype=bool) for name, m in (alternatives or {}).items()}
    for name, other in extra.items():
        if name in ARMS or other.shape != mask.shape or int(other.sum()) != n_removed:
            raise ValueError(
                f"alternative arm {name!r} must be a new name and prune {n_removed} of {n} pairs"
            )
        if name not in VerifyArms.model_fields:
            raise ValueError(
                f"alternative arm {name!r} is not one of {list(VerifyArms.model_fields)}"
            )
    arms = (*ARMS, *extra)
    total = len(arms) * len(seed_list)

    def report(done: float, message: str | None) -> None:
        if progress is not None:
            progress(STAGE, min(1.0, done / total), message)

    def features(fraction: float) -> None:
        if progress is not None:
            progress("features", fraction, None)

    features(0.0)  # the frozen backbone's features in head mode, tokenising in LoRA mode
    retrainer = Retrainer.for_pairs(
        train, evaluation, config, progress=features, should_cancel=should_cancel
    )
    features(1.0)
    runs, margins = _retrain_arms(retrainer, mask, extra, arms, seed_list, report, should_cancel)
    out = compare_runs(runs, margins, seed_list)
    out.update(
        n_removed=n_removed,
        n_train=n,
        n_eval=len(evaluation),
        seeds=seed_list,
        model=config.model,
        mode=config.mode,
    )
    out["summary"] = summary_sentence(out)
    return VerifyMetrics.model_validate({"kind": "verify", **out})


def _retrain_arms(
    retrainer: Retrainer,
    mask: np.ndarray,
    extra: dict[str, np.ndarray],
    arms: tuple[str, ...],
    seed_list: list[int],
    report: Callable[[float, str | None], None],
    should_cancel: ShouldCancel | None,
) -> tuple[list[dict], dict[str, list[np.ndarray]]]:
    """Every arm retrained once per seed: (one row per run, each arm's evaluation margins)."""
    n, n_removed = len(mask), int(mask.sum())
    runs: list[dict] = []
    margins: dict[str, list[np.ndarray]] = {arm: [] for arm in arms}
    finished = 0
    for k, seed in enumerate(seed_list):
        keeps = {
            "full": np.ones(n, dtype=bool),
            "pruned": ~mask,
            "random": random_keep(n, n_removed, seed),
            **{name: ~other for name, other in extra.items()},
        }
        for arm in arms:
            check_cancel(should_cancel)
            label = f"seed {k + 1}/{len(seed_list)}: {arm}"
            report(finished, label)
            result = retrainer.fit(
                keeps[arm],
                seed,
                progress=_offset(report, finished, label),
                should_cancel=should_cancel,
            )
            finished += 1
            report(finished, label)
            margins[arm].append(result.margins)
            runs.append(
                {
                    "seed": seed,
                    "arm": arm,
                    "n_train": result.n_train,
                    "accuracy": result.accuracy,
                    "loss": result.loss,
                    "seconds": result.seconds,
                }
            )
    return runs, margins


def _offset(
    report: Callable[[float, str | None], None], done: int, label: str
) -> Callable[[float], None]:
    """Progress within one retrain, reported as `done + fraction` finished retrains."""
    return lambda fraction: report(done + fraction, label)


def random_keep(n: int, n_removed: int, seed: int) -> np.ndarray:
    """Keep-mask removing `n_removed` of `n` pairs drawn by `numpy.random.default_rng(seed)`."""
    keep = np.ones(n, dtype=bool)
    keep[np.random.default_rng(seed).choice(n, n_removed, replace=False)] = False
    return keep


def compare_runs(runs: list[dict], margins: dict[str, list[np.ndarray]], seeds: list[int]) -> dict:
    """Per-arm summaries, paired differences over seeds and over evaluation pairs.

    `runs` holds one row per (seed, arm) with accuracy and loss; `margins[arm][k]` the evaluation
    margins of seed k. Differences over seeds pair runs that share a seed; "evaluation_paired"
    pairs evaluation items (per-pair correctness and loss averaged over seeds), which carries the
    uncertainty of a finite evaluation set that seed-to-seed spread alone misses (deterministic
    head-mode fits have none).
    """

    def values(arm: str, metric: str) -> list[float]:
        by_seed = {r["seed"]: r[metric] for r in runs if r["arm"] == arm}
        return [by_seed[s] for s in seeds]

    arms = {
        arm: {metric: summarize(values(arm, metric)) for metric in ("accuracy", "loss")}
        for arm in margins
    }
    per_item = {
        arm: {
            "accuracy": np.mean([m > 0 for m in stack], axis=0),
            "loss": np.mean([np.logaddexp(0.0, -m) for m in stack], axis=0),
        }
        for arm, stack in margins.items()
    }
    differences, evaluation_paired = {}, {}
    extra = [arm for arm in margins if arm not in ARMS]
    contrasts = [("pruned", other) for other in ("full", "random", *extra)]
    contrasts += [(arm, other) for arm in extra for other in ("full", "random")]
    for arm, other in contrasts:
        if other not in margins or arm not in margins:
            continue
        key = f"{arm}_minus_{other}"
        differences[key] = {
            metric: paired_difference(values(arm, metric), values(other, metric))
            for metric in ("accuracy", "loss")
        }
        evaluation_paired[key] = {
            metric: paired_difference(per_item[arm][metric], per_item[other][metric])
            for metric in ("accuracy", "loss")
        }
    return {
        "runs": runs,
        "arms": arms,
        "differences": differences,
        "evaluation_paired": evaluation_paired,
    }


def summary_sentence(result: dict) -> str:
    """One plain sentence: the accuracy change of pruning against all pairs and against random.

    A difference counts as real only when its interval over seeds and its interval over
    evaluation pairs both exclude zero.
    """
    k, n, m = result["n_removed"], result["n_train"], result["n_eval"]
    seeds = len(result["seeds"])
    parts, verdicts = [], []
    for key, against in (
        ("pruned_minus_full", "all pairs"),
        ("pruned_minus_random", f"removing {k} random pairs"),
    ):
        by_seed = result["differences"][key]["accuracy"]
        by_item = result["evaluation_paired"][key]["accuracy"]
        text = f"by {_points(by_seed['mean'])} points vs {against}"
        if by_seed["ci_low"] is None:
            text += f" (1 seed, no interval; evaluation pairs: {_interval(by_item)})"
        elif by_seed["std"] == 0:
            text += (
                f" (identical across {seeds} seeds; 95% CI over evaluation pairs "
                f"{_interval(by_item)})"
            )
        else:
            text += (
                f" (95% CI {_interval(by_seed)} over {seeds} seeds, "
                f"{_interval(by_item)} over evaluation pairs)"
            )
        parts.append(text)
        real = excludes_zero(by_item) and (by_seed["std"] == 0 or excludes_zero(by_seed))
        if real:
            verdicts.append(("better than " if by_seed["mean"] > 0 else "worse than ") + against)
    verdict = (
        "pruning did " + " and ".join(verdicts)
        if verdicts
        else "neither difference is distinguishable from zero"
    )
    return (
        f"Pruning {k} of {n} training pairs changed pairwise accuracy on {m} evaluation pairs "
        f"{parts[0]} and {parts[1]}: {verdict}."
    )


def _points(fraction: float) -> str:
    value = 100 * fraction
    if abs(value) < 0.05:
        return "0.0"
    return f"{'+' if value > 0 else '−'}{abs(value):.1f}"


def _interval(difference: dict) -> str:
    if difference["ci_low"] is None:
        return "none"
    return f"{_points(difference['ci_low'])} to {_points(difference['ci_high'])}"


def _check_inputs(
    train: Sequence[Pair],
    evaluation: Sequence[Pair],
    prune: Sequence[bool] | np.ndarray,
    config: EngineConfig,
    seeds: Sequence[int],
) -> tuple[np.ndarray, list[int]]:
    config.validate()
    if len(evaluation) == 0:
        raise ValueError("the evaluation set is empty: give the validation pairs or a test dataset")
    mask = np.asarray(prune)
    if mask.ndim != 1 or mask.shape[0] != len(train):
        raise ValueError(
            f"prune has {mask.size} entries but there are {len(train)} training pairs: give one "
            "true/false per training pair, in training order"
        )
    if mask.dtype != bool:
        if not np.all(np.isin(mask, (0, 1))):
            raise ValueError("prune must hold booleans (true = remove the pair)")
        mask = mask.astype(bool)
    n_removed = int(mask.sum())
    if n_removed == 0:
        raise ValueError("prune removes no pair: flag at least one pair to verify pruning")
    if len(train) - n_removed < 2:
        raise ValueError(
            f"prune removes {n_removed} of {len(train)} pairs, leaving fewer than 2 to train on; "
            "flag fewer pairs"
        )
    seed_list = [int(s) for s in seeds]
    if not seed_list:
        raise ValueError("no seeds given: give at least one (3 or more for an interval)")
    if len(set(seed_list)) != len(seed_list):
        raise ValueError(f"seeds repeat ({seed_list}): equal seeds give identical retrains")
    return mask, seed_list
