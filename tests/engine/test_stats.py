"""The retraining statistics against hand-computed cases (Student's t paired interval)."""

from __future__ import annotations

import json
import math

import pytest

from worker.influence.stats import excludes_zero, paired_difference, summarize


def test_paired_difference_matches_hand_computation() -> None:
    # d = a − b = [0.02, −0.01, 0.04]; mean 0.05/3; squared deviations sum to 1.26667e-3, so
    # sd = √(1.26667e-3 / 2) = 0.025166; t_{0.975, 2} = 4.302653 (tables);
    # half-width = 4.302653 · 0.025166 / √3 = 0.062517.
    result = paired_difference([0.62, 0.60, 0.65], [0.60, 0.61, 0.61])
    assert result["n"] == 3
    assert result["confidence"] == 0.95
    assert result["mean"] == pytest.approx(0.0166667, abs=1e-6)
    assert result["std"] == pytest.approx(0.0251661, abs=1e-6)
    assert result["ci_low"] == pytest.approx(0.0166667 - 0.0625170, abs=1e-6)
    assert result["ci_high"] == pytest.approx(0.0166667 + 0.0625170, abs=1e-6)
    assert not excludes_zero(result)
    json.dumps(result)


def test_paired_difference_other_confidence_and_sign() -> None:
    # d = [−1, −2, −3, −4]: mean −2.5, sd √(5/3) = 1.290994; t_{0.95, 3} = 2.353363 (90% two-sided).
    result = paired_difference([1, 2, 3, 4], [2, 4, 6, 8], confidence=0.90)
    half = 2.353363 * math.sqrt(5 / 3) / 2
    assert result["mean"] == pytest.approx(-2.5)
    assert result["ci_low"] == pytest.approx(-2.5 - half, abs=1e-5)
    assert result["ci_high"] == pytest.approx(-2.5 + half, abs=1e-5)
    assert excludes_zero(result)


def test_pairing_is_what_narrows_the_interval() -> None:
    # A shared seed effect cancels in paired differences: constant d gives a zero-width interval.
    result = paired_difference([0.70, 0.55, 0.62], [0.68, 0.53, 0.60])
    assert result["mean"] == pytest.approx(0.02)
    assert result["std"] == pytest.approx(0.0, abs=1e-12)
    assert result["ci_low"] == pytest.approx(0.02) and result["ci_high"] == pytest.approx(0.02)


def test_single_seed_has_no_interval() -> None:
    result = paired_difference([0.6], [0.5])
    assert result["mean"] == pytest.approx(0.1)
    assert result["std"] is None and result["ci_low"] is None and result["ci_high"] is None
    assert not excludes_zero(result)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        paired_difference([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="confidence"):
        paired_difference([0.1, 0.2], [0.1, 0.3], confidence=1.0)
    with pytest.raises(ValueError, match="non-finite"):
        paired_difference([0.1, float("nan")], [0.1, 0.3])


def test_summarize() -> None:
    result = summarize([0.61, 0.63, 0.65])
    assert result == {
        "n": 3,
        "mean": pytest.approx(0.63),
        "std": pytest.approx(0.02),
        "values": [0.61, 0.63, 0.65],
    }
    assert summarize([0.5]) == {"n": 1, "mean": 0.5, "std": None, "values": [0.5]}
    assert summarize([])["mean"] is None
    json.dumps(summarize([1, 2]))
