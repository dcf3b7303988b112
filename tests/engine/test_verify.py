"""Retrain verification on the tiny model: the result's shape, pairing, determinism, progress,
cancellation and bad inputs, in head mode (exact fits) and LoRA mode."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.factories import synthetic_pairs, tiny_config
from worker.influence.audit import run_audit
from worker.influence.data import Pair, flipped
from worker.influence.verify import ARMS, Cancelled, Retrainer, random_keep, run_verify


def noisy(n: int, fraction: float) -> tuple[list[Pair], np.ndarray]:
    """Synthetic pairs with `fraction` of them flipped; the flips drawn with a seed (99) that no
    verification below uses, so the random arm never coincides with the flip mask."""
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(99).choice(n, int(round(fraction * n)), replace=False)] = True
    pairs = [flipped(p) if f else p for p, f in zip(synthetic_pairs(n, 1), mask, strict=True)]
    return pairs, mask


@pytest.fixture(scope="module")
def head_verify() -> tuple[dict, list[tuple[str, float, str | None]], list[Pair], list[Pair]]:
    train, flips = noisy(80, 0.4)
    evaluation = synthetic_pairs(40, 2)
    calls: list[tuple[str, float, str | None]] = []
    result = run_verify(
        train,
        evaluation,
        flips,
        tiny_config(mode="head", methods=["loss"]),
        seeds=[0, 1, 2],
        progress=lambda *call: calls.append(call),
    )
    return result.model_dump(), calls, train, evaluation


def test_result_has_the_contracted_shape(head_verify) -> None:
    result, _, _, _ = head_verify
    json.dumps(result)
    assert (result["n_train"], result["n_removed"], result["n_eval"]) == (80, 32, 40)
    assert result["seeds"] == [0, 1, 2]
    assert [(r["seed"], r["arm"]) for r in result["runs"]] == [
        (s, a) for s in (0, 1, 2) for a in ARMS
    ]
    for run in result["runs"]:
        assert run["n_train"] == (80 if run["arm"] == "full" else 48)
        assert 0 <= run["accuracy"] <= 1 and run["loss"] > 0 and run["seconds"] >= 0
    for arm in ARMS:
        accuracy = result["arms"][arm]["accuracy"]
        assert accuracy["n"] == 3
        assert accuracy["values"] == [r["accuracy"] for r in result["runs"] if r["arm"] == arm]
        assert accuracy["mean"] == pytest.approx(np.mean(accuracy["values"]))
    for key in ("pruned_minus_full", "pruned_minus_random"):
        for metric in ("accuracy", "loss"):
            diff = result["differences"][key][metric]
            assert set(diff) == {"n", "mean", "std", "ci_low", "ci_high", "confidence"}
            assert diff["ci_low"] <= diff["mean"] <= diff["ci_high"]
    assert result["summary"].startswith("Pruning 32 of 80 training pairs")
    assert result["summary"].endswith(".") and "\n" not in result["summary"]


def test_differences_pair_runs_by_seed(head_verify) -> None:
    result, _, _, _ = head_verify
    by = {(r["seed"], r["arm"]): r for r in result["runs"]}
    expected = [by[(s, "pruned")]["loss"] - by[(s, "random")]["loss"] for s in (0, 1, 2)]
    assert result["differences"]["pruned_minus_random"]["loss"]["mean"] == pytest.approx(
        np.mean(expected)
    )
    assert result["differences"]["pruned_minus_random"]["loss"]["std"] == pytest.approx(
        np.std(expected, ddof=1)
    )


def test_head_mode_is_exact_and_removing_flips_helps(head_verify) -> None:
    result, _, train, evaluation = head_verify
    runs = result["runs"]
    # Head fits are convex and exact: full and pruned do not depend on the seed ...
    for arm in ("full", "pruned"):
        assert len({r["loss"] for r in runs if r["arm"] == arm}) == 1
    # ... the random arm does (a different removal per seed).
    assert len({r["loss"] for r in runs if r["arm"] == "random"}) == 3
    # Same recipe as the audit: the full arm is the audit's own model (a retrainer left at
    # head_features 'auto' has no validation pairs to choose on and keeps the head's input).
    audit = run_audit(
        train,
        evaluation,
        # weight_decay 0 retrains at the minimum L2, 1e-6; the audit must not pick another.
        tiny_config(mode="head", methods=["loss"], head_features="pooler", weight_decay=1e-6),
    )
    full = next(r for r in runs if r["arm"] == "full")
    assert full["loss"] == pytest.approx(audit.metrics.model_dump()["val_loss"], rel=1e-9)
    assert full["accuracy"] == audit.metrics.model_dump()["val_accuracy"]
    # 40% flipped labels: removing exactly them lowers the evaluation loss against both arms.
    assert result["differences"]["pruned_minus_full"]["loss"]["ci_high"] < 0
    assert result["differences"]["pruned_minus_random"]["loss"]["mean"] < 0


def test_progress_counts_retrains(head_verify) -> None:
    _, calls, _, _ = head_verify
    # The frozen features first (their own stage, so an ETA can time them), then the retrains.
    stages = [stage for stage, _, _ in calls]
    assert stages == sorted(stages) and set(stages) == {"features", "retraining"}
    for name in ("features", "retraining"):
        fractions = [f for stage, f, _ in calls if stage == name]
        assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    messages = [m for _, _, m in calls if m and m.startswith("seed")]
    assert messages[0] == "seed 1/3: full" and messages[-1] == "seed 3/3: random"
    # After the k-th retrain finishes the fraction is exactly k / 9.
    finished = [f for _, f, m in calls if m and m.startswith("seed")][1::2]
    assert finished == pytest.approx([k / 9 for k in range(1, 10)])


def test_head_retrainer_from_features_matches_for_pairs() -> None:
    train, _ = noisy(40, 0.2)
    evaluation = synthetic_pairs(16, 2)
    config = tiny_config(mode="head", methods=["loss"], weight_decay=1e-3)
    built = Retrainer.for_pairs(train, evaluation, config)
    assert built.features is not None and built.eval_features is not None
    reused = Retrainer.from_features(built.features, built.eval_features, config)
    keep = random_keep(40, 10, seed=3)
    np.testing.assert_array_equal(built.fit(keep, 0).margins, reused.fit(keep, 5).margins)
    # A flipped pair's feature difference is the negated one: flipping needs no new features.
    flipped_train = [flipped(p) for p in train[:4]] + train[4:]
    again = Retrainer.for_pairs(flipped_train, evaluation, config)
    np.testing.assert_allclose(again.features[:4], -built.features[:4])
    with pytest.raises(ValueError, match="mode='head'"):
        Retrainer.from_features(built.features, built.eval_features, tiny_config())


def test_lora_retrains_are_seeded_and_cancellable() -> None:
    train, flips = noisy(32, 0.25)
    evaluation = synthetic_pairs(12, 2)
    config = tiny_config(epochs=2, methods=["loss"])
    retrainer = Retrainer.for_pairs(train, evaluation, config)
    keep = ~flips
    first, again = retrainer.fit(keep, 0), retrainer.fit(keep, 0)
    np.testing.assert_array_equal(first.margins, again.margins)
    other = retrainer.fit(keep, 1)
    assert not np.allclose(first.margins, other.margins)  # the seed changes init and order
    assert first.n_train == 24

    polls = {"n": 0}

    def cancel_after_a_few() -> bool:
        polls["n"] += 1
        return polls["n"] > 3

    calls: list[tuple[str, float, str | None]] = []
    with pytest.raises(Cancelled):
        run_verify(
            train,
            evaluation,
            flips,
            config,
            seeds=[0, 1],
            progress=lambda *call: calls.append(call),
            should_cancel=cancel_after_a_few,
        )
    # Cancelled mid-retraining: that stage never completes (the frozen features' own stage may).
    assert calls and max(f for stage, f, _ in calls if stage == "retraining") < 1.0


def test_lora_verify_end_to_end() -> None:
    train, flips = noisy(32, 0.25)
    evaluation = synthetic_pairs(12, 2)
    result = run_verify(
        train, evaluation, flips, tiny_config(epochs=2, methods=["loss"]), seeds=[0, 1]
    )
    result = result.model_dump()
    full = [r["loss"] for r in result["runs"] if r["arm"] == "full"]
    assert full[0] != full[1]  # LoRA retrains vary with the seed
    assert result["differences"]["pruned_minus_full"]["accuracy"]["n"] == 2


@pytest.mark.parametrize(
    ("prune", "seeds", "evaluation", "message"),
    [
        ([True] * 3, [0], 12, "prune has 3 entries but there are 32 training pairs"),
        ([False] * 32, [0], 12, "removes no pair"),
        ([True] * 32, [0], 12, "leaving fewer than 2"),
        ([True] + [False] * 31, [], 12, "no seeds"),
        ([True] + [False] * 31, [1, 1], 12, "seeds repeat"),
        ([True] + [False] * 31, [0], 0, "evaluation set is empty"),
        ([2] + [0] * 31, [0], 12, "booleans"),
    ],
)
def test_bad_inputs_fail_before_any_training(prune, seeds, evaluation, message) -> None:
    train = synthetic_pairs(32, 1)
    with pytest.raises(ValueError, match=message):
        run_verify(train, synthetic_pairs(evaluation, 2), prune, tiny_config(), seeds)
