"""Curvature of the training loss and inverse-Hessian-vector products u = H_λ⁻¹ b.

Two curvatures (SCIENCE.md): the Gauss–Newton matrix G = (1/n) Σ_i p_i(1−p_i) d_i d_iᵀ, with
d_i = ∇_θ Δ_i [p] and p_i = σ(Δ_i), held through the per-pair gradient matrix D [n, p]; and the
exact Hessian H = ∇²L(θ) through Pearlmutter's trick (Pearlmutter 1994), forward-over-reverse
`torch.func.jvp` of `torch.func.grad`. Both are damped by λI with λ relative to the curvature scale
(mean diagonal of G). Solves: conjugate gradient (Hestenes & Stiefel 1952), stopping on the relative
residual and detecting negative curvature, or an exact factorisation in min(n, p) dimensions
(Woodbury identity when n < p).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from worker.influence.model import Encoded, RewardModel
from worker.influence.train import bt_loss

MatVec = Callable[[Tensor], Tensor]

MATVEC_ROWS = 1024
"""Rows of D upcast to float64 at a time in Gauss–Newton products."""

DIRECT_MAX_DIM = 16384
"""Largest min(n, p) for which an exact factorisation (n×n or p×p) is formed."""
WOODBURY_MAX_N = 8192
"""solver='auto' solves in n dimensions (Woodbury) up to this many pairs when n ≤ p, else CG."""


def sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1/(1 + e^(−x)), overflow-free."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


@dataclass
class CGResult:
    solution: Tensor
    iterations: int
    relative_residual: float
    negative_curvature: bool
    converged: bool


def conjugate_gradient(
    matvec: MatVec, b: Tensor, tol: float = 1e-4, max_iter: int = 100
) -> CGResult:
    """Solve A x = b for symmetric A by conjugate gradient, x₀ = 0, in float64.

    Stops when ‖A x − b‖/‖b‖ ≤ tol (the recursive residual, re-checked with one true product at the
    end) or after `max_iter` products. If a search direction has pᵀAp ≤ 0, A is not positive
    definite: stop, flag `negative_curvature`, and return the iterate reached so far.
    """
    b = b.double()
    b_norm = float(torch.linalg.vector_norm(b))
    x = torch.zeros_like(b)
    if b_norm == 0.0:
        return CGResult(x, 0, 0.0, False, True)
    r = b.clone()
    p = r.clone()
    rr = float(r @ r)
    iterations, negative = 0, False
    for _ in range(max_iter):
        if rr**0.5 / b_norm <= tol:
            break
        ap = matvec(p).double()
        curvature = float(p @ ap)
        if curvature <= 0.0:
            negative = True
            break
        alpha = rr / curvature
        x = x + alpha * p
        r = r - alpha * ap
        iterations += 1
        rr_next = float(r @ r)
        p = r + (rr_next / rr) * p
        rr = rr_next
    residual = float(torch.linalg.vector_norm(matvec(x).double() - b)) / b_norm
    return CGResult(x, iterations, residual, negative, residual <= tol and not negative)


class GaussNewton:
    """G = (1/n) Σ_i w_i d_i d_iᵀ, w_i = p_i(1 − p_i), from D [n, p] and margins Δ [n].

    A product G v costs two matrix–vector products with D; nothing p×p is formed.
    """

    def __init__(self, margin_grads: Tensor, margins: np.ndarray) -> None:
        prob = sigmoid(margins)
        self.n = margin_grads.shape[0]
        self.dim = margin_grads.shape[1]
        self.D = margin_grads
        self._dual: tuple[Tensor, Tensor, Tensor] | None = None
        self.weights = torch.as_tensor(
            prob * (1.0 - prob) / self.n, dtype=torch.float64, device=margin_grads.device
        )

    def _row_blocks(self) -> Iterator[tuple[slice, Tensor]]:
        """(slice, rows of D upcast to float64): products in float64 with bounded memory, since
        fp32 products cap CG's and the residual's accuracy near 1e-4 on stiff systems."""
        for start in range(0, self.n, MATVEC_ROWS):
            where = slice(start, start + MATVEC_ROWS)
            yield where, self.D[where].double()

    def rows_dot(self, v: Tensor) -> Tensor:
        """D v [n] (or [n, r] for v [p, r]) in float64."""
        v = v.double()
        return torch.cat([rows @ v for _, rows in self._row_blocks()])

    def rows_tdot(self, c: Tensor) -> Tensor:
        """Dᵀ c [p] (or [p, r] for c [n, r]) in float64."""
        out = torch.zeros(self.dim, *c.shape[1:], dtype=torch.float64, device=self.D.device)
        for where, rows in self._row_blocks():
            out += rows.T @ c[where].double()
        return out

    def matvec(self, v: Tensor) -> Tensor:
        """G v = Dᵀ (w ∘ D v) [p], float64."""
        return self.rows_tdot(self.weights * self.rows_dot(v))

    def mean_diagonal(self) -> float:
        """trace(G)/p, the curvature scale λ is measured against."""
        total = sum(
            float(self.weights[where] @ (rows**2).sum(dim=1)) for where, rows in self._row_blocks()
        )
        return total / self.dim

    def top_eigenvalue(self) -> float:
        """σ₁, the largest eigenvalue of G: the scale of the influence solve's damping.

        From the dual spectrum where the Woodbury solve needs it anyway (n ≤ min(p, 8192)),
        else by Lanczos on G v from a fixed start vector (deterministic), converged to 1e-10:
        forming G (n·p² work) or a large n × n spectrum only for σ₁ would cost more than the
        solve."""
        if self._dual is not None or self.n <= min(self.dim, WOODBURY_MAX_N):
            return float(self.dual_spectrum()[2].max())
        from scipy.sparse.linalg import LinearOperator, eigsh

        device = self.D.device

        def matvec(v: np.ndarray) -> np.ndarray:
            out = self.matvec(torch.from_numpy(np.ascontiguousarray(v).ravel()).to(device))
            return out.cpu().numpy()

        operator = LinearOperator((self.dim, self.dim), matvec=matvec, dtype=np.float64)
        value = eigsh(
            operator, k=1, which="LA", v0=np.ones(self.dim), tol=1e-10, return_eigenvectors=False
        )
        return max(float(value[0]), 0.0)

    def dense(self) -> Tensor:
        """G as a dense [p, p] float64 matrix (primal solves, tests)."""
        out = torch.zeros(self.dim, self.dim, dtype=torch.float64, device=self.D.device)
        for where, rows in self._row_blocks():
            out += rows.T @ (self.weights[where, None] * rows)
        return out

    def kernel(self) -> Tensor:
        """K = D Dᵀ [n, n] in float64, accumulated over column blocks."""
        out = torch.zeros(self.n, self.n, dtype=torch.float64, device=self.D.device)
        for start in range(0, self.dim, MATVEC_ROWS * 8):
            cols = self.D[:, start : start + MATVEC_ROWS * 8].double()
            out += cols @ cols.T
        return out

    def factor(self, shift: float) -> DirectInverse:
        """Exact (G + shift·I)⁻¹ in min(n, p) dimensions."""
        return DirectInverse(self, shift)

    def dual_spectrum(self) -> tuple[Tensor, Tensor, Tensor]:
        """(K = DDᵀ [n, n], eigenvectors and eigenvalues of √w √wᵀ ∘ K), computed once: they do
        not depend on the damping, so solves under several dampings share them."""
        if self._dual is None:
            kernel = self.kernel()
            root = self.weights.sqrt()
            evals, evecs = torch.linalg.eigh(root[:, None] * kernel * root[None, :])
            self._dual = (kernel, evecs, evals.clamp_min(0.0))
        return self._dual


class DirectInverse:
    """(G + λI)⁻¹ exactly, G = AᵀA with A = diag(√w) D.

    n ≤ p (dual, Woodbury): (AᵀA + λI)⁻¹ b = (b − Aᵀ(AAᵀ + λI)⁻¹ A b)/λ, with AAᵀ = √w √wᵀ ∘ DDᵀ
    eigendecomposed once (n×n). n > p (primal): Cholesky of the p×p matrix G + λI.
    """

    def __init__(self, gn: GaussNewton, shift: float) -> None:
        if min(gn.n, gn.dim) > DIRECT_MAX_DIM:
            raise ValueError(
                f"an exact solve needs a {min(gn.n, gn.dim)}-dimensional factorisation "
                f"(limit {DIRECT_MAX_DIM}); set projection_dim or use solver='cg'"
            )
        self.gn, self.shift = gn, shift
        self.dual = gn.n <= gn.dim
        if self.dual:
            self.kernel, self.evecs, self.evals = gn.dual_spectrum()
            self.root = gn.weights.sqrt()
        else:
            matrix = gn.dense()
            matrix.diagonal().add_(shift)
            self.cholesky = torch.linalg.cholesky(matrix)

    def solve(self, b: Tensor) -> Tensor:
        """(G + λI)⁻¹ b for b [p], or for each column of b [p, r]."""
        if b.dim() == 1:
            return self.solve(b[:, None])[:, 0]
        b = b.double()
        if not self.dual:
            return torch.cholesky_solve(b, self.cholesky)
        ab = self.root[:, None] * self.gn.rows_dot(b)
        y = self.evecs @ ((self.evecs.T @ ab) / (self.evals + self.shift)[:, None])
        return (b - self.gn.rows_tdot(self.root[:, None] * y)) / self.shift

    def quadratic(self, scale: Tensor) -> Tensor:
        """q_i = g_iᵀ (G + λI)⁻¹ g_i for all training rows g_i = scale_i d_i, [n] float64."""
        scale = scale.double()
        if not self.dual:
            quad = torch.cat(
                [
                    (rows * torch.cholesky_solve(rows.T, self.cholesky).T).sum(dim=1)
                    for _, rows in self.gn._row_blocks()
                ]
            )
            return scale**2 * quad
        # Columns of A G_rowsᵀ: √w_j K_ji scale_i.
        a_g = self.root[:, None] * self.kernel * scale[None, :]
        projected = (self.evecs.T @ a_g) / (self.evals + self.shift).sqrt()[:, None]
        norms = scale**2 * self.kernel.diagonal()
        return (norms - (projected**2).sum(dim=0)) / self.shift


def exact_hvp(
    rm: RewardModel,
    enc: Encoded,
    index: Sequence[int],
    chunk: int = 32,
    params: dict[str, Tensor] | None = None,
) -> MatVec:
    """v ↦ ∇²L_S(θ) v, L_S = (1/|S|) Σ_{i∈S} softplus(−Δ_i(θ)) over the pairs `index`.

    Pearlmutter's trick as forward-over-reverse: jvp(grad L_S, θ; v). v and the result are flat
    [p] vectors in `rm.names` order; computed in fp32, eval mode, chunked over S.
    """
    from torch.func import grad, jvp

    rm.module.eval()
    theta = {k: v.detach() for k, v in (params or rm.params).items()}
    batches = [
        enc.batch(list(index[s : s + chunk]), rm.device) for s in range(0, len(index), chunk)
    ]
    count = len(index)

    def loss_sum(p: dict[str, Tensor], ids: Tensor, mask: Tensor) -> Tensor:
        return bt_loss(rm.margins(p, ids, mask)).sum()

    gradient = grad(loss_sum)

    def matvec(v: Tensor) -> Tensor:
        tangent = {k: t.to(theta[k].dtype) for k, t in rm.unflatten(v.to(rm.device)).items()}
        total = torch.zeros(rm.n_params, dtype=torch.float64, device=rm.device)
        for ids, mask in batches:
            hv = jvp(lambda p, ids=ids, mask=mask: gradient(p, ids, mask), (theta,), (tangent,))[1]
            total += rm.flatten(hv).double()
        return total / count

    return matvec
