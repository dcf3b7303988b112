"""Removing a group: interaction-aware group influence and greedy pruning (Heo et al. 2026).

Removing pair j moves the parameters by Δθ_j = (1/n) H_λ⁻¹ g_j (../shared/SCIENCE.md). Removing a
set S moves them by Σ_{j∈S} Δθ_j, and the validation loss changes, to second order, by

    Δf(S) ≈ Σ_{i∈S} e_i + ½ Σ_{i,j∈S} κ(i, j),    e_i = g_valᵀ Δθ_i,   κ(i, j) = Δθ_iᵀ H_f Δθ_j,

with H_f the validation loss's Gauss–Newton matrix (1/m) Σ_v w_v d_v d_vᵀ, w_v = p_v(1 − p_v):
exact in head mode, where margins are linear in θ. Two pairs are *redundant* when κ(i, j) > 0
(removing both lowers the loss by less than the two alone) and *complementary* when κ(i, j) < 0.

Nothing M × M needs to exist: κ = BᵀB with B = W^½ D_val Δθ_C [m, M], and D_val Δθ_C is
(1/n) Qᵀ G_Cᵀ with Q = H_λ⁻¹ D_valᵀ — m solves (one per validation pair) instead of one per
candidate, with one factorisation for all of them. Greedy selection keeps the running sum
s = Σ_{i∈S} B_i, so a step costs one m-dimensional dot product per candidate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from worker.influence.config import budget_count
from worker.influence.curvature import sigmoid

Solve = Callable[[Tensor], Tensor]
"""(H_λ)⁻¹ applied to the columns of a [d, r] float64 matrix."""

__all__ = [
    "GroupInfluence",
    "Greedy",
    "Selection",
    "budget_count",
    "candidate_set",
    "group_influence",
    "select",
]

INTERACTION_TOP = 10
"""Strongest interactions kept per candidate for the review (by |κ|)."""


@dataclass
class GroupInfluence:
    """First-order effects and the interaction factor of a candidate set.

    `candidates` are training positions [M]; `effect` e_j [M]; `factor` B [m, M] float64 with
    κ = BᵀB. Every `members` argument below holds positions into `candidates` (0 … M − 1).
    """

    candidates: np.ndarray
    effect: np.ndarray
    factor: np.ndarray
    seconds: float

    @property
    def size(self) -> int:
        return len(self.candidates)

    def subset(self, members: Sequence[int] | np.ndarray) -> GroupInfluence:
        """The same quantities for `members` (positions into these candidates) only."""
        where = np.asarray(members, dtype=np.int64)
        return GroupInfluence(
            self.candidates[where], self.effect[where], self.factor[:, where], self.seconds
        )

    def kappa(self, rows: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """κ(rows, ·) [r, M] (every row when `rows` is None: M × M, for small M only)."""
        left = self.factor if rows is None else self.factor[:, np.asarray(rows, dtype=np.int64)]
        return left.T @ self.factor

    def estimate(self, members: Sequence[int] | np.ndarray) -> tuple[float, float]:
        """(first-order Σ e_i, interaction-aware Σ e_i + ½ ΣΣ κ(i, j)) for removing `members`."""
        where = np.asarray(members, dtype=np.int64)
        first = float(self.effect[where].sum())
        summed = self.factor[:, where].sum(axis=1)
        return first, first + 0.5 * float(summed @ summed)

    def greedy(self, budget: int | None = None) -> Greedy:
        """Add, `budget` times (all candidates when None), the j minimising
        e_j + Σ_{i∈S} κ(i, j) + ½ κ(j, j) = Δf(S ∪ {j}) − Δf(S)."""
        budget = self.size if budget is None else min(int(budget), self.size)
        diag = 0.5 * (self.factor**2).sum(axis=0)
        running = np.zeros(self.size)  # Σ_{i∈S} κ(i, j)
        taken = np.zeros(self.size, dtype=bool)
        order = np.empty(budget, dtype=np.int64)
        gains = np.empty(budget)
        for step in range(budget):
            gain = self.effect + running + diag
            gain[taken] = np.inf
            j = int(np.argmin(gain))
            order[step], gains[step], taken[j] = j, gain[j], True
            running += self.factor[:, j] @ self.factor
        return Greedy(order, gains)

    def first_order(self, budget: int | None = None) -> np.ndarray:
        """Top-K by first-order effect (most negative e first): positions into candidates."""
        budget = self.size if budget is None else min(int(budget), self.size)
        return np.argsort(self.effect, kind="stable")[:budget]

    def strongest(
        self, top: int = INTERACTION_TOP, block: int = 512
    ) -> list[list[tuple[int, float]]]:
        """Per candidate, its `top` partners by |κ(i, j)|, i ≠ j: [(partner position, κ)]."""
        top = min(top, self.size - 1)
        out: list[list[tuple[int, float]]] = []
        for start in range(0, self.size, block):
            rows = np.arange(start, min(start + block, self.size))
            kappa = self.kappa(rows)
            kappa[np.arange(len(rows)), rows] = 0.0
            if top <= 0:
                out.extend([] for _ in rows)
                continue
            best = np.argpartition(-np.abs(kappa), top - 1, axis=1)[:, :top]
            for r, partners in enumerate(best):
                values = kappa[r, partners]
                keep = np.argsort(-np.abs(values), kind="stable")
                out.append([(int(partners[k]), float(values[k])) for k in keep if values[k] != 0])
        return out

    def memory_bytes(self) -> dict[str, int]:
        """What the factor holds, and what a dense κ would."""
        return {"factor": int(self.factor.nbytes), "dense_kappa": int(self.size**2 * 8)}


@dataclass
class Greedy:
    """A greedy selection: `order` positions into the candidates, `gains` Δf(S ∪ {j}) − Δf(S)
    at each step (their running sum is the interaction-aware Δf of the prefix)."""

    order: np.ndarray
    gains: np.ndarray

    @property
    def estimates(self) -> np.ndarray:
        return np.cumsum(self.gains)


def group_influence(
    solve: Solve,
    grads: Tensor,
    margins: np.ndarray,
    val_grads: Tensor,
    val_margins: np.ndarray,
    candidates: Sequence[int] | np.ndarray,
    n: int | None = None,
) -> GroupInfluence:
    """e and the κ factor of `candidates` (training positions) from margin gradients.

    `grads` [n, d] and `val_grads` [m, d] are margin gradients d_i (the loss gradient is
    g_i = −σ(−Δ_i) d_i); `solve` applies H_λ⁻¹, the same damped curvature the influence method
    uses. `n` defaults to len(margins).
    """
    start = time.perf_counter()
    n = len(margins) if n is None else n
    where = torch.as_tensor(np.asarray(candidates, dtype=np.int64), device=grads.device)
    c_train = torch.as_tensor(-sigmoid(-margins), dtype=torch.float64, device=grads.device)
    c_val = torch.as_tensor(-sigmoid(-val_margins), dtype=torch.float64, device=grads.device)
    m = len(val_margins)
    d_val = val_grads.double()
    q = solve(d_val.T.contiguous())  # H_λ⁻¹ D_valᵀ [d, m]
    g_c = grads[where].double() * c_train[where, None]  # loss gradients of the candidates [M, d]
    projected = (q.T @ g_c.T) / n  # D_val Δθ_C [m, M]
    # e_j = g_valᵀ Δθ_j = (1/m) Σ_v c_v (d_vᵀ Δθ_j): the same numbers through the m solves.
    effect = (c_val @ projected) / m
    prob = sigmoid(val_margins)
    weight = torch.as_tensor(prob * (1.0 - prob) / m, dtype=torch.float64, device=grads.device)
    factor = weight.sqrt()[:, None] * projected
    return GroupInfluence(
        candidates=np.asarray(candidates, dtype=np.int64),
        effect=effect.cpu().numpy(),
        factor=factor.cpu().numpy(),
        seconds=time.perf_counter() - start,
    )


def candidate_set(effect: np.ndarray, size: int) -> np.ndarray:
    """The `size` training positions with the most negative first-order effect (all when
    size ≥ n), in training order."""
    if size >= len(effect):
        return np.arange(len(effect))
    return np.sort(np.argsort(effect, kind="stable")[:size])


@dataclass
class Selection:
    """What a `group` audit stores: per candidate (aligned with `GroupInfluence.candidates`) its
    greedy position (1 = removed first), the step's gain and a harm for sorting; the job's
    metrics; each candidate's strongest interactions as (candidate, partner candidate, κ)."""

    order: np.ndarray
    gain: np.ndarray
    harm: np.ndarray
    metrics: dict
    interactions: list[tuple[int, int, float]]


def select(group: GroupInfluence, n_total: int, prune_budget: float, **extra) -> Selection:
    """Greedy order over every candidate, the budget's estimates against the first-order top-K
    of the same size, and the strongest interactions (the single-task and sharded engines)."""
    start = time.perf_counter()
    greedy = group.greedy()
    budget = min(budget_count(prune_budget, n_total), group.size)
    order = np.empty(group.size)
    gain = np.empty(group.size)
    harm = np.empty(group.size)
    order[greedy.order] = np.arange(1, group.size + 1)
    gain[greedy.order] = greedy.gains
    harm[greedy.order] = group.size - np.arange(group.size)  # first removed scores highest
    top_k = group.first_order(budget)
    first_greedy, inter_greedy = group.estimate(greedy.order[:budget])
    first_top, inter_top = group.estimate(top_k)
    interactions = [
        (i, j, kappa) for i, partners in enumerate(group.strongest()) for j, kappa in partners
    ]
    memory = group.memory_bytes()
    metrics = {
        "candidates": int(group.size),
        "budget": int(budget),
        "prune_budget": prune_budget,
        "estimate_greedy": {"first_order": first_greedy, "interaction_aware": inter_greedy},
        "estimate_top_k": {"first_order": first_top, "interaction_aware": inter_top},
        "overlap_with_top_k": int(len(np.intersect1d(greedy.order[:budget], top_k))),
        "factor_mib": memory["factor"] / 2**20,
        "dense_kappa_mib": memory["dense_kappa"] / 2**20,
        "interactions_kept": len(interactions),
        "seconds": group.seconds + time.perf_counter() - start,
        **extra,
    }
    return Selection(order, gain, harm, metrics, interactions)
