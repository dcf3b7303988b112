"""Cross-fitted and ensembled margins: scores from models that never saw the pair they score.

In-sample loss understates how wrong a model finds a pair it has fitted (memorisation); the
out-of-fold loss does not (Chong et al. 2022: a cross-fitted model's loss is a strong label-error
detector). K folds, repeated R times with fresh fold partitions:

- `oof_margin[i]`: the mean, over repeats, of Δ_i under the model trained on the other K − 1 folds;
  `harm_oof_loss = softplus(−oof_margin)`, the out-of-fold BT loss.
- `ensemble`: every fold model (K·R of them) scores every pair; `harm_ensemble` is minus the mean
  margin (a negative mean margin: the ensemble prefers the rejected answer; Secrets of RLHF II) and
  `ensemble_disagreement` the members' standard deviation of the margin.

The fitter is a callable, so the same procedure serves head mode (an exact convex fit in
milliseconds) and LoRA mode (a fresh adapter trained per fold).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from worker.influence.scores import bt_loss

Fitter = Callable[[np.ndarray, int], Callable[[], np.ndarray]]
"""fit(train_positions, member) -> a function returning that model's margins on every pair."""


@dataclass
class CrossFit:
    """Out-of-fold and ensemble margins of every training pair."""

    oof_margin: np.ndarray  # [n] mean over repeats of the held-out fold's margin
    member_margins: np.ndarray  # [K·R, n] every fold model's margin on every pair
    folds: int
    repeats: int

    @property
    def oof_loss(self) -> np.ndarray:
        return bt_loss(self.oof_margin)

    @property
    def ensemble_margin(self) -> np.ndarray:
        return self.member_margins.mean(axis=0)

    @property
    def disagreement(self) -> np.ndarray:
        if len(self.member_margins) < 2:
            return np.zeros(self.member_margins.shape[1])
        return self.member_margins.std(axis=0, ddof=1)


def fold_assignment(n: int, folds: int, seed: int) -> np.ndarray:
    """Fold id in 0..folds−1 of each of n pairs: a seeded permutation cut into equal parts."""
    if not 2 <= folds <= n:
        raise ValueError(f"cross-fitting needs 2 ≤ folds ≤ n (got folds={folds}, n={n})")
    order = np.random.default_rng([seed, 7]).permutation(n)
    fold = np.empty(n, dtype=np.int64)
    fold[order] = np.arange(n) % folds
    return fold


def cross_fit(
    n: int,
    fit: Fitter,
    folds: int,
    repeats: int,
    seed: int,
    progress: Callable[[float], None] | None = None,
) -> CrossFit:
    """Train K·R fold models through `fit` and collect their margins (see the module docstring)."""
    if repeats < 1:
        raise ValueError(f"repeats must be ≥ 1 (got {repeats})")
    oof = np.zeros(n)
    members = []
    for r in range(repeats):
        fold = fold_assignment(n, folds, seed + r)
        for k in range(folds):
            held_out = fold == k
            margins = fit(np.flatnonzero(~held_out), r * folds + k)()
            members.append(margins)
            oof[held_out] += margins[held_out] / repeats
            if progress is not None:
                progress((r * folds + k + 1) / (folds * repeats))
    return CrossFit(oof, np.stack(members), folds, repeats)
