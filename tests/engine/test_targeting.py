"""Targeted audits in the engine: the target takes the validation set's place for the
target-aware methods only (worker/influence/targeting.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.factories import flipped, noisy_split, tiny_config
from worker.influence.audit import run_audit
from worker.influence.methods import TARGET_AWARE

TARGET_FREE = ("loss", "margin", "harm_self_influence", "harm_corrected_loss", "harm_length")
METHODS = ["loss", "gradient_similarity", "influence", "self_influence", "corrected_loss", "length"]


def test_target_aware_methods_are_the_validation_readers() -> None:
    assert set(TARGET_AWARE) == {"influence", "gradient_similarity", "datainf", "tracin", "group"}


@pytest.mark.parametrize("mode", ["head"])
def test_target_equal_to_validation_changes_nothing(mode: str) -> None:
    """Aiming at the validation pairs themselves gives the untargeted scores."""
    train, val, _ = noisy_split()
    config = tiny_config(mode=mode, methods=METHODS, epochs=2)
    plain = run_audit(train, val, config)
    aimed = run_audit(train, val, config, target=val)
    for column in ("harm_influence", "harm_gradient_similarity", *TARGET_FREE):
        np.testing.assert_allclose(aimed.scores[column], plain.scores[column], rtol=1e-5, atol=1e-8)
    assert aimed.metrics.target is not None
    assert aimed.metrics.target.n_pairs == len(val)
    assert aimed.metrics.target.accuracy == pytest.approx(aimed.metrics.val_accuracy)
    assert set(aimed.metrics.target.methods) == {"influence", "gradient_similarity"}
    assert plain.metrics.target is None


@pytest.mark.parametrize("mode", ["head", "lora"])
def test_reversed_target_reverses_influence_and_leaves_the_loss_family(mode: str) -> None:
    """A target preferring the opposite of the validation pairs turns the influence ranking
    around; the training-loss family and the validation figures stay as they were."""
    train, val, _ = noisy_split()
    config = tiny_config(mode=mode, methods=METHODS, epochs=2)
    plain = run_audit(train, val, config)
    reversed_target = [flipped(p) for p in val]
    aimed = run_audit(train, val, config, target=reversed_target)
    for column in TARGET_FREE:
        np.testing.assert_allclose(aimed.scores[column], plain.scores[column], rtol=1e-6)
    assert aimed.metrics.val_accuracy == plain.metrics.val_accuracy
    assert aimed.metrics.target is not None
    assert aimed.metrics.target.accuracy == pytest.approx(1 - plain.metrics.val_accuracy)
    for column in ("harm_influence", "harm_gradient_similarity"):
        rho = np.corrcoef(aimed.scores[column], plain.scores[column])[0, 1]
        assert rho < -0.5, (column, rho)
