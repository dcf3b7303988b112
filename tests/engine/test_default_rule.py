"""`default_method`: 'auto' lets the job choose (worker/influence/canaries.py), every method name,
'length' included, forces that method; and the choice needs the canaries to confirm that the
model's ranking finds wrong pairs above chance before it trusts one."""

from __future__ import annotations

import pytest

from worker.influence import canaries
from worker.influence.config import DEFAULT_METHOD, EngineConfig
from worker.influence.methods import AUTO, default_method

LEARNED = {
    "is_evidence": True,
    "val_accuracy": 0.63,
    "val_accuracy_ci95": [0.532, 0.718],
    "n_val": 100,
}
METHODS = ["loss", "influence", "length"]


def _evidence(aurocs: dict[str, float], se: float, k: int = 20) -> dict[str, canaries.Evidence]:
    return {m: canaries.Evidence(m, a, se, 3, k, 28) for m, a in aurocs.items()}


def test_auto_is_the_default_and_length_is_a_method_like_any_other() -> None:
    assert DEFAULT_METHOD == AUTO == EngineConfig().default_method
    assert canaries.explicit_default(AUTO) is None
    assert canaries.explicit_default("length") == "length"
    # Forcing a method needs it computed; 'auto' never does.
    EngineConfig(methods=["loss", "length"], default_method="length").validate()
    EngineConfig(methods=["loss"], default_method="auto").validate()
    with pytest.raises(ValueError, match="leave it at 'auto'"):
        EngineConfig(methods=["loss"], default_method="length").validate()


def test_auto_resolves_to_length_where_computed_until_a_job_chooses() -> None:
    assert default_method(["loss", "length"], AUTO) == "length"
    assert default_method(["influence", "loss"], AUTO) == "influence"
    assert default_method(["loss", "length"], "loss") == "loss"


def test_a_forced_length_is_honoured_even_where_the_loss_finds_the_canaries() -> None:
    found = _evidence({"loss": 0.9, "influence": 0.7, "length": 0.5}, 0.04, 50)
    chosen, reason, rule = canaries.decide(found, METHODS, LEARNED, asked="length")
    assert (chosen, rule) == ("length", "asked") and "asked for" in reason


def test_weak_canary_evidence_shrinks_to_the_model_free_signal() -> None:
    """harmless-base's learned cell (seed 2, bench/results/detection-canaries/): validation
    accuracy 0.63 [0.53, 0.72], the loss at canary AUROC 0.62 ± 0.07 on 20 canaries, whose 95%
    interval reaches below 0.5: length is used, and the rule says the model is not evidence."""
    found = _evidence({"loss": 0.62, "influence": 0.63, "length": 0.60}, 0.07)
    chosen, reason, rule = canaries.decide(found, METHODS, LEARNED)
    assert (chosen, rule) == ("length", "model_free")
    assert "not shown to find wrong pairs above chance" in reason and "length heuristic" in reason
    # The same figures with a tighter interval (more canaries) confirm the loss.
    found = _evidence({"loss": 0.62, "influence": 0.63, "length": 0.60}, 0.05)
    assert canaries.decide(found, METHODS, LEARNED)[::2] == ("loss", "learned")


def test_weak_evidence_without_a_length_column_keeps_the_prior_and_says_so() -> None:
    found = _evidence({"loss": 0.58, "influence": 0.55}, 0.07)
    chosen, reason, rule = canaries.decide(found, ["loss", "influence"], LEARNED)
    assert (chosen, rule) == ("loss", "model_free") and "no model-free ranking" in reason


def test_a_ranking_that_beats_the_loss_must_also_clear_chance() -> None:
    found = _evidence({"loss": 0.50, "influence": 0.63, "length": 0.55}, 0.07)
    assert canaries.decide(found, METHODS, LEARNED)[0] == "length"
    found = _evidence({"loss": 0.50, "influence": 0.72, "length": 0.55}, 0.07)
    assert canaries.decide(found, METHODS, LEARNED)[::2] == ("influence", "learned")
