"""Head mode: a frozen backbone's features (worker.influence.features), computed once, and a linear
reward head fitted exactly by Newton's method.

With features f(x, y) [h] the reward is r(x, y) = wᵀ f(x, y) (+ a bias that cancels in every
margin), so Δ_i = wᵀ z_i with z_i = f(x_i, y_c) − f(x_i, y_r): the margin gradient d_i is z_i,
the objective (1/n) Σ softplus(−wᵀ z_i) + (α/2)‖w‖² is convex, its Hessian equals the Gauss–Newton
matrix plus αI, and influence is exact up to the first-order expansion (Koh & Liang 2017).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from worker.influence.features import HEAD_FEATURES, LENGTH_COLUMNS, PairViews, column_scale

MIN_L2 = 1e-6
"""Smallest L2 penalty of the head, so the optimum is unique even on separable data."""

L2_GRID: tuple[float, ...] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
"""Head L2 penalties `select_l2` chooses from when the job leaves weight_decay at 0."""


def select_l2(
    z: Tensor, z_val: Tensor, grid: tuple[float, ...] = L2_GRID
) -> tuple[float, dict[str, float]]:
    """The L2 penalty in `grid` whose head has the lowest validation BT loss (never test).

    Returns the choice and the validation loss at every grid point. On hh-flip10 the smallest
    penalty overfits 384 MiniLM features (validation accuracy 0.543 against 0.607 at 1e-3).
    """
    losses: dict[str, float] = {}
    for l2 in grid:
        w, _ = fit_head(z, l2)
        losses[str(l2)] = float(torch.nn.functional.softplus(-(z_val.double() @ w)).mean())
    best = min(grid, key=lambda l2: losses[str(l2)])
    return best, losses


def fit_head(
    z: Tensor, l2: float, tol: float = 1e-10, max_iter: int = 100, start: Tensor | None = None
) -> tuple[Tensor, int]:
    """argmin_w (1/n) Σ softplus(−wᵀ z_i) + (α/2)‖w‖², α = max(l2, MIN_L2), by damped Newton.

    `z` is [n, h] (feature differences). Returns w [h] float64 and the Newton iterations taken;
    stops when the gradient norm is below `tol`. `start` (default 0) is where Newton begins: the
    optimum is unique, so a warm start changes the iterations, not the answer.
    """
    z = z.double()
    n, h = z.shape
    alpha = max(l2, MIN_L2)
    w = (
        torch.zeros(h, dtype=torch.float64, device=z.device)
        if start is None
        else start.double().clone().to(z.device)
    )

    def objective(w: Tensor) -> Tensor:
        return torch.nn.functional.softplus(-(z @ w)).mean() + 0.5 * alpha * (w @ w)

    for iteration in range(1, max_iter + 1):
        margins = z @ w
        prob = torch.sigmoid(margins)
        gradient = -(z.T @ (1.0 - prob)) / n + alpha * w
        if float(torch.linalg.vector_norm(gradient)) < tol:
            return w, iteration - 1
        hessian = (z.T * (prob * (1.0 - prob))) @ z / n
        hessian.diagonal().add_(alpha)
        step = torch.linalg.solve(hessian, gradient)
        current, t = objective(w), 1.0
        # Backtracking keeps Newton monotone far from the optimum.
        while t > 1e-8 and objective(w - t * step) > current - 1e-4 * t * (gradient @ step):
            t *= 0.5
        w = w - t * step
    return w, max_iter


LENGTH_WEIGHTS: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0, 100.0)
"""Multipliers of the (unit-RMS) length columns a '+length' view tries, chosen on validation loss:
a larger multiplier is a weaker L2 penalty on the length weights than on the 384 embedding ones."""


@dataclass
class HeadChoice:
    """The head's feature view, L2 penalty and length weight, all picked on validation loss."""

    view: str
    l2: float
    length_weight: float
    scale: Tensor  # per-column divisor (training RMS) times the length multiplier
    val_loss: float
    table: dict[str, float]  # "view|length_weight|l2" -> validation loss

    def apply(self, z: Tensor) -> Tensor:
        return z.double() / self.scale

    def metrics(self) -> dict:
        return {
            "head_features": self.view,
            "head_l2": self.l2,
            "head_length_weight": self.length_weight,
            "head_val_loss": self.val_loss,
        }


def choose_head(
    views_train: PairViews,
    views_val: PairViews,
    features: str,
    weight_decay: float,
    length_weight: float = 0.0,
) -> HeadChoice:
    """Pick the view (when `features` is 'auto'), the L2 penalty (when `weight_decay` is 0) and
    the length weight (for '+length' views, when `length_weight` is 0) with the lowest validation
    BT loss. Never looks at test data or at any detection figure."""
    names = [v for v in HEAD_FEATURES if v != "auto"] if features == "auto" else [features]
    best: HeadChoice | None = None
    table: dict[str, float] = {}
    for name in names:
        z, z_val = views_train[name], views_val[name]
        if not name.endswith("+length"):
            weights: tuple[float, ...] = (1.0,)
        else:
            weights = (length_weight,) if length_weight > 0 else LENGTH_WEIGHTS
        for weight in weights:
            scale = head_scale(z, name, weight)
            zs, zs_val = z.double() / scale, z_val.double() / scale
            if weight_decay > 0:
                grid: tuple[float, ...] = (max(weight_decay, MIN_L2),)
            else:
                grid = L2_GRID
            l2, losses = select_l2(zs, zs_val, grid)
            for key, value in losses.items():
                table[f"{name}|{weight:g}|{key}"] = value
            if best is None or losses[str(l2)] < best.val_loss:
                best = HeadChoice(name, l2, weight, scale, losses[str(l2)], table)
    assert best is not None
    return best


def head_scale(z: Tensor, view: str, length_weight: float = 1.0) -> Tensor:
    """Per-column divisor of a view: training RMS, over `length_weight` on its length columns."""
    scale = column_scale(z)
    if view.endswith("+length"):
        scale = scale.clone()
        scale[-LENGTH_COLUMNS:] /= length_weight
    return scale


def head_fold_fitter(z: Tensor, l2: float):
    """A cross-fitting fitter (see crossfit.Fitter) for the exact head on scaled features `z`."""

    def fit(positions: np.ndarray, member: int):
        w, _ = fit_head(z[torch.as_tensor(positions)], l2)
        return lambda: (z @ w).cpu().numpy()

    return fit
