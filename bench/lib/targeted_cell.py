"""One cell of the targeted benchmark (bench.targeted): a seed's split, the planted flips, the
rankings against the flip mask, and the retraining arm.

Split (fresh per seed, `default_rng([SPLIT_SALT, seed])`): of the bias's candidates (pairs that show
the unbiased behaviour, bench.lib.targeted_biases), `target` form the target set T, `test` the
held-out target test set, `train_candidates` go into training, where a `flip_share` of them is
flipped (the planted bias); the validation split and the rest of training are drawn from the other
pairs (non-candidates and left-over candidates, kept clean). Validation and target pairs keep
their true labels.

Head mode reads features computed once per dataset (bench.lib.detection_data.source_views) and
fits through the engine's code (worker.influence.fitted.head_fitted); the targeted scores put T in
the validation set's place as worker/influence/targeting.py does (`aim_at_target`: margins and
margin gradients of T; the head's margin gradient is its input feature z_t). LoRA mode runs the
whole audit as a job does (run_audit with `target=`), and retrains by full audits.

Retraining arm: for each ranking, remove its top k (k = number of planted flips) and refit with
the same recipe (head mode: the full fit's view, scaling and L2; LoRA: the same config); report
the accuracy on the held-out target test set minus that of the model fitted on all training pairs.
`planted flips (oracle)` removes exactly the flips.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np
import torch

from bench.lib.metrics import auroc, top_mask
from bench.lib.targeted_biases import Bias
from worker.influence.audit import run_audit
from worker.influence.config import EngineConfig
from worker.influence.data import Pair
from worker.influence.features import PairViews
from worker.influence.fitted import head_fitted
from worker.influence.head import fit_head
from worker.influence.scoring import score_fitted

SPLIT_SALT = 2020
ORACLE = "planted flips (oracle)"
RANDOM = "random"
TARGET_SCORES = {
    "influence (target)": "harm_influence",
    "gradient similarity (target)": "harm_gradient_similarity",
    "DataInf (target)": "harm_datainf",
    "TracIn (target)": "harm_tracin",
}
PLAIN_SCORES = {
    "influence (validation)": "harm_influence",
    "loss": "harm_loss",
    "length": "harm_length",
}
HEAD_METHODS = ["loss", "gradient_similarity", "influence", "datainf", "length"]
LORA_METHODS = [*HEAD_METHODS, "tracin"]


@dataclasses.dataclass(frozen=True)
class Split:
    target: np.ndarray
    test: np.ndarray
    val: np.ndarray
    train: np.ndarray
    flips: np.ndarray  # per training position: planted flip (presented swapped)


def make_split(candidates: np.ndarray, seed: int, sizes: dict) -> Split:
    rng = np.random.default_rng([SPLIT_SALT, seed])
    cand = rng.permutation(np.flatnonzero(candidates))
    need = sizes["target"] + sizes["test"] + sizes["train_candidates"]
    if len(cand) < need:
        raise ValueError(f"{len(cand)} candidate pairs, the split needs {need}")
    target, test, train_c, rest_c = np.split(
        cand, np.cumsum([sizes["target"], sizes["test"], sizes["train_candidates"]])
    )
    other = rng.permutation(np.concatenate([np.flatnonzero(~candidates), rest_c]))
    n_other = sizes["train"] - len(train_c)
    val, train_o = other[: sizes["val"]], other[sizes["val"] : sizes["val"] + n_other]
    train = rng.permutation(np.concatenate([train_c, train_o]))
    n_flip = int(round(sizes["flip_share"] * len(train_c)))
    flipped = set(rng.choice(train_c, n_flip, replace=False).tolist())
    flips = np.array([i in flipped for i in train.tolist()], dtype=bool)
    return Split(target, test, val, train, flips)


def rows(views: PairViews, index: np.ndarray, swap: np.ndarray | None = None) -> PairViews:
    """The views of source rows `index`, negated where presented swapped."""
    swap = np.zeros(len(index), dtype=bool) if swap is None else swap
    sign = torch.as_tensor(1.0 - 2.0 * swap.astype(np.float64)).unsqueeze(1)
    return PairViews({k: v[torch.as_tensor(index)] * sign for k, v in views.views.items()})


def present(pairs: list[Pair], index: np.ndarray, swap: np.ndarray | None = None) -> list[Pair]:
    swap = np.zeros(len(index), dtype=bool) if swap is None else swap
    return [
        Pair(pairs[i].prompt, pairs[i].rejected, pairs[i].chosen) if s else pairs[i]
        for i, s in zip(index, swap, strict=True)
    ]


def _metrics(harm: np.ndarray, flips: np.ndarray) -> dict:
    k = int(flips.sum())
    return {
        "auroc": auroc(harm, flips),
        "precision_at_k": float(flips[top_mask(harm, k)].mean()) if k else None,
    }


def _retrain_arm(
    harms: dict[str, np.ndarray], flips: np.ndarray, accuracy: Callable[[np.ndarray], float]
) -> dict:
    """Target-test accuracy after removing each ranking's top k, minus the full fit's."""
    k = int(flips.sum())
    full = accuracy(np.ones(len(flips), dtype=bool))
    removals = {name: ~top_mask(harm, k) for name, harm in harms.items()}
    removals[ORACLE] = ~flips
    out: dict = {"k": k, "full_accuracy": full, "methods": {}}
    for name, keep in removals.items():
        acc = accuracy(keep)
        out["methods"][name] = {
            "accuracy": acc,
            "change": acc - full,
            "flips_removed": int((flips & ~keep).sum()),
        }
    return out


def _common(split: Split, bias: Bias, seed: int) -> dict:
    return {
        "bias": bias.name,
        "seed": seed,
        "n_train": len(split.train),
        "n_flips": int(split.flips.sum()),
        "n_target": len(split.target),
        "n_test": len(split.test),
        "n_val": len(split.val),
    }


def head_cell(
    pairs: list[Pair], views: PairViews, bias: Bias, config: EngineConfig, seed: int, sizes: dict
) -> dict:
    start = time.perf_counter()
    split = make_split(bias.candidates(pairs), seed, sizes)
    val_views, val_pairs = rows(views, split.val), present(pairs, split.val)

    index, swap = split.train, split.flips
    fitted, _ = head_fitted(
        rows(views, index, swap), val_views, config, present(pairs, index, swap), val_pairs
    )
    choice = fitted.head_choice
    assert choice is not None and fitted.head_weight is not None
    plain, _, _ = score_fitted(fitted, config)
    z_t = choice.apply(rows(views, split.target)[choice.view])
    aimed = dataclasses.replace(
        fitted, val_margins=(z_t @ fitted.head_weight).numpy(), val_grads=z_t, g_val=None
    )
    targeted, _, _ = score_fitted(aimed, config)
    rng = np.random.default_rng([SPLIT_SALT, seed, 1])
    harms = {n: targeted[c] for n, c in TARGET_SCORES.items() if c in targeted}
    harms |= {n: plain[c] for n, c in PLAIN_SCORES.items() if c in plain}
    harms[RANDOM] = rng.random(len(split.train))

    z_train = choice.apply(rows(views, index, swap)[choice.view])
    z_test = choice.apply(rows(views, split.test)[choice.view])

    def test_accuracy(keep: np.ndarray) -> float:
        """Refit with the full fit's recipe (view, scale, L2: the same hyperparameters, so
        only the removed pairs change) and score the held-out target test pairs."""
        w, _ = fit_head(z_train[torch.as_tensor(keep)], choice.l2)
        return float(((z_test.double() @ w).numpy() > 0).mean())

    out = _common(split, bias, seed)
    out |= {
        "mode": "head",
        "val_accuracy": float((fitted.val_margins > 0).mean()),
        "target_accuracy": float((aimed.val_margins > 0).mean()),
        "methods": {name: _metrics(h, split.flips) for name, h in harms.items()},
        "retrain": _retrain_arm(harms, split.flips, test_accuracy),
    }
    out["seconds"] = round(time.perf_counter() - start, 2)
    return out


def lora_cell(
    pairs: list[Pair], bias: Bias, config: EngineConfig, seed: int, sizes: dict, retrain: bool
) -> dict:
    """A LoRA cell: the targeted audit as a job runs it; retraining by full audits (loss only)."""
    start = time.perf_counter()
    split = make_split(bias.candidates(pairs), seed, sizes)
    train = present(pairs, split.train, split.flips)
    val, target, test = (present(pairs, ix) for ix in (split.val, split.target, split.test))
    audit = run_audit(train, val, config, keep_state=True, target=target)
    assert audit.state is not None and audit.metrics.target is not None
    plain, _, _ = score_fitted(audit.state, config)  # its validation split: the plain scores
    rng = np.random.default_rng([SPLIT_SALT, seed, 1])
    harms = {n: audit.scores[c] for n, c in TARGET_SCORES.items() if c in audit.scores}
    harms |= {n: plain[c] for n, c in PLAIN_SCORES.items() if c in plain}
    harms[RANDOM] = rng.random(len(split.train))
    out = _common(split, bias, seed)
    out |= {
        "mode": "lora",
        "val_accuracy": float((audit.state.val_margins > 0).mean()),
        "target_accuracy": audit.metrics.target.accuracy,
        "methods": {name: _metrics(h, split.flips) for name, h in harms.items()},
    }
    if retrain:
        refit_config = dataclasses.replace(config, methods=["loss"], default_method="loss")
        kept = {n: harms[n] for n in ("influence (target)", "loss", RANDOM) if n in harms}

        def test_accuracy(keep: np.ndarray) -> float:
            subset = [p for p, k in zip(train, keep, strict=True) if k]
            result = run_audit(subset, val, refit_config, target=test)
            assert result.metrics.target is not None
            return float(result.metrics.target.accuracy)

        out["retrain"] = _retrain_arm(kept, split.flips, test_accuracy)
    out["seconds"] = round(time.perf_counter() - start, 2)
    return out
