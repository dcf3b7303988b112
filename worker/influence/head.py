"""Head mode: a frozen backbone's pooled features, computed once, and a linear reward head fitted
exactly by Newton's method.

With features f(x, y) [h] the reward is r(x, y) = wᵀ f(x, y) (+ a bias that cancels in every
margin), so Δ_i = wᵀ z_i with z_i = f(x_i, y_c) − f(x_i, y_r): the margin gradient d_i is z_i,
the objective (1/n) Σ softplus(−wᵀ z_i) + (α/2)‖w‖² is convex, its Hessian equals the Gauss–Newton
matrix plus αI, and influence is exact up to the first-order expansion (Koh & Liang 2017).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from worker.influence.model import Encoded, head_module_name
from worker.influence.train import ShouldCancel, check_cancel

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


@torch.no_grad()
def pooled_features(
    model: torch.nn.Module,
    enc: Encoded,
    device: torch.device,
    batch_size: int = 32,
    progress: Callable[[float], None] | None = None,
    should_cancel: ShouldCancel | None = None,
) -> tuple[Tensor, Tensor]:
    """The scalar head's input for chosen and rejected texts: two [n, h] float64 tensors.

    Captured by a hook on the head (`classifier`/`score`); decoder heads see every position, so the
    last real token (right padding) is picked, as the sequence-classification model itself does.
    """
    model.eval().to(device)
    head = getattr(model, head_module_name(model))
    captured: list[Tensor] = []
    hook = head.register_forward_hook(lambda _m, args, _out: captured.append(args[0]))
    n = len(enc)
    order = np.argsort(enc.lengths(), kind="stable")
    chosen: Tensor | None = None
    rejected: Tensor | None = None
    try:
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size].tolist()
            ids, mask = enc.batch(index, device)
            b, _, length = ids.shape
            flat_mask = mask.reshape(2 * b, length)
            captured.clear()
            model(input_ids=ids.reshape(2 * b, length), attention_mask=flat_mask)
            feats = captured[-1]
            if feats.dim() == 3:
                last = flat_mask.sum(dim=1) - 1
                feats = feats[torch.arange(2 * b, device=device), last]
            feats = feats.double().reshape(b, 2, -1)
            if chosen is None:
                chosen = torch.empty((n, feats.shape[-1]), dtype=torch.float64, device=device)
                rejected = torch.empty_like(chosen)
            assert chosen is not None and rejected is not None
            where = torch.as_tensor(index, device=device)
            chosen[where] = feats[:, 0]
            rejected[where] = feats[:, 1]
            check_cancel(should_cancel)
            if progress is not None:
                progress(min(1.0, (start + batch_size) / n))
    finally:
        hook.remove()
    assert chosen is not None and rejected is not None
    return chosen, rejected


def fit_head(z: Tensor, l2: float, tol: float = 1e-10, max_iter: int = 100) -> tuple[Tensor, int]:
    """argmin_w (1/n) Σ softplus(−wᵀ z_i) + (α/2)‖w‖², α = max(l2, MIN_L2), by damped Newton.

    `z` is [n, h] (feature differences). Returns w [h] float64 and the Newton iterations taken;
    stops when the gradient norm is below `tol`.
    """
    z = z.double()
    n, h = z.shape
    alpha = max(l2, MIN_L2)
    w = torch.zeros(h, dtype=torch.float64, device=z.device)

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
