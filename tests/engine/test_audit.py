"""End-to-end audits on the tiny model: signs, shapes, determinism, cancellation, bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.factories import noisy_split, synthetic_pairs, tiny_config
from worker.influence.audit import STAGES, AuditResult, Cancelled, run_audit
from worker.influence.columns import METHODS, SCORE_COLUMNS
from worker.influence.data import Pair

ALL_METHODS = list(METHODS)


@pytest.fixture(scope="module")
def audit() -> tuple[AuditResult, list[int], list]:
    train, val, flips = noisy_split()
    stages: list[str] = []
    result = run_audit(
        train,
        val,
        tiny_config(
            methods=ALL_METHODS,
            damping=1.0,
            default_method="self_influence",
            crossfit_folds=2,
            crossfit_repeats=1,
        ),
        progress=lambda stage, fraction, message: stages.append(stage),
        keep_state=True,
    )
    return result, flips, stages


def ranks(harm: np.ndarray) -> np.ndarray:
    """0 = most harmful."""
    return np.argsort(np.argsort(-harm, kind="stable"), kind="stable")


def test_scores_have_the_contracted_columns(audit) -> None:
    result, _, _ = audit
    assert set(result.scores) <= set(SCORE_COLUMNS)
    assert {"harm", "loss", "margin", "harm_loss"} <= set(result.scores)
    for name, values in result.scores.items():
        assert values.dtype == np.float64 and values.shape == (80,), name
        assert np.all(np.isfinite(values)), name
    json.dumps(result.metrics.model_dump(mode="json"))  # the job runner stores them as JSON


def test_signs_follow_science_md(audit) -> None:
    scores = audit[0].scores
    np.testing.assert_array_equal(scores["harm_influence"], -scores["removal_effect_influence"])
    np.testing.assert_array_equal(scores["harm_datainf"], -scores["removal_effect_datainf"])
    np.testing.assert_allclose(scores["loss"], np.logaddexp(0, -scores["margin"]))
    np.testing.assert_array_equal(scores["harm"], scores["harm_self_influence"])
    assert np.all(scores["harm_self_influence"] > 0)


@pytest.mark.parametrize(
    "column",
    [
        "harm_loss",
        "harm_gradient_similarity",
        "harm_gradient_cosine",
        "harm_influence",
        "harm_self_influence",
        "harm_corrected_loss",
        "harm_tracin",
    ],
)
def test_flipped_pairs_rank_harmful(audit, column: str) -> None:
    result, flips, _ = audit
    assert result.metrics.model_dump()["val_accuracy"] > 0.9
    # 3 flips among 80 pairs: each must sit in the top 10%.
    assert ranks(result.scores[column])[flips].max() < 8, ranks(result.scores[column])[flips]


def test_corrected_loss_is_the_standardised_sum(audit) -> None:
    scores = audit[0].scores

    def z(x: np.ndarray) -> np.ndarray:
        return (x - x.mean()) / x.std()

    expected = z(scores["harm_loss"]) + z(scores["harm_self_influence"])
    np.testing.assert_allclose(scores["harm_corrected_loss"], expected, rtol=1e-12, atol=1e-12)
    assert abs(scores["harm_corrected_loss"].mean()) < 1e-9


def test_corrected_loss_alone_computes_its_self_influence() -> None:
    train, val, flips = noisy_split()
    config = tiny_config(methods=["corrected_loss"], damping=1.0, default_method="corrected_loss")
    scores = run_audit(train, val, config).scores
    assert "harm_self_influence" in scores
    np.testing.assert_array_equal(scores["harm"], scores["harm_corrected_loss"])
    assert ranks(scores["harm"])[flips].max() < 8


def test_metrics_report_diagnostics(audit) -> None:
    result, _, stages = audit
    metrics = result.metrics.model_dump()
    assert [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s] == list(STAGES)
    assert len(metrics["history"]) == 4
    expected = {"train_loss", "train_accuracy", "val_loss", "val_accuracy"}
    assert expected <= set(metrics["history"][0])
    influence = metrics["influence"]
    assert influence["damping_absolute"] == pytest.approx(
        influence["damping_relative"] * influence["curvature_scale"]
    )
    assert influence["relative_residual"] < 1e-4
    assert not influence["negative_curvature"]
    assert set(metrics["seconds"]) == set(STAGES)
    stage_peaks = metrics["stage_peak_memory_mb"]
    assert set(stage_peaks) == set(STAGES)
    rss = [stage_peaks[s]["cpu_rss_mb"] for s in STAGES]
    assert rss == sorted(rss) and rss[0] > 0  # the process high-water mark only grows
    assert metrics["peak_memory_mb"]["cpu_rss_mb"] == rss[-1]
    assert metrics["n_trainable_params"] == 2 * 2 * (8 * 32 * 2) + 33
    assert metrics["warnings"] == []


def test_duplicated_validation_pair_ranks_helpful() -> None:
    # A validation pair unlike any training pair, copied into training: only the copies teach the
    # model that preference, so removing them would raise validation loss the most.
    train, val, _ = noisy_split(flips=())
    odd = Pair("\n\nHuman: which fruit?\n\nAssistant:", " banana mango kiwi", " apple pear plum")
    val = [odd, *val[:4]]
    train = train + [odd] * 3
    result = run_audit(
        train, val, tiny_config(methods=["loss", "gradient_similarity", "influence"], damping=1.0)
    )
    for column in ("harm_influence", "harm_gradient_similarity"):
        most_helpful = ranks(-result.scores[column])
        assert most_helpful[-3:].max() < 0.1 * len(train), (column, most_helpful[-3:])
    assert np.all(result.scores["removal_effect_influence"][-3:] > 0)


def test_same_seed_same_scores_and_other_seed_differs() -> None:
    train, val = synthetic_pairs(24, 1), synthetic_pairs(8, 2)
    config = tiny_config(epochs=1, methods=["loss", "gradient_similarity", "influence"])
    first = run_audit(train, val, config).scores
    second = run_audit(train, val, config).scores
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
    other = run_audit(train, val, tiny_config(epochs=1, seed=1)).scores
    assert not np.array_equal(first["margin"], other["margin"])


def test_cancel_raises_cancelled() -> None:
    train, val = synthetic_pairs(24, 1), synthetic_pairs(8, 2)
    with pytest.raises(Cancelled):
        run_audit(train, val, tiny_config(epochs=1), should_cancel=lambda: True)


def test_low_validation_accuracy_warns() -> None:
    train, val = synthetic_pairs(16, 1), synthetic_pairs(8, 2)
    val = [type(p)(p.prompt, p.rejected, p.chosen) for p in val]  # every validation pair reversed
    result = run_audit(train, val, tiny_config(epochs=1, methods=["loss"]))
    trust = result.metrics.model_dump()["trust"]
    assert trust["is_evidence"] is False and trust["n_val"] == 8
    assert any("ranking is not evidence" in w for w in result.metrics.model_dump()["warnings"])


def test_empty_validation_set_is_rejected() -> None:
    with pytest.raises(ValueError, match="validation set has 0 pair"):
        run_audit(synthetic_pairs(8, 1), [], tiny_config())


def test_projection_keeps_rankings_close(audit) -> None:
    train, val, flips = noisy_split()
    projected = run_audit(
        train,
        val,
        tiny_config(
            methods=["loss", "gradient_similarity", "influence", "datainf", "self_influence"],
            damping=1.0,
            projection_dim=1024,
        ),
    )
    exact = audit[0].scores
    for column in ("harm_gradient_similarity", "harm_influence", "harm_self_influence"):
        corr = np.corrcoef(projected.scores[column], exact[column])[0, 1]
        assert corr > 0.9, (column, corr)
    assert projected.metrics.model_dump()["n_trainable_params"] == 2081


def test_exact_hessian_influence_runs_and_reports_its_solve() -> None:
    train, val, flips = noisy_split(n_train=40, n_val=12, flips=(3, 17))
    result = run_audit(
        train,
        val,
        tiny_config(
            methods=["loss", "influence"], hessian="exact", hvp_pairs=16, damping=1.0, cg_tol=1e-6
        ),
    )
    solve = result.metrics.model_dump()["influence"]
    if solve["negative_curvature"]:
        assert "negative curvature" in " ".join(result.metrics.model_dump()["warnings"])
    else:
        assert solve["hessian"] == "exact" and solve["solver"] == "cg"
        assert solve["relative_residual"] <= 1e-6 and solve["cg_iterations"] > 0
    assert ranks(result.scores["harm_influence"])[flips].max() < 0.15 * len(train)


def test_head_mode_scores_every_method_but_tracin() -> None:
    train, val, flips = noisy_split()
    methods = [m for m in ALL_METHODS if m != "tracin"]
    result = run_audit(
        train,
        val,
        tiny_config(
            mode="head", methods=methods, default_method="influence", head_features="pooler"
        ),
    )
    assert result.metrics.model_dump()["n_trainable_params"] == 32
    np.testing.assert_array_equal(result.scores["harm"], result.scores["harm_influence"])
    assert set(result.metrics.model_dump()["seconds"]) == set(STAGES)
    for column in ("harm_loss", "harm_influence", "harm_self_influence"):
        assert ranks(result.scores[column])[flips].max() < 8, column


def test_head_mode_picks_its_l2_on_validation_unless_given() -> None:
    from worker.influence.head import L2_GRID

    train, val, _ = noisy_split()
    config = tiny_config(mode="head", methods=["loss"], head_features="pooler")
    auto = run_audit(train, val, config).metrics.model_dump()
    search = auto["history"][0]["validation_loss_grid"]
    assert set(search) == {f"pooler|1|{v}" for v in L2_GRID}
    assert auto["head_l2"] == min(L2_GRID, key=lambda v: search[f"pooler|1|{v}"])
    assert auto["val_loss"] == pytest.approx(min(search.values()), rel=1e-9)
    given = run_audit(
        train, val, tiny_config(mode="head", methods=["loss"], weight_decay=0.05)
    ).metrics.model_dump()
    assert given["head_l2"] == 0.05
    assert all(key.endswith("|0.05") for key in given["history"][0]["validation_loss_grid"])


def test_head_mode_auto_picks_the_view_with_the_lowest_validation_loss() -> None:
    train, val, _ = noisy_split()
    metrics = run_audit(train, val, tiny_config(mode="head", methods=["loss"])).metrics.model_dump()
    grid = metrics["history"][0]["validation_loss_grid"]
    assert {key.split("|")[0] for key in grid} == {"pooler", "mean", "pooler+length", "mean+length"}
    best = min(grid, key=grid.__getitem__)
    view, weight, _ = best.split("|")
    assert (metrics["head_features"], metrics["head_length_weight"]) == (view, float(weight))
    assert metrics["val_loss"] == pytest.approx(grid[best], rel=1e-9)


def test_self_influence_sketches_when_too_large_to_factor(
    audit, monkeypatch: pytest.MonkeyPatch
) -> None:
    import worker.influence.scoring as scoring_module
    from worker.influence.audit import score_fitted

    result, flips, _ = audit
    monkeypatch.setattr(scoring_module, "DIRECT_MAX_DIM", 40)
    monkeypatch.setattr(scoring_module, "SELF_INFLUENCE_SKETCH", 512)
    config = tiny_config(
        methods=["loss", "self_influence"], default_method="self_influence", damping=1.0
    )
    scores, _, warnings = score_fitted(result.state, config)
    assert any("sketch" in w for w in warnings)
    exact = result.scores["harm_self_influence"]
    assert np.corrcoef(scores["harm_self_influence"], exact)[0, 1] > 0.9
    assert ranks(scores["harm_self_influence"])[flips].max() < 8


def test_checkpointing_and_bf16_training_on_the_cpu() -> None:
    """The GPU memory savers, exercised on the CPU: checkpointing recomputes activations and
    must train the same model; bf16 autocast trains a close one."""
    import torch

    from worker.influence.config import EngineConfig
    from worker.influence.model import RewardModel, add_lora, encode, load_backbone
    from worker.influence.train import evaluate_margins, train_reward_model

    pairs = [Pair(f"q{i}", "a long helpful answer " * (i % 5 + 1), f"no {i}") for i in range(24)]
    margins = {}
    for name, options in {
        "plain": {},
        "checkpointing": {"gradient_checkpointing": True},
        "bf16": {"precision": "bf16"},
    }.items():
        config = EngineConfig(model="tiny", epochs=2, batch_size=8, device="cpu", **options)
        backbone, tokenizer = load_backbone(config)
        rm = RewardModel(add_lora(backbone, config), torch.device("cpu"))
        enc = encode(tokenizer, pairs, 32)
        train_reward_model(rm, enc, enc, config)
        margins[name] = evaluate_margins(rm, enc)
    np.testing.assert_allclose(margins["checkpointing"], margins["plain"], rtol=1e-4, atol=1e-5)
    assert not np.allclose(margins["bf16"], margins["plain"], atol=1e-7)  # it did run in bf16
    np.testing.assert_allclose(margins["bf16"], margins["plain"], atol=0.05)
