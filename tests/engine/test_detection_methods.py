"""The detection methods beyond influence: length baseline, cross-fitting, ensembles, trust."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.factories import noisy_split, tiny_config
from worker.influence.audit import run_audit
from worker.influence.crossfit import cross_fit, fold_assignment
from worker.influence.data import Pair
from worker.influence.head import fit_head
from worker.influence.scores import length_difference, length_harm
from worker.influence.trust import (
    LN2,
    flip_posterior,
    mislabelled_estimate,
    validation_trust,
    wilson_interval,
)


def test_length_heuristic_takes_its_direction_from_validation() -> None:
    train = [Pair("p", "a" * 10, "b" * 2), Pair("p", "a" * 2, "b" * 10)]
    longer_wins = length_difference([Pair("p", "x" * 9, "y"), Pair("p", "x" * 5, "y" * 2)])
    harm, direction = length_harm(length_difference(train), longer_wins)
    assert direction == 1 and harm[1] > harm[0]  # the short chosen answer is suspect
    harm, direction = length_harm(length_difference(train), -longer_wins)
    assert direction == -1 and harm[0] > harm[1]  # where short answers win, the reverse


def test_fold_assignment_is_balanced_and_seeded() -> None:
    folds = fold_assignment(103, 5, seed=3)
    assert sorted(np.bincount(folds).tolist()) == [20, 20, 21, 21, 21]
    np.testing.assert_array_equal(folds, fold_assignment(103, 5, seed=3))
    assert not np.array_equal(folds, fold_assignment(103, 5, seed=4))
    with pytest.raises(ValueError, match="folds"):
        fold_assignment(3, 5, seed=0)


def test_out_of_fold_margins_come_from_models_that_never_saw_the_pair() -> None:
    n = 30
    seen: list[np.ndarray] = []

    def fit(positions: np.ndarray, member: int):
        seen.append(positions.copy())
        # A "model" whose margin is +1 on pairs it trained on and −1 on the others.
        return lambda: np.where(np.isin(np.arange(n), positions), 1.0, -1.0)

    result = cross_fit(n, fit, folds=3, repeats=2, seed=0)
    assert len(seen) == 6 and result.member_margins.shape == (6, n)
    np.testing.assert_array_equal(result.oof_margin, -np.ones(n))  # never in-sample
    np.testing.assert_allclose(result.ensemble_margin, np.full(n, 1 / 3))
    assert np.all(result.disagreement > 0)


def test_head_oof_margin_equals_a_refit_without_the_fold() -> None:
    train, val, flips = noisy_split()
    config = tiny_config(
        mode="head",
        methods=["loss", "oof_loss", "ensemble"],
        head_features="pooler",
        crossfit_folds=4,
        crossfit_repeats=1,
    )
    result = run_audit(train, val, config, keep_state=True)
    state = result.state
    assert state is not None and state.grads is not None and state.head_choice is not None
    folds = fold_assignment(len(train), 4, config.seed)
    held_out = np.flatnonzero(folds == 2)
    w, _ = fit_head(state.grads[torch.as_tensor(np.flatnonzero(folds != 2))], state.head_choice.l2)
    np.testing.assert_allclose(
        result.scores["oof_margin"][held_out], (state.grads[held_out] @ w).numpy(), atol=1e-10
    )
    np.testing.assert_allclose(
        result.scores["harm_oof_loss"], np.logaddexp(0, -result.scores["oof_margin"])
    )
    assert result.metrics.model_dump()["crossfit"] == {"folds": 4, "repeats": 1, "members": 4}
    order = np.argsort(-result.scores["harm_oof_loss"])
    assert set(flips) <= set(order[:8].tolist())
    assert result.metrics.model_dump()["mislabelled"]["source"] == "out_of_fold"


def test_wilson_interval() -> None:
    low, high = wilson_interval(34, 60)  # 56.7% on 60 pairs: the UI's untrusted audit
    assert low < 0.5 < high
    low, high = wilson_interval(70, 100)
    assert low == pytest.approx(0.6041, abs=1e-3) and high == pytest.approx(0.7809, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_validation_trust_says_when_the_ranking_is_not_evidence() -> None:
    weak = validation_trust(np.array([0.01] * 34 + [-0.01] * 26))
    assert weak["is_evidence"] is False and "includes 0.5" in weak["message"]
    assert "ln 2" in weak["message"]  # loss 0.6923 against ln 2 = 0.6931
    strong = validation_trust(np.array([2.0] * 80 + [-1.0] * 20))
    assert strong["is_evidence"] is True and strong["val_loss"] < LN2
    assert strong["val_accuracy_ci95"][0] > 0.5


def test_mislabelled_estimate_recovers_a_planted_rate() -> None:
    rng = np.random.default_rng(0)
    n, wrong = 2000, 200
    truth = rng.normal(1.5, 1.0, n)  # margins of the true order under a decent model
    flipped = np.zeros(n, dtype=bool)
    flipped[:wrong] = True
    margins = np.where(flipped, -truth, truth)
    estimate = mislabelled_estimate(margins, harm=-margins)
    assert abs(estimate["estimated_fraction"] - 0.1) < 0.04
    low, high = estimate["fraction_ci95"]
    assert low <= 0.1 <= high and estimate["precise"] is True
    assert abs(estimate["posterior_count"] - wrong) < 0.4 * wrong
    top = estimate["expected_precision_at_top"]["0.1"]
    actual = flipped[np.argsort(margins)[:200]].mean()
    assert abs(top - actual) < 0.2


def test_mislabelled_estimate_is_a_wide_range_when_the_model_knows_little() -> None:
    rng = np.random.default_rng(1)
    estimate = mislabelled_estimate(rng.normal(0.05, 0.1, 300))
    low, high = estimate["fraction_ci95"]
    assert low <= estimate["estimated_fraction"] <= high and high - low > 0.1
    assert estimate["precise"] is False and "too weak" in estimate["message"]


def test_flip_posterior_is_prior_at_zero_margin() -> None:
    assert flip_posterior(np.array([0.0]), 0.2, 3.0)[0] == pytest.approx(0.2)
    assert flip_posterior(np.array([-5.0]), 0.2, 3.0)[0] > 0.99


def test_lora_length_and_loss_need_no_per_pair_gradients() -> None:
    train, val, _ = noisy_split()
    result = run_audit(
        train, val, tiny_config(epochs=1, methods=["loss", "length"]), keep_state=True
    )
    assert result.state is not None and result.state.grads is None
    np.testing.assert_array_equal(result.scores["harm"], result.scores["harm_length"])
    assert result.metrics.model_dump()["default_method"] == "length"
    assert result.metrics.model_dump()["mislabelled"]["source"] == "in_sample"
