"""Exactness of the engine's linear algebra against dense references on tiny seeded models."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from tests.factories import noisy_split, synthetic_pairs, tiny_config
from worker.influence.audit import run_audit
from worker.influence.curvature import GaussNewton, conjugate_gradient, exact_hvp
from worker.influence.gradients import (
    per_pair_margin_gradients,
    per_pair_margin_gradients_loop,
)
from worker.influence.head import fit_head
from worker.influence.model import RewardModel, add_lora, encode, load_backbone
from worker.influence.scores import (
    corrected_loss,
    datainf_scores,
    loss_scale,
    self_influence,
    solve_influence,
    standardise,
)
from worker.influence.train import bt_loss, train_reward_model


@pytest.fixture(scope="module")
def small_model() -> tuple[RewardModel, object]:
    """A tiny LoRA model (rank 1 on `query`, 161 trainable parameters), trained one epoch."""
    config = tiny_config(lora_r=1, target_modules=["query"], epochs=1)
    backbone, tokenizer = load_backbone(config)
    rm = RewardModel(add_lora(backbone, config), torch.device("cpu"))
    train, val = synthetic_pairs(24, 1), synthetic_pairs(8, 2)
    train_enc = encode(tokenizer, train, 48)
    train_reward_model(rm, train_enc, encode(tokenizer, val, 48), config)
    return rm, train_enc


def as_double(rm: RewardModel) -> RewardModel:
    """A float64 copy: exactness tests compare algorithms, not fp32 summation orders."""
    return RewardModel(copy.deepcopy(rm.module).double(), rm.device)


def test_lora_targets_and_trainable_count(small_model) -> None:
    rm, _ = small_model
    assert rm.n_params == 2 * (32 + 32) + 33
    assert any("lora_A" in n for n in rm.names) and any("classifier" in n for n in rm.names)


def test_batched_gradients_equal_batch_size_one_loop(small_model) -> None:
    rm, enc = small_model
    # In float64 the comparison checks the vectorisation itself, not fp32 summation order.
    rm64 = as_double(rm)
    margins, grads = per_pair_margin_gradients(rm64, enc, chunk=5)
    ref_margins, ref_grads = per_pair_margin_gradients_loop(rm64, enc)
    np.testing.assert_allclose(margins, ref_margins, rtol=1e-10)
    assert float((grads - ref_grads).abs().max() / ref_grads.abs().max()) < 1e-5
    # The fp32 engine path agrees with the fp32 loop to fp32 rounding.
    margins32, grads32 = per_pair_margin_gradients(rm, enc, chunk=5)
    ref32 = per_pair_margin_gradients_loop(rm, enc)[1]
    assert float((grads32 - ref32).norm() / ref32.norm()) < 1e-4


def test_both_forwards_of_a_pair_count(small_model) -> None:
    """d_i = ∇r(chosen) − ∇r(rejected), each taken through transformers' own forward."""
    rm, enc = small_model
    rm = as_double(rm)
    _, grads = per_pair_margin_gradients(rm, enc, chunk=4)
    params = list(rm.params.values())
    for i in (0, 5):
        parts = []
        for k in (0, 1):
            tokens = torch.tensor([enc.ids[i][k]])
            mask = torch.ones_like(tokens)
            reward = rm.module(input_ids=tokens, attention_mask=mask).logits[0, 0]
            parts.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(reward, params)]))
        expected = parts[0] - parts[1]
        assert float((grads[i] - expected).abs().max() / expected.abs().max()) < 1e-5


def _flat_loss(rm: RewardModel, enc, index: list[int]):
    ids, mask = enc.batch(index, rm.device)
    theta = rm.detached_params()

    def loss(flat: torch.Tensor) -> torch.Tensor:
        params = {**theta, **rm.unflatten(flat)}
        return bt_loss(rm.margins(params, ids, mask)).mean()

    return loss, rm.flatten(theta)


def test_exact_hvp_equals_dense_hessian(small_model) -> None:
    rm, enc = small_model
    index = list(range(6))
    loss, theta = _flat_loss(rm, enc, index)
    dense = torch.autograd.functional.hessian(loss, theta, vectorize=True)
    v = torch.randn(rm.n_params, generator=torch.Generator().manual_seed(0))
    hv = exact_hvp(rm, enc, index, chunk=3)(v)
    expected = dense.double() @ v.double()
    assert float((hv - expected).norm() / expected.norm()) < 1e-5


def test_gauss_newton_product_equals_dense_matrix(small_model) -> None:
    rm, enc = small_model
    margins, grads = per_pair_margin_gradients_loop(rm, enc)
    p = torch.sigmoid(torch.as_tensor(margins))
    dense = (grads.double().T * (p * (1 - p))) @ grads.double() / len(margins)
    gn = GaussNewton(grads, margins)
    v = torch.randn(rm.n_params, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert float((gn.matvec(v) - dense @ v).norm() / (dense @ v).norm()) < 1e-5
    assert gn.mean_diagonal() == pytest.approx(float(dense.diagonal().mean()), rel=1e-5)


def _spd_system(n: int, p: int, seed: int) -> tuple[GaussNewton, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    grads = torch.randn(n, p, generator=g, dtype=torch.float64)
    margins = np.random.default_rng(seed).normal(size=n)
    return GaussNewton(grads, margins), torch.randn(p, generator=g, dtype=torch.float64)


@pytest.mark.parametrize(("n", "p"), [(30, 80), (120, 40)])
def test_cg_and_direct_solves_equal_dense_solve(n: int, p: int) -> None:
    gn, b = _spd_system(n, p, seed=n)
    shift = 0.05 * gn.mean_diagonal()
    matrix = gn.dense() + shift * torch.eye(p, dtype=torch.float64)
    expected = torch.linalg.solve(matrix, b)
    result = conjugate_gradient(lambda v: gn.matvec(v) + shift * v, b, tol=1e-8, max_iter=500)
    assert result.converged and result.relative_residual <= 1e-8
    assert float((matrix @ result.solution - b).norm() / b.norm()) <= 1e-8
    assert float((result.solution - expected).norm() / expected.norm()) < 1e-6
    direct = gn.factor(shift)
    assert direct.dual == (n <= p)
    assert float((direct.solve(b) - expected).norm() / expected.norm()) < 1e-8
    scale = torch.as_tensor(np.random.default_rng(0).normal(size=n))
    rows = gn.D * scale[:, None]
    dense_quad = (rows * torch.linalg.solve(matrix, rows.T).T).sum(dim=1)
    np.testing.assert_allclose(direct.quadratic(scale), dense_quad, rtol=1e-8)


@pytest.mark.parametrize(("n", "p", "dual"), [(30, 80, True), (120, 40, False), (50, 70, False)])
def test_top_eigenvalue_is_the_dense_matrix_largest(
    n: int, p: int, dual: bool, monkeypatch
) -> None:
    """σ₁ (the influence damping's scale) from the Woodbury solve's dual spectrum, or by Lanczos
    where that solve is not used (n > p, or more pairs than it takes): each equals the dense
    matrix's largest eigenvalue to rounding."""
    import worker.influence.curvature as curvature

    if n == 50:
        monkeypatch.setattr(curvature, "WOODBURY_MAX_N", 16)  # n ≤ p, but too many for Woodbury
    gn, _ = _spd_system(n, p, seed=p)
    expected = float(torch.linalg.eigvalsh(gn.dense())[-1])
    assert gn.top_eigenvalue() == pytest.approx(expected, rel=1e-9)
    assert (gn._dual is not None) == dual


def test_influence_damping_is_relative_to_the_top_eigenvalue_and_spares_the_factor() -> None:
    """The sharded reduction's u takes λ = influence_damping · σ₁; its Cholesky factor (self-
    influence, group) keeps λ = damping · trace(G)/p; the in-memory solve agrees on u."""
    from worker.influence.stream import Reduction

    gn, g_val = _spd_system(50, 30, seed=7)
    dense = gn.dense()
    top = float(torch.linalg.eigvalsh(dense)[-1])
    reduction = Reduction(30, [slice(0, 30)], 50, np.zeros(1), g_val.numpy(), 30)
    reduction.gauss_newton = dense.numpy()
    solution = reduction.solve(1.0, (0.01, "top_eigenvalue"))
    lam_inf, lam_self = 0.01 * top, float(dense.diagonal().mean())
    eye = torch.eye(30, dtype=torch.float64)
    expected_u = torch.linalg.solve(dense + lam_inf * eye, g_val)
    np.testing.assert_allclose(solution.u, expected_u.numpy(), rtol=1e-9)
    np.testing.assert_allclose(
        solution.factor @ solution.factor.T, (dense + lam_self * eye).numpy(), rtol=1e-9
    )
    assert solution.metrics["damping_absolute"] == pytest.approx(lam_inf, rel=1e-9)
    assert solution.metrics["self_influence_damping_absolute"] == pytest.approx(lam_self)
    assert solution.metrics["damping_reference"] == "top_eigenvalue"
    solve = solve_influence(gn, g_val, 0.01, "woodbury", reference="top_eigenvalue")
    np.testing.assert_allclose(solve.ihvp.numpy(), expected_u.numpy(), rtol=1e-8)
    assert solve.metrics()["curvature_scale"] == pytest.approx(top, rel=1e-9)
    same = reduction.solve(1.0)  # no separate rule: one λ for both
    np.testing.assert_allclose(
        same.u, torch.linalg.solve(dense + lam_self * eye, g_val).numpy(), rtol=1e-9
    )


def test_cg_reports_negative_curvature() -> None:
    matrix = torch.diag(torch.tensor([2.0, 1.0, -0.5], dtype=torch.float64))
    result = conjugate_gradient(lambda v: matrix @ v, torch.ones(3, dtype=torch.float64))
    assert result.negative_curvature and not result.converged


def test_self_influence_and_datainf_match_their_formulas(small_model) -> None:
    rm, enc = small_model
    margins, grads = per_pair_margin_gradients(rm, enc)
    grads = grads.double()
    gn = GaussNewton(grads, margins)
    lam = 0.3 * gn.mean_diagonal()
    g = grads * loss_scale(margins, grads)[:, None]
    matrix = gn.dense() + lam * torch.eye(rm.n_params, dtype=torch.float64)
    expected = (g * torch.linalg.solve(matrix, g.T).T).sum(dim=1)
    np.testing.assert_allclose(self_influence(gn, margins, grads, 0.3), expected, rtol=1e-6)

    g_val = g[:4].mean(dim=0)
    n = len(margins)
    expected_datainf = torch.zeros(n, dtype=torch.float64)
    for _, block in rm.blocks():
        gl = g[:, block]
        lam_l = 0.1 * float((gl**2).mean())
        inv_v = sum(
            g_val[block] - (gl[j] @ g_val[block]) / (lam_l + gl[j] @ gl[j]) * gl[j]
            for j in range(n)
        ) / (n * lam_l)
        expected_datainf += gl @ inv_v / n
    np.testing.assert_allclose(
        datainf_scores(margins, grads, g_val, rm.blocks()), expected_datainf, rtol=1e-6
    )


def test_head_mode_influence_matches_leave_one_out_retraining() -> None:
    """Convex case: removal_effect_influence vs actually refitting the head without each pair."""
    train, val, _ = noisy_split(n_train=40, n_val=16, flips=(3, 17))
    l2 = 1e-2
    result = run_audit(
        train,
        val,
        tiny_config(
            mode="head",
            weight_decay=l2,
            damping=1e-9,
            methods=["loss", "influence"],
            head_features="pooler",
        ),
        keep_state=True,
    )
    state = result.state
    z, z_val = state.grads.double(), state.val_grads.double()

    def val_loss(w: torch.Tensor) -> float:
        return float(torch.nn.functional.softplus(-(z_val @ w)).mean())

    n = len(z)
    full = val_loss(fit_head(z, l2)[0])
    actual = []
    keep = torch.ones(n, dtype=torch.bool)
    for i in range(n):
        keep[i] = False
        # Removal is ε = −1/n on pair i, the others keep weight 1/n: the mean over n − 1 pairs
        # with the L2 term scaled by n/(n − 1) has the same minimiser.
        actual.append(val_loss(fit_head(z[keep], l2 * n / (n - 1))[0]) - full)
        keep[i] = True
    predicted = result.scores["removal_effect_influence"]
    assert len(actual) >= 30
    assert spearmanr(predicted, actual).statistic >= 0.95
    np.testing.assert_allclose(predicted, actual, rtol=0.5, atol=0.1 * np.abs(actual).max())


def test_corrected_loss_is_scale_free_and_survives_constant_columns() -> None:
    loss = np.array([0.2, 0.7, 1.5, 0.1])
    influence = np.array([3.0, 1.0, 9.0, 2.0])
    combined = corrected_loss(loss, influence)
    # Scaling either score (e.g. a different damping scale) changes nothing.
    np.testing.assert_allclose(corrected_loss(10 * loss, 1e-3 * influence), combined)
    assert np.argmax(combined) == 2
    np.testing.assert_array_equal(standardise(np.full(4, 7.0)), np.zeros(4))
    np.testing.assert_allclose(corrected_loss(loss, np.ones(4)), standardise(loss))
