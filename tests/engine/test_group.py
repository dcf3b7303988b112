"""Interaction-aware group influence and greedy pruning (worker/influence/group.py)."""

from __future__ import annotations

import itertools
import json
import sys

import numpy as np
import pytest
import torch

from worker.influence.curvature import GaussNewton
from worker.influence.group import GroupInfluence, budget_count, candidate_set, group_influence
from worker.influence.head import fit_head


def _convex_case(n: int = 30, m: int = 12, h: int = 5, seed: int = 0):
    """A logistic reward head on random feature differences, fitted exactly."""
    gen = torch.Generator().manual_seed(seed)
    truth = torch.randn(h, generator=gen, dtype=torch.float64)
    z = torch.randn(n, h, generator=gen, dtype=torch.float64)
    z[: n // 5] *= -1  # some pairs disagree with the rest
    z += 0.3 * truth
    z_val = torch.randn(m, h, generator=gen, dtype=torch.float64) + 0.3 * truth
    l2 = 1e-2
    w, _ = fit_head(z, l2)
    return z, z_val, w, l2


def _group(z, z_val, w, l2, candidates=None, n_cand=None):
    margins = (z @ w).numpy()
    val_margins = (z_val @ w).numpy()
    inverse = GaussNewton(z, margins).factor(l2)  # the objective's exact Hessian: G + αI
    if candidates is None:
        candidates = np.arange(len(z) if n_cand is None else n_cand)
    return group_influence(inverse.solve, z, margins, z_val, val_margins, candidates)


def test_interaction_aware_estimate_equals_the_exact_second_order_taylor_value() -> None:
    z, z_val, w, l2 = _convex_case()
    n = len(z)
    group = _group(z, z_val, w, l2)

    def objective(v):
        return torch.nn.functional.softplus(-(z @ v)).mean() + 0.5 * l2 * (v @ v)

    def val_loss(v):
        return torch.nn.functional.softplus(-(z_val @ v)).mean()

    hessian = torch.autograd.functional.hessian(objective, w)
    grad_f = torch.autograd.functional.jacobian(val_loss, w)
    hess_f = torch.autograd.functional.hessian(val_loss, w)
    prob = torch.sigmoid(z @ w)
    loss_grads = -(1 - prob)[:, None] * z  # ∇ℓ_i at w*
    shifts = torch.linalg.solve(hessian, loss_grads.T).T / n  # Δθ_i = (1/n) H⁻¹ g_i
    rng = np.random.default_rng(0)
    for size in (1, 2, 5, 12, 30):
        members = rng.choice(n, size, replace=False)
        delta = shifts[members].sum(dim=0)
        taylor = float(grad_f @ delta + 0.5 * delta @ hess_f @ delta)
        first, interaction = group.estimate(members)
        assert first == pytest.approx(float(grad_f @ delta), rel=1e-6, abs=1e-12)
        assert interaction == pytest.approx(taylor, rel=1e-6, abs=1e-12)
    # κ itself is the dense Δθᵀ H_f Δθ, and symmetric.
    dense = (shifts @ hess_f @ shifts.T).numpy()
    kappa = group.kappa()
    np.testing.assert_allclose(kappa, dense, rtol=1e-6, atol=1e-12 * np.abs(dense).max())
    np.testing.assert_allclose(kappa, kappa.T, rtol=0, atol=1e-15 * np.abs(kappa).max())


def test_group_effects_are_the_influence_methods_removal_effects() -> None:
    from worker.influence.scores import influence_scores, validation_gradient

    z, z_val, w, l2 = _convex_case(seed=3)
    margins = (z @ w).numpy()
    inverse = GaussNewton(z, margins).factor(l2)
    u = inverse.solve(validation_gradient((z_val @ w).numpy(), z_val))
    group = _group(z, z_val, w, l2)
    np.testing.assert_allclose(group.effect, influence_scores(margins, z, u), rtol=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_greedy_equals_brute_force_over_small_subsets(seed: int) -> None:
    z, z_val, w, l2 = _convex_case(seed=seed)
    group = _group(z, z_val, w, l2, n_cand=8)
    greedy = group.greedy(3)
    chosen: list[int] = []
    for step in range(3):
        # Brute force: every way to extend the current set by one candidate, valued by Δf itself.
        values = {j: group.estimate([*chosen, j])[1] for j in range(group.size) if j not in chosen}
        best = min(values, key=values.get)
        assert greedy.order[step] == best
        chosen.append(best)
        assert greedy.estimates[step] == pytest.approx(group.estimate(chosen)[1], rel=1e-9)
    # Over all subsets of size ≤ 3 of the 8: the greedy prefix of size 1 is the global optimum,
    # and no size-k greedy prefix is beaten by more than the best subset of that size.
    for k in (1, 2, 3):
        best = min(group.estimate(s)[1] for s in itertools.combinations(range(8), k))
        assert greedy.estimates[k - 1] >= best - 1e-15
        if k == 1:
            assert greedy.estimates[0] == pytest.approx(best, rel=1e-12)


def test_without_validation_curvature_greedy_is_the_first_order_order() -> None:
    rng = np.random.default_rng(1)
    effect = rng.normal(size=20)
    group = GroupInfluence(np.arange(20), effect, np.zeros((6, 20)), 0.0)
    np.testing.assert_array_equal(group.greedy().order, np.argsort(effect))
    np.testing.assert_array_equal(group.greedy(7).order, group.first_order(7))


def test_duplicates_are_redundant_and_greedy_skips_copies() -> None:
    """Five copies of one harmful pair: their κ are positive (redundant) and greedy, unlike the
    first-order top-K, does not spend its whole budget on them."""
    z, z_val, w, l2 = _convex_case(n=40, seed=2)
    z = torch.cat([z, -z[:1].repeat(4, 1)])  # four flipped copies of pair 0, and pair 0 flipped
    z[0] = -z[0]
    w, _ = fit_head(z, l2)
    group = _group(z, z_val, w, l2)
    copies = [0, *range(40, 44)]
    kappa = group.kappa(copies)[:, copies]
    assert (kappa > 0).all()
    top = group.first_order(5)
    greedy = group.greedy(5).order
    assert len(set(top) & set(copies)) >= len(set(greedy) & set(copies))
    first, interaction = group.estimate(copies)
    assert interaction > first  # removing all five does less than the sum of their effects


def test_strongest_interactions_match_the_dense_matrix() -> None:
    z, z_val, w, l2 = _convex_case(seed=4)
    group = _group(z, z_val, w, l2)
    kappa = group.kappa()
    strongest = group.strongest(top=3, block=7)
    for i, partners in enumerate(strongest):
        row = kappa[i].copy()
        row[i] = 0
        expected = np.argsort(-np.abs(row), kind="stable")[:3]
        assert [p for p, _ in partners] == list(expected)
        assert [v for _, v in partners] == pytest.approx(list(row[expected]))


def test_candidates_and_budgets() -> None:
    effect = np.array([0.3, -2.0, 0.1, -1.0, -0.5])
    np.testing.assert_array_equal(candidate_set(effect, 2), [1, 3])
    np.testing.assert_array_equal(candidate_set(effect, 10), np.arange(5))
    assert budget_count(0.1, 1000) == 100
    assert budget_count(25, 1000) == 25
    assert budget_count(5000, 1000) == 1000
    with pytest.raises(ValueError, match="prune_budget"):
        budget_count(0, 10)


def test_group_method_in_head_and_lora_audits() -> None:
    """The `group` method through run_audit: the greedy order covers the candidates, the budget
    and the interactions are reported, and duplicated flipped pairs are spread out."""
    from tests.factories import noisy_split, tiny_config
    from worker.influence.audit import run_audit

    train, val, _ = noisy_split(n_train=60, n_val=20, flips=(3, 17))
    train = train + [train[3]] * 3  # a flipped pair present four times
    for mode, candidates, projection in (("head", 100, None), ("lora", 30, None), ("lora", 30, 64)):
        config = tiny_config(
            mode=mode,
            projection_dim=projection,
            epochs=2,
            methods=["loss", "influence", "group"],
            default_method="group",
            group_candidates=candidates,
            prune_budget=0.1,
            damping=1e-3,
        )
        result = run_audit(train, val, config)
        scores, metrics = result.scores, result.metrics.model_dump()["group"]
        n = len(train)
        m = min(candidates, n)
        order = scores["group_order"]
        assert np.isfinite(order).sum() == m == metrics["candidates"]
        np.testing.assert_array_equal(np.sort(order[np.isfinite(order)]), np.arange(1, m + 1))
        assert metrics["budget"] == round(0.1 * n)
        assert np.array_equal(scores["harm"], scores["harm_group"])
        for key in ("estimate_greedy", "estimate_top_k"):
            assert set(metrics[key]) == {"first_order", "interaction_aware"}
        assert result.interactions and all(i != j for i, j, _ in result.interactions)
        # Copies of one pair are redundant: every stored κ between two of them is positive.
        copies = {3, 60, 61, 62}
        between = [k for i, j, k in result.interactions if i in copies and j in copies]
        assert between and all(k > 0 for k in between)
        if mode == "head":
            # Candidates are chosen by first-order influence: every non-candidate is less harmful.
            effect = scores["removal_effect_influence"]
            inside = np.isfinite(order)
            if (~inside).any():
                assert effect[inside].max() <= effect[~inside].min() + 1e-12


def test_interaction_aware_tracks_leave_group_out_retraining_better() -> None:
    """The fast version of bench/group_fidelity.py: exact refits without random groups of a
    weakly regularised head; the interaction-aware estimate is closer than the plain sum."""
    from scipy.stats import spearmanr

    z, z_val, w, _ = _convex_case(n=80, m=30, h=6, seed=5)
    l2 = 1e-3
    w, _ = fit_head(z, l2)
    group = _group(z, z_val, w, l2)
    n = len(z)

    def val_loss(v):
        return float(torch.nn.functional.softplus(-(z_val @ v)).mean())

    full = val_loss(w)
    rng = np.random.default_rng(0)
    actual, first, inter = [], [], []
    for _ in range(60):
        members = rng.choice(n, 8, replace=False)
        keep = np.ones(n, dtype=bool)
        keep[members] = False
        refit, _ = fit_head(z[torch.as_tensor(keep)], l2 * n / (n - 8), start=w)
        actual.append(val_loss(refit) - full)
        f, i = group.estimate(members)
        first.append(f)
        inter.append(i)
    actual, first, inter = map(np.asarray, (actual, first, inter))
    assert spearmanr(actual, inter).statistic >= 0.9
    assert np.abs(actual - inter).mean() < np.abs(actual - first).mean()
    assert spearmanr(actual, inter).statistic >= spearmanr(actual, first).statistic


def test_fidelity_bench_quick_writes_its_tables(tmp_path) -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "group_fidelity.py"
    spec = importlib.util.spec_from_file_location("group_fidelity", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules["group_fidelity"] = bench  # dataclasses look their module up there
    spec.loader.exec_module(bench)
    args = [
        "--quick",
        "--datasets",
        "harmless-base",
        "--out",
        str(tmp_path),
        "--cache",
        str(tmp_path),
    ]
    assert bench.main(args) == 0
    result = json.loads((tmp_path / "fidelity-quick.json").read_text())
    rows = result["fidelity"]["harmless-base"]
    assert {(r["kind"], r["size"]) for r in rows} == {
        (k, s) for k in ("random", "neighbours", "duplicates") for s in (3, 8)
    }
    for row in rows:
        assert row["groups"] == 30
        low, high = row["spearman_interaction"]["ci_low"], row["spearman_interaction"]["ci_high"]
        assert low <= row["spearman_interaction"]["value"] <= high
    assert len(result["pruning"]) == 2  # 20% flips, plain and duplicated
    for cell in (c for row in result["pruning"] for c in row["cells"]):
        assert cell["greedy"]["distinct_flips"] <= cell["budget"]
    assert "| harmless-base | random | 3 |" in (tmp_path / "fidelity-quick.md").read_text()
    assert (tmp_path / "fidelity-quick.png").stat().st_size > 10_000
