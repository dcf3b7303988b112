"""Per-pair scores from margins and margin gradients, all oriented as in SCIENCE.md.

Inputs: training margins Δ [n] and margin gradients D [n, p]; validation margins [m] and margin
gradients [m, p]. With g_i = −(1 − p_i) d_i and g_val = (1/m) Σ_v g_v:
- loss ℓ_i = softplus(−Δ_i); harm_loss = ℓ_i.
- gradient similarity s_i = g_valᵀ g_i (H = I); harm = −s_i, and −cos(g_val, g_i).
- influence (Koh & Liang 2017) e_i = (1/n) g_valᵀ H_λ⁻¹ g_i = predicted change of validation loss
  when pair i is removed; harm = −e_i.
- DataInf (Kwon et al. 2024): e_i with H⁻¹ replaced per layer by its closed-form approximation.
- self-influence g_iᵀ H_λ⁻¹ g_i (Koh & Liang 2017, Sec. 5.4); harm = +value (outliers, mislabels).
- corrected loss: z(ℓ_i) + z(self-influence_i), the in-sample loss corrected for memorisation
  (a pair the model fits by memorising it has a low loss and a high self-influence); harm = +value.
- TracIn-CP (Pruthi et al. 2020): Σ_t η_t g_val(θ_t)ᵀ g_i(θ_t); harm = −value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from worker.influence.config import DampingReference
from worker.influence.curvature import (
    WOODBURY_MAX_N,
    CGResult,
    GaussNewton,
    MatVec,
    conjugate_gradient,
    sigmoid,
)

COSINE_MIN_NORM = 1e-4
"""Gradients shorter than this fraction of the longest have no meaningful direction."""

DATAINF_DAMPING = 0.1
"""λ_l = 0.1 · mean_i mean(g_il²), the per-layer damping of Kwon et al. (2024)."""


def bt_loss(margins: np.ndarray) -> np.ndarray:
    """softplus(−Δ), numerically stable."""
    return np.logaddexp(0.0, -margins)


def loss_scale(margins: np.ndarray, like: Tensor) -> Tensor:
    """c_i with g_i = c_i d_i: c_i = −(1 − σ(Δ_i)) = −σ(−Δ_i)."""
    return torch.as_tensor(-sigmoid(-margins), dtype=torch.float64, device=like.device)


def validation_gradient(val_margins: np.ndarray, val_grads: Tensor) -> Tensor:
    """g_val = ∇L_val = (1/m) Σ_v −(1 − p_v) d_v, [p] float64."""
    scale = loss_scale(val_margins, val_grads)
    return (val_grads.double().T @ scale) / len(val_margins)


@dataclass
class InfluenceSolve:
    """u = H_λ⁻¹ g_val and how it was obtained (reported in the job's metrics)."""

    ihvp: Tensor
    solver: str
    hessian: str
    damping_relative: float
    damping_absolute: float
    curvature_scale: float
    damping_reference: DampingReference = "mean_diagonal"
    iterations: int = 0
    relative_residual: float = 0.0
    negative_curvature: bool = False
    warnings: list[str] = field(default_factory=list)

    def metrics(self) -> dict[str, object]:
        return {
            "solver": self.solver,
            "hessian": self.hessian,
            "damping_relative": self.damping_relative,
            "damping_absolute": self.damping_absolute,
            "curvature_scale": self.curvature_scale,
            "damping_reference": self.damping_reference,
            "cg_iterations": self.iterations,
            "relative_residual": self.relative_residual,
            "negative_curvature": self.negative_curvature,
        }


def solve_influence(
    gn: GaussNewton,
    g_val: Tensor,
    damping: float,
    solver: str = "auto",
    cg_tol: float = 1e-4,
    cg_max_iter: int = 100,
    exact_matvec: MatVec | None = None,
    ridge: float = 0.0,
    reference: DampingReference = "mean_diagonal",
) -> InfluenceSolve:
    """u = (H + (ridge + λ) I)⁻¹ g_val with λ = damping · the curvature scale `reference`:
    G's mean diagonal trace(G)/p, or its largest eigenvalue σ₁ (`top_eigenvalue`).

    `ridge` is an L2 term that is part of the training objective (head mode); `exact_matvec`, when
    given, replaces G by the exact Hessian in CG. Negative curvature of the exact Hessian is
    reported and the solve falls back to Gauss–Newton rather than returning a meaningless u.
    """
    scale = gn.top_eigenvalue() if reference == "top_eigenvalue" else gn.mean_diagonal()
    if scale <= 0:
        scale = 1.0  # all gradients vanish; any positive λ gives u = g_val/λ
    lam = damping * scale
    shift = ridge + lam
    base: dict[str, Any] = {
        "damping_relative": damping,
        "damping_absolute": lam,
        "curvature_scale": scale,
        "damping_reference": reference,
    }
    if exact_matvec is not None:
        result = conjugate_gradient(
            lambda v: exact_matvec(v) + shift * v, g_val, cg_tol, cg_max_iter
        )
        if not result.negative_curvature:
            return _from_cg(result, "cg", "exact", base)
        fallback = solve_influence(
            gn, g_val, damping, solver, cg_tol, cg_max_iter, None, ridge, reference
        )
        fallback.hessian = "gauss_newton (exact Hessian had negative curvature)"
        fallback.negative_curvature = True
        fallback.warnings.append(
            f"the damped exact Hessian has negative curvature at the trained parameters "
            f"(damping {damping}); influence used the Gauss–Newton matrix instead. Raise "
            "damping or train longer to use the exact Hessian."
        )
        return fallback
    use_direct = solver == "woodbury" or (solver == "auto" and gn.n <= min(gn.dim, WOODBURY_MAX_N))
    if use_direct:
        inverse = gn.factor(shift)
        u = inverse.solve(g_val)
        residual = float(
            torch.linalg.vector_norm(gn.matvec(u) + shift * u - g_val)
            / torch.linalg.vector_norm(g_val).clamp_min(1e-300)
        )
        return InfluenceSolve(
            u,
            "woodbury" if inverse.dual else "cholesky",
            "gauss_newton",
            relative_residual=residual,
            **base,
        )
    result = conjugate_gradient(lambda v: gn.matvec(v) + shift * v, g_val, cg_tol, cg_max_iter)
    return _from_cg(result, "cg", "gauss_newton", base)


def _from_cg(result: CGResult, solver: str, hessian: str, base: dict) -> InfluenceSolve:
    solve = InfluenceSolve(
        result.solution,
        solver,
        hessian,
        iterations=result.iterations,
        relative_residual=result.relative_residual,
        negative_curvature=result.negative_curvature,
        **base,
    )
    if not result.converged and not result.negative_curvature:
        solve.warnings.append(
            f"CG stopped after {result.iterations} iterations at relative residual "
            f"{result.relative_residual:.2e} (asked {base['damping_relative']} relative damping); "
            "raise cg_max_iter or damping"
        )
    return solve


def influence_scores(margins: np.ndarray, grads: Tensor, ihvp: Tensor) -> np.ndarray:
    """e_i = (1/n) uᵀ g_i, the predicted change of validation loss if pair i is removed."""
    g_dot_u = loss_scale(margins, grads) * (grads.double() @ ihvp)
    return (g_dot_u / len(margins)).cpu().numpy()


def gradient_similarity(
    margins: np.ndarray, grads: Tensor, g_val: Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """(g_valᵀ g_i, cos(g_val, g_i)) for every training pair."""
    scale = loss_scale(margins, grads)
    dot = scale * (grads.double() @ g_val)
    norms = scale.abs() * torch.linalg.vector_norm(grads.double(), dim=1)
    cosine = dot / (norms * torch.linalg.vector_norm(g_val)).clamp_min(1e-300)
    # A pair whose two texts score alike through identical weights (identical responses) has a
    # gradient of pure rounding noise: it has no direction, so its cosine is 0, not noise.
    cosine[norms <= COSINE_MIN_NORM * norms.max()] = 0.0
    return dot.cpu().numpy(), cosine.cpu().numpy()


def datainf_scores(
    margins: np.ndarray, grads: Tensor, g_val: Tensor, blocks: list[tuple[str, slice]]
) -> np.ndarray:
    """DataInf e_i (Kwon et al. 2024, eq. 5), summed over layers l:

        H_l⁻¹ v ≈ (1/(nλ_l)) Σ_j [v − (g_jlᵀ v)/(λ_l + ‖g_jl‖²) g_jl],  λ_l = 0.1·mean_j mean(g_jl²)
        e_i = (1/n) Σ_l (H_l⁻¹ g_val,l)ᵀ g_il.

    The validation-side product is formed once per layer, so the cost is two passes over D.
    """
    n = len(margins)
    scale = loss_scale(margins, grads)
    total = torch.zeros(n, dtype=torch.float64, device=grads.device)
    for _, block in blocks:
        g = grads[:, block].double() * scale[:, None]  # [n, p_l]
        v = g_val[block]
        norms = (g**2).sum(dim=1)
        lam = DATAINF_DAMPING * float(norms.mean()) / g.shape[1]
        if lam <= 0:
            continue
        coef = (g @ v) / (lam + norms)
        ihvp = (v - (g.T @ coef) / n) / lam
        total += g @ ihvp
    return (total / n).cpu().numpy()


def self_influence(
    gn: GaussNewton, margins: np.ndarray, grads: Tensor, damping: float, ridge: float = 0.0
) -> np.ndarray:
    """g_iᵀ (G + (ridge + λ)I)⁻¹ g_i for every training pair, exactly, by one factorisation of the
    Gauss–Newton system in min(n, p) dimensions (per-pair CG solves would cost n solves)."""
    scale = gn.mean_diagonal()
    lam = damping * (scale if scale > 0 else 1.0)
    inverse = gn.factor(ridge + lam)
    return inverse.quadratic(loss_scale(margins, grads)).cpu().numpy()


def standardise(values: np.ndarray) -> np.ndarray:
    """(x − mean)/std; a constant column becomes zeros rather than NaN."""
    values = np.asarray(values, dtype=np.float64)
    spread = values.std()
    return (values - values.mean()) / spread if spread > 0 else np.zeros_like(values)


def corrected_loss(loss: np.ndarray, self_influence_values: np.ndarray) -> np.ndarray:
    """z(ℓ_i) + z(g_iᵀH_λ⁻¹g_i): loss and self-influence on one scale, summed.

    In-sample loss understates how badly the model fits a pair it has memorised, and self-influence
    is large exactly where one pair moved the model (ANCHORS.md: loss 0.649, loss + EK-FAC
    self-influence 0.691 AUROC). Standardising makes the sum free of λ's overall scale.
    """
    return standardise(loss) + standardise(self_influence_values)


def tracin_term(
    margins: np.ndarray,
    grads: Tensor,
    val_margins: np.ndarray,
    val_grads: Tensor,
    learning_rate: float,
) -> np.ndarray:
    """One checkpoint's term η_t g_val(θ_t)ᵀ g_i(θ_t) of TracIn-CP."""
    g_val = validation_gradient(val_margins, val_grads)
    dot = loss_scale(margins, grads) * (grads.double() @ g_val)
    return (learning_rate * dot).cpu().numpy()


def leave_one_out_loss(
    gn: GaussNewton, margins: np.ndarray, damping: float, ridge: float = 0.0
) -> np.ndarray:
    """ℓ_i under the model refitted without pair i, by one Newton step from θ* (Cook 1977's
    leverage correction, applied to the Bradley–Terry Gauss–Newton matrix).

    The leave-one-out objective L − ℓ_i/n has gradient −g_i/n at θ* and curvature
    H_λ − (w_i/n) d_i d_iᵀ, so with q_i = d_iᵀ H_λ⁻¹ d_i and leverage h_i = w_i q_i / n (Sherman–
    Morrison) the margin moves to Δ_i^(−i) = Δ_i − (1 − p_i) q_i / (n (1 − h_i)). In-sample loss is
    biased low by memorisation; this removes the bias pair by pair. Returns softplus(−Δ^(−i)) [n].
    """
    scale = gn.mean_diagonal()
    lam = damping * (scale if scale > 0 else 1.0)
    inverse = gn.factor(ridge + lam)
    ones = torch.ones(gn.n, dtype=torch.float64, device=gn.D.device)
    q = inverse.quadratic(ones).cpu().numpy()
    prob = sigmoid(margins)
    leverage = np.clip(prob * (1.0 - prob) * q / gn.n, 0.0, 1.0 - 1e-12)
    loo_margins = margins - (1.0 - prob) * q / (gn.n * (1.0 - leverage))
    return bt_loss(loo_margins)


def length_difference(pairs) -> np.ndarray:
    """Characters of chosen minus characters of rejected, per pair [n] float64."""
    return np.array([len(p.chosen) - len(p.rejected) for p in pairs], dtype=np.float64)


def length_harm(length_diff: np.ndarray, val_length_diff: np.ndarray) -> tuple[np.ndarray, int]:
    """The model-free length heuristic (ANCHORS.md), its direction picked on validation.

    d = +1 when chosen answers are longer on average in the validation pairs (helpful-base), −1
    when shorter (harmless-base's refusals, LLMBar's padded wrong answers); harm = −d·(len(chosen)
    − len(rejected)): a pair whose chosen answer breaks the validation set's habit is suspect.
    Returns (harm [n], d). Every detection claim must beat this baseline.
    """
    direction = -1 if float(np.mean(val_length_diff)) < 0 else 1
    return -direction * np.asarray(length_diff, dtype=np.float64), direction
