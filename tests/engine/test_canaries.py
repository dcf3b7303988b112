"""The per-job default's engine part (worker/influence/canaries.py): canary selection, their
detection figures, the choice rule and the dropping of their rows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from worker.influence import canaries
from worker.influence.data import Pair

LEARNED = {
    "is_evidence": True,
    "val_accuracy": 0.7,
    "val_accuracy_ci95": [0.65, 0.75],
    "n_val": 300,
}
CHANCE = {
    "is_evidence": False,
    "val_accuracy": 0.49,
    "val_accuracy_ci95": [0.43, 0.55],
    "n_val": 300,
}


@pytest.mark.parametrize(
    ("n", "expected"),
    [(10, 0), (180, 0), (199, 0), (200, 20), (400, 20), (1000, 50), (5000, 64), (10**6, 64)],
)
def test_canary_count_is_5_percent_clamped_and_never_over_a_tenth(n: int, expected: int) -> None:
    assert canaries.canary_count(n) == expected


def test_selection_is_seeded_sorted_and_distinct() -> None:
    a = canaries.select_canaries(1000, 3)
    assert np.array_equal(a, canaries.select_canaries(1000, 3))
    assert not np.array_equal(a, canaries.select_canaries(1000, 4))
    assert len(a) == 50 and len(set(a.tolist())) == 50 and np.all(np.diff(a) > 0)
    assert a.min() >= 0 and a.max() < 1000


def test_plant_swaps_exactly_the_canaries() -> None:
    pairs = [Pair(f"p{i}", f"c{i}", f"r{i}") for i in range(300)]
    positions = canaries.select_canaries(300, 0)
    planted = canaries.plant(pairs, positions)
    for i, (before, after) in enumerate(zip(pairs, planted, strict=True)):
        if i in set(positions.tolist()):
            assert (after.chosen, after.rejected) == (before.rejected, before.chosen)
        else:
            assert after == before


def test_auroc_matches_sklearn_with_ties_and_se_shrinks_with_more_canaries() -> None:
    rng = np.random.default_rng(0)
    scores = np.round(rng.normal(size=600), 1)  # ties
    mask = np.zeros(600, dtype=bool)
    mask[rng.choice(600, 40, replace=False)] = True
    scores[mask] += 0.8
    a, se = canaries.auroc_se(scores, mask)
    assert a == pytest.approx(roc_auc_score(mask, scores))
    assert 0.01 < se < 0.1
    more = np.zeros(600, dtype=bool)
    more[rng.choice(600, 200, replace=False)] = True
    _, se_more = canaries.auroc_se(scores + 0.8 * more, more)
    assert se_more < se


def _scores(n: int, positions: np.ndarray, strength: dict[str, float], seed: int = 0) -> dict:
    """Synthetic harm columns: each method ranks the canaries up by its strength."""
    rng = np.random.default_rng(seed)
    mask = canaries.canary_mask(n, positions)
    out = {"loss": rng.normal(size=n), "margin": rng.normal(size=n)}
    for method, s in strength.items():
        out[f"harm_{method}"] = rng.normal(size=n) + s * mask
    return out


def test_evaluate_counts_top10_hits() -> None:
    positions = canaries.select_canaries(1000, 1)
    scores = _scores(1000, positions, {"loss": 10.0, "length": 0.0})
    found = canaries.evaluate(scores, ["loss", "length"], positions)
    assert found["loss"].hits == 50 and found["loss"].auroc > 0.99
    assert found["loss"].top == 100 and found["loss"].canaries == 50
    assert found["length"].hits < 20 and abs(found["length"].auroc - 0.5) < 0.15
    assert "on 50 canaries this ranking put 50 in its top 10%" in found["loss"].sentence()


def test_prior_is_kept_unless_beaten_by_more_than_the_standard_error() -> None:
    positions = canaries.select_canaries(1000, 2)
    methods = ["loss", "influence", "length"]
    close = _scores(1000, positions, {"loss": 1.0, "influence": 1.1, "length": 0.0})
    found = canaries.evaluate(close, methods, positions)
    chosen, reason = canaries.choose(found, methods, LEARNED)
    assert found["influence"].auroc - found["loss"].auroc < found["influence"].se
    assert chosen == "loss" and "standard error" in reason
    far = _scores(1000, positions, {"loss": 0.3, "influence": 2.5, "length": 0.0})
    chosen, reason = canaries.choose(canaries.evaluate(far, methods, positions), methods, LEARNED)
    assert chosen == "influence" and "beat the loss" in reason


def test_a_model_that_learned_nothing_falls_back_to_length() -> None:
    positions = canaries.select_canaries(1000, 2)
    methods = ["loss", "influence", "length"]
    scores = _scores(1000, positions, {"loss": 3.0, "influence": 3.0, "length": 0.5})
    chosen, reason = canaries.choose(canaries.evaluate(scores, methods, positions), methods, CHANCE)
    assert chosen == "length"
    assert "learned nothing" in reason and "[0.430, 0.550]" in reason
    # Without the length column the prior is kept, and the reason says why.
    chosen, reason = canaries.choose({}, ["loss", "influence"], CHANCE)
    assert chosen == "loss" and "no model-free ranking" in reason


def test_an_explicit_default_is_honoured_and_too_few_pairs_keep_the_prior() -> None:
    positions = canaries.select_canaries(1000, 2)
    scores = _scores(1000, positions, {"loss": 0.0, "influence": 3.0})
    found = canaries.evaluate(scores, ["loss", "influence"], positions)
    chosen, reason = canaries.choose(found, ["loss", "influence"], LEARNED, asked="loss")
    assert chosen == "loss" and "asked for" in reason
    assert canaries.explicit_default("auto") is None  # the config's default: evidence decides
    assert canaries.explicit_default("length") == "length"  # forced, like any method
    assert canaries.explicit_default("influence") == "influence"
    chosen, reason = canaries.choose({}, ["loss", "influence"], LEARNED)
    assert chosen == "loss" and "Too few training pairs" in reason


def test_apply_drops_the_canaries_and_fills_harm_with_the_chosen_column() -> None:
    positions = canaries.select_canaries(1000, 5)
    scores = _scores(1000, positions, {"loss": 0.2, "influence": 4.0, "length": 0.0})
    scores["harm"] = scores["harm_length"]
    kept, choice = canaries.apply(scores, ["loss", "influence", "length"], positions, LEARNED)
    keep = ~canaries.canary_mask(1000, positions)
    assert all(len(v) == 950 for v in kept.values())
    assert np.array_equal(kept["harm_influence"], scores["harm_influence"][keep])
    assert choice["method"] == "influence" and np.array_equal(kept["harm"], kept["harm_influence"])
    assert choice["canaries"] == 50 and choice["held_aside"] == 50 and choice["rule"] == "learned"
    assert set(choice["rankings"]) == {"loss", "influence", "length"}
    assert choice["expected_top10_hits"] == choice["rankings"]["influence"]["top10_hits"]
    assert choice["expected"].startswith("on 50 canaries this ranking put")


def test_non_finite_or_partial_columns_are_not_candidates() -> None:
    positions = canaries.select_canaries(400, 0)
    scores = _scores(400, positions, {"loss": 1.0, "influence": 5.0, "group": 9.0})
    scores["harm_influence"][3] = np.nan
    found = canaries.evaluate(scores, ["loss", "influence", "group"], positions)
    assert set(found) == {"loss"}


def test_apply_needs_no_raw_loss_column() -> None:
    """The LoRA canvas's finaliser reads only the columns its methods need: with methods=["loss"]
    there is `harm_loss` but no `loss` column, and the choice must still be made."""
    positions = canaries.select_canaries(400, 2)
    scores = _scores(400, positions, {"loss": 3.0})
    del scores["loss"], scores["margin"]
    kept, choice = canaries.apply(scores, ["loss"], positions, LEARNED)
    assert choice["method"] == "loss" and len(kept["harm"]) == 400 - len(positions)
