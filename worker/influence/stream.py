"""The sharded, streaming audit: the engine's side of a LoRA audit spread over many tasks.

A job is train → per-shard gradients → reduction → per-shard scores → finalize. This module holds
the maths of each piece and nothing of Celery or the database; the caller moves the arrays between
tasks (worker/jobs/ keeps them in the artifact store). Memory per task is bounded by one shard
and the d × d curvature, never by n:

* the shards are blocks of the length-sorted training set, `shard_size` rounded up to a multiple
  of the gradient chunk, so every chunk of pairs is the one the in-memory path would form and the
  gradients come out bit-identical;
* the curvature lives in a space of d dimensions: the exact parameter space when p ≤
  `DENSE_CURVATURE_MAX`, else a seeded structured projection of k dimensions (`projection_dim`).
  The Gauss–Newton matrix G = (1/n) Σ w_i d_i d_iᵀ is accumulated shard by shard as a dense d × d
  float64 matrix and factorised once (Cholesky of G + λI): the solve u = (G + λI)⁻¹ g_val, the
  self-influences g_iᵀ(G + λI)⁻¹g_i and DataInf's per-layer products follow in one more pass;
* a job whose p is too large for a dense curvature and that asked for exact gradients holds them
  all in the reduction ("in_memory"), as the single-task engine does: only small jobs can.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import cho_solve, eigh, solve_triangular

from worker.influence.config import LORA_INFLUENCE_DAMPING, DampingReference, EngineConfig
from worker.influence.curvature import sigmoid
from worker.influence.gradients import GradientProjector, per_pair_margin_gradients
from worker.influence.group import GroupInfluence
from worker.influence.methods import METHODS, computation, harm_column
from worker.influence.methods import default_method as default_method_of
from worker.influence.model import Encoded, RewardModel
from worker.influence.scores import (
    COSINE_MIN_NORM,
    DATAINF_DAMPING,
    bt_loss,
    corrected_loss,
    length_harm,
)
from worker.influence.train import ShouldCancel

DENSE_CURVATURE_MAX = 8192
"""Largest d for which the d × d curvature is accumulated and factorised densely."""

EXACT_MAX_BYTES = 1 << 30
"""Exact gradients of all training pairs held at once above this size are projected instead."""

AUTO_PROJECTION_DIM = 4096
"""Projection used when exact gradients would not fit `EXACT_MAX_BYTES`."""

STREAM_METHODS: frozenset[str] = frozenset(
    name for name, spec in METHODS.items() if spec.streamable
)
"""Methods the sharded engine computes (the registry names a per-shard scorer or a global
finaliser); the others (tracin, cross-fitting) run in the single-task engine."""


def unsupported(config: EngineConfig) -> str | None:
    """Why this audit cannot run sharded (None when it can)."""
    if config.mode != "lora":
        return f"mode={config.mode!r} fits a head on cached features in one task"
    if config.hessian != "gauss_newton":
        return "hessian='exact' takes Hessian-vector products over the whole training set"
    others = sorted(set(config.methods) - STREAM_METHODS)
    if others:
        return f"method(s) {', '.join(others)} need every training pair in one task"
    return None


@dataclass(frozen=True)
class Space:
    """Where gradients and curvature live. kind: 'exact' (d = p, dense curvature), 'projected'
    (d = the projector's k), or 'in_memory' (d = p too large for a dense curvature: the reduction
    holds every gradient, as the single-task engine does)."""

    kind: str
    projection_dim: int | None
    warnings: tuple[str, ...] = ()

    @property
    def streaming(self) -> bool:
        return self.kind != "in_memory"


FAITHFUL_INFLUENCE_DAMPING = LORA_INFLUENCE_DAMPING
"""The influence_damping (λ/σ₁) whose projected influence was measured against the exact one: at
k = 4096 (Kronecker, 3 projection seeds) Spearman 0.965 on hh-flip10, 0.998 on harmless-base and
0.907 on helpful-base (split seed 1), all MiniLM LoRA (bench/results/projection/damping-*.md).
Weaker damping leans on low-curvature directions of the training gradients that no random
k-dimensional sketch keeps (its error on an inner product is ~‖a‖‖b‖/√k): 0.58–0.77 at 1e-4."""
FAITHFUL_INFLUENCE_DIM = 4096
"""The sketch size that measurement used; a smaller projection_dim keeps less."""


def projected_influence_warnings(config: EngineConfig, dim: int) -> tuple[str, ...]:
    """A warning when projected influence is asked for where it was not shown to keep the exact
    ranking: a weaker influence damping, or a smaller sketch, than the fidelity bench's."""
    if "influence" not in config.methods:
        return ()
    damping, reference = config.influence_solve_damping()
    weak = reference != "top_eigenvalue" or damping < FAITHFUL_INFLUENCE_DAMPING
    if not weak and dim >= FAITHFUL_INFLUENCE_DIM:
        return ()
    return (
        f"influence from {dim}-dimensional projected gradients at influence_damping "
        f"{damping:g} ({reference}) is a rough ranking: its Spearman against the exact "
        f"influence was 0.91–1.00 at influence_damping {FAITHFUL_INFLUENCE_DAMPING:g} (λ/σ₁) "
        f"and projection_dim {FAITHFUL_INFLUENCE_DIM}, and falls with weaker damping or a "
        "smaller sketch (bench/results/projection/damping-*.md); keep exact gradients "
        "(projection_dim unset, up to 1 GiB of them) for this ranking",
    )


def choose_space(n_params: int, n_train: int, config: EngineConfig) -> Space:
    """The space for p trainable parameters and n training pairs under `config`."""
    if config.projection_dim is not None:
        if config.projection_dim >= n_params:
            return Space("exact", None)
        warnings = projected_influence_warnings(config, config.projection_dim)
        return Space("projected", config.projection_dim, warnings)
    if n_params <= DENSE_CURVATURE_MAX:
        return Space("exact", None)
    needed = n_train * n_params * 4
    if needed <= EXACT_MAX_BYTES:
        return Space("in_memory", None)
    warning = (
        f"exact gradients of {n_train} pairs × {n_params} parameters would need "
        f"{needed / 2**30:.1f} GiB at once; they were projected to {AUTO_PROJECTION_DIM} "
        "dimensions (set projection_dim to choose)"
    )
    influence = projected_influence_warnings(config, AUTO_PROJECTION_DIM)
    return Space("projected", AUTO_PROJECTION_DIM, (warning, *influence))


def shard_positions(lengths: Sequence[int], shard_size: int, chunk: int) -> list[np.ndarray]:
    """Training positions of each shard: consecutive blocks of the length-sorted order, each a
    multiple of `chunk` pairs long (the last one shorter)."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    size = max(chunk, math.ceil(shard_size / chunk) * chunk)
    return [order[start : start + size] for start in range(0, len(order), size)]


def subset(enc: Encoded, positions: Sequence[int] | np.ndarray) -> Encoded:
    return Encoded(ids=[enc.ids[int(i)] for i in positions], pad_id=enc.pad_id)


def shard_gradients(
    rm: RewardModel,
    enc: Encoded,
    chunk: int,
    projector: GradientProjector | None,
    progress: Callable[[float], None] | None = None,
    should_cancel: ShouldCancel | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(margins [n_s] float64, margin gradients [n_s, d] float32) of one shard's pairs."""
    margins, grads = per_pair_margin_gradients(
        rm, enc, chunk, projector=projector, progress=progress, should_cancel=should_cancel
    )
    return margins, grads.float().cpu().numpy()


def validation_gradient_streamed(
    rm: RewardModel,
    enc: Encoded,
    chunk: int,
    projector: GradientProjector | None,
    block: int = 1024,
    should_cancel: ShouldCancel | None = None,
    keep: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(validation margins [m], g_val = (1/m) Σ_v −σ(−Δ_v) d_v [d] float64, and with `keep` the
    per-pair margin gradients [m, d] float32 that the group method's H_val needs) with memory
    bounded by `block` pairs otherwise: blocks of the length-sorted order, like the shards."""
    margins = np.empty(len(enc), dtype=np.float64)
    total: np.ndarray | None = None
    kept: np.ndarray | None = None
    for positions in shard_positions(enc.lengths(), block, chunk):
        part_margins, grads = shard_gradients(
            rm, subset(enc, positions), chunk, projector, should_cancel=should_cancel
        )
        margins[positions] = part_margins
        scale = -sigmoid(-part_margins)
        contribution = grads.astype(np.float64).T @ scale
        total = contribution if total is None else total + contribution
        if keep:
            if kept is None:
                kept = np.empty((len(enc), grads.shape[1]), dtype=np.float32)
            kept[positions] = grads
    assert total is not None
    return margins, total / len(enc), kept


def block_slices(blocks: Sequence[tuple[str, slice]]) -> list[slice]:
    return [block for _, block in blocks]


@dataclass
class ShardStats:
    """What the reduction needs from a shard before it reads the gradients again."""

    n: int
    block_norms: np.ndarray  # [L] Σ_i ‖c_i d_il‖² per layer block (DataInf's λ_l)
    max_scaled_norm: float  # max_i |c_i|‖d_i‖ (the cosine's noise floor)

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {
            "n": np.asarray(self.n),
            "block_norms": self.block_norms,
            "max_scaled_norm": np.asarray(self.max_scaled_norm),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> ShardStats:
        return cls(int(arrays["n"]), arrays["block_norms"], float(arrays["max_scaled_norm"]))


def shard_stats(margins: np.ndarray, grads: np.ndarray, blocks: Sequence[slice]) -> ShardStats:
    scale = -sigmoid(-margins)
    g = grads.astype(np.float64) * scale[:, None]
    norms = np.array([float((g[:, b] ** 2).sum()) for b in blocks])
    row_norms = np.sqrt((g**2).sum(axis=1))
    return ShardStats(len(margins), norms, float(row_norms.max(initial=0.0)))


@dataclass
class Reduction:
    """Accumulates the curvature and DataInf's sums over shards, then solves once."""

    dim: int
    blocks: list[slice]
    n: int
    datainf_lambda: np.ndarray  # [L]
    g_val: np.ndarray  # [d]
    n_params: int  # p: the damping's scale is trace(G)/p in every space (see `solve`)
    gauss_newton: np.ndarray = field(init=False)
    datainf_sum: np.ndarray = field(init=False)  # Σ_j coef_j g_j per block, concatenated [d]

    def __post_init__(self) -> None:
        self.gauss_newton = np.zeros((self.dim, self.dim))
        self.datainf_sum = np.zeros(self.dim)

    @classmethod
    def start(
        cls,
        stats: Sequence[ShardStats],
        blocks: Sequence[slice],
        g_val: np.ndarray,
        n_params: int | None = None,
    ) -> Reduction:
        n = sum(s.n for s in stats)
        norms = np.sum([s.block_norms for s in stats], axis=0)
        widths = np.array([b.stop - b.start for b in blocks], dtype=np.float64)
        lam = DATAINF_DAMPING * (norms / n) / widths
        dim = int(g_val.shape[0])
        return cls(dim, list(blocks), n, lam, np.asarray(g_val, np.float64), n_params or dim)

    def add(self, margins: np.ndarray, grads: np.ndarray, datainf: bool) -> None:
        """Fold one shard in: G += (1/n) Dᵀ diag(w) D; DataInf's Σ_j coef_j g_j."""
        prob = sigmoid(margins)
        d = grads.astype(np.float64)
        weights = prob * (1.0 - prob) / self.n
        self.gauss_newton += d.T @ (weights[:, None] * d)
        if datainf:
            g = d * (-sigmoid(-margins))[:, None]
            for b, lam in zip(self.blocks, self.datainf_lambda, strict=True):
                if lam <= 0:
                    continue
                gb = g[:, b]
                coef = (gb @ self.g_val[b]) / (lam + (gb**2).sum(axis=1))
                self.datainf_sum[b] += gb.T @ coef

    def solve(
        self,
        damping: float,
        influence: tuple[float, DampingReference] | None = None,
    ) -> Solution:
        """Cholesky of G + λI, λ = damping · trace(G)/p, for self-influence (and group); u for
        influence under `influence` = (relative damping, reference), by default the same λ.

        A projection keeps squared norms, hence trace(G), in expectation, while it packs them into
        k ≪ p coordinates: dividing by p (not k) gives the projected solve the exact space's λ.
        Per-coordinate scaling would damp p/k times harder: it moved the projected
        self-influence ranking from ρ = 0.97 to 0.81 against the exact one on hh-flip10
        (bench/results/projection/projection.md). σ₁, the other reference, the sketch keeps to
        within about 10–17% at k = 4096 (bench/results/projection/damping-*.md).
        """
        scale = float(np.trace(self.gauss_newton)) / self.n_params
        if scale <= 0:
            scale = 1.0
        lam = damping * scale
        matrix = self.gauss_newton.copy()
        matrix[np.diag_indices_from(matrix)] += lam
        factor = np.linalg.cholesky(matrix)
        inf_damping, reference = influence or (damping, "mean_diagonal")
        inf_scale, inf_lam, inf_factor = scale, lam, factor
        if reference == "top_eigenvalue":
            top = eigh(
                self.gauss_newton,
                eigvals_only=True,
                subset_by_index=[self.dim - 1, self.dim - 1],
            )
            inf_scale = max(float(top[0]), 0.0) or 1.0
        inf_lam = inf_damping * inf_scale
        if inf_lam != lam:
            matrix = self.gauss_newton.copy()
            matrix[np.diag_indices_from(matrix)] += inf_lam
            inf_factor = np.linalg.cholesky(matrix)
            del matrix
        u = _cholesky_solve(inf_factor, self.g_val)
        residual = float(
            np.linalg.norm(self.gauss_newton @ u + inf_lam * u - self.g_val)
            / max(float(np.linalg.norm(self.g_val)), 1e-300)
        )
        datainf_ihvp = np.zeros(self.dim)
        for b, lam_l in zip(self.blocks, self.datainf_lambda, strict=True):
            if lam_l > 0:
                datainf_ihvp[b] = (self.g_val[b] - self.datainf_sum[b] / self.n) / lam_l
        return Solution(
            u=u,
            factor=factor,
            g_val=self.g_val,
            datainf_ihvp=datainf_ihvp,
            n=self.n,
            metrics={
                "solver": "cholesky",
                "hessian": "gauss_newton",
                "damping_relative": inf_damping,
                "damping_absolute": inf_lam,
                "curvature_scale": inf_scale,
                "damping_reference": reference,
                "self_influence_damping_absolute": lam,
                "cg_iterations": 0,
                "relative_residual": residual,
                "negative_curvature": False,
                "dimension": self.dim,
            },
        )


def _cholesky_solve(factor: np.ndarray, b: np.ndarray) -> np.ndarray:
    y = solve_triangular(factor, b, lower=True)
    return np.asarray(solve_triangular(factor.T, y, lower=False))


@dataclass
class Solution:
    """The reduction's output, all a scoring shard needs besides its own gradients."""

    u: np.ndarray  # (G + λI)⁻¹ g_val [d]
    factor: np.ndarray  # lower Cholesky factor of G + λI [d, d]
    g_val: np.ndarray  # [d]
    datainf_ihvp: np.ndarray  # per-layer DataInf H_l⁻¹ g_val,l, concatenated [d]
    n: int
    metrics: dict

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {
            "u": self.u,
            "factor": self.factor,
            "g_val": self.g_val,
            "datainf_ihvp": self.datainf_ihvp,
            "n": np.asarray(self.n),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], metrics: dict) -> Solution:
        return cls(
            arrays["u"],
            arrays["factor"],
            arrays["g_val"],
            arrays["datainf_ihvp"],
            int(arrays["n"]),
            metrics,
        )


@dataclass
class ShardInputs:
    """What a per-shard scorer reads: one shard's margins and gradients, and the solution."""

    margins: np.ndarray  # [n_s]
    grads: np.ndarray  # [n_s, d] float64
    solution: Solution
    max_scaled_norm: float

    @property
    def scale(self) -> np.ndarray:
        """c_i = −σ(−Δ_i): the margin gradient's factor in the loss gradient."""
        return -sigmoid(-self.margins)


@dataclass
class GlobalInputs:
    """What a global finaliser reads besides the gathered columns."""

    length_diff: np.ndarray | None = None  # characters of chosen − rejected, training pairs
    val_length_diff: np.ndarray | None = None


def loss_shard(margins: np.ndarray) -> dict[str, np.ndarray]:
    """loss, margin and harm_loss: every job has them, with or without a solution."""
    loss = bt_loss(margins)
    return {"loss": loss, "margin": margins.copy(), "harm_loss": loss}


def gradient_similarity_shard(shard: ShardInputs) -> dict[str, np.ndarray]:
    """−c_i d_iᵀg_val and the cosine (0 below the noise floor), as scores.gradient_similarity."""
    scale, d, g_val = shard.scale, shard.grads, shard.solution.g_val
    dot = scale * (d @ g_val)
    norms = np.abs(scale) * np.sqrt((d**2).sum(axis=1))
    cosine = dot / np.maximum(norms * np.linalg.norm(g_val), 1e-300)
    cosine[norms <= COSINE_MIN_NORM * shard.max_scaled_norm] = 0.0
    return {"harm_gradient_similarity": -dot, "harm_gradient_cosine": -cosine}


def influence_shard(shard: ShardInputs) -> dict[str, np.ndarray]:
    """e_i = (1/n) c_i d_iᵀu and its harm −e_i."""
    effect = shard.scale * (shard.grads @ shard.solution.u) / shard.solution.n
    return {"removal_effect_influence": effect, "harm_influence": -effect}


def self_influence_shard(shard: ShardInputs) -> dict[str, np.ndarray]:
    """c_i² d_iᵀ(G + λI)⁻¹d_i through the Cholesky factor."""
    whitened = solve_triangular(shard.solution.factor, shard.grads.T, lower=True)
    return {"harm_self_influence": shard.scale**2 * (whitened**2).sum(axis=0)}


def datainf_shard(shard: ShardInputs) -> dict[str, np.ndarray]:
    """DataInf's e_i with the per-layer H_l⁻¹ g_val,l of the reduction."""
    effect = shard.scale * (shard.grads @ shard.solution.datainf_ihvp) / shard.solution.n
    return {"removal_effect_datainf": effect, "harm_datainf": -effect}


def score_shard(
    margins: np.ndarray,
    grads: np.ndarray,
    solution: Solution | None,
    methods: Sequence[str],
    max_scaled_norm: float,
) -> dict[str, np.ndarray]:
    """The per-pair columns of one shard that need nothing global but the solution: each asked
    method's per-shard scorer (the registry's `shard`), each scorer once.

    Same formulas as worker/influence/scores.py (e_i = (1/n) c_i d_iᵀu, the self-influence
    c_i² d_iᵀ(G + λI)⁻¹d_i, ...); corrected_loss and the length direction are global, see
    `finalise_global`.
    """
    out = loss_shard(margins)
    if solution is None:
        return out
    shard = ShardInputs(margins, grads.astype(np.float64), solution, max_scaled_norm)
    done: set[str] = set()
    for method in methods:
        ref = METHODS[method].shard
        if ref is None or ref in done or METHODS[method].always:
            continue
        done.add(ref)
        out.update(computation(ref)(shard))
    return out


def length_global(
    columns: Mapping[str, np.ndarray], inputs: GlobalInputs
) -> tuple[dict[str, np.ndarray], dict]:
    """The length heuristic, its direction picked on the validation pairs."""
    if inputs.length_diff is None or inputs.val_length_diff is None:
        raise ValueError("the length method needs the pairs' length differences")
    harm, direction = length_harm(inputs.length_diff, inputs.val_length_diff)
    return {"harm_length": harm}, {"length_direction": direction}


def corrected_loss_global(
    columns: Mapping[str, np.ndarray], inputs: GlobalInputs
) -> tuple[dict[str, np.ndarray], dict]:
    """z(loss) + z(self-influence), standardised over all training pairs."""
    return {
        "harm_corrected_loss": corrected_loss(columns["loss"], columns["harm_self_influence"])
    }, {}


def global_reads(methods: Sequence[str]) -> tuple[str, ...]:
    """The columns `finalise_global` reads for these methods, besides the default's harm column
    (what a caller holding the columns elsewhere must load back)."""
    reads = [c for m in methods for c in METHODS[m].reads if METHODS[m].finalise is not None]
    return tuple(dict.fromkeys(reads))


def finalise_global(
    columns: Mapping[str, np.ndarray],
    methods: Sequence[str],
    default_method: str,
    inputs: GlobalInputs | None = None,
) -> tuple[dict[str, np.ndarray], dict]:
    """The global columns from the gathered per-pair ones: each asked method's finaliser (the
    registry's `finalise`: the length heuristic, corrected_loss) in registry order, then `harm`.

    `columns` holds at least `global_reads(methods)`, aligned over the training pairs (as are
    `inputs`' arrays). Returns (new or changed columns, metrics): metrics["default_method"] is the
    method whose harm column fills `harm`, resolved once here (`methods.default_method`); the
    returned columns hold `harm` when that column is in `columns` or made here, and a caller that
    keeps the columns elsewhere (a database) may copy `harm_column(default)` there instead."""
    inputs = inputs or GlobalInputs()
    out: dict[str, np.ndarray] = {}
    metrics: dict = {}
    for name, spec in METHODS.items():
        if name in methods and spec.finalise is not None:
            new, found = computation(spec.finalise)({**columns, **out}, inputs)
            out.update(new)
            metrics.update(found)
    chosen = default_method_of(methods, default_method)
    source = {**columns, **out}.get(harm_column(chosen))
    if source is not None:
        out["harm"] = np.asarray(source, dtype=np.float64)
    metrics["default_method"] = chosen
    return out, metrics


def needs_solution(methods: Sequence[str]) -> bool:
    """Whether any asked method has a per-shard scorer beyond the loss: the reduction's solve."""
    return any(METHODS[m].shard is not None and not METHODS[m].always for m in methods)


def local_methods(methods: Sequence[str]) -> list[str]:
    """The asked methods a scorer of some of the pairs can compute (those without a global
    finaliser), plus the methods owning the columns those finalisers read: what the in-memory
    reduction scores with `score_fitted` before `finalise_global` runs over every pair."""
    local = [m for m in methods if METHODS[m].finalise is None]
    for m in methods:
        for column in METHODS[m].reads if METHODS[m].finalise is not None else ():
            owner = next(n for n, s in METHODS.items() if column in (c.name for c in s.owns))
            if owner not in local and not METHODS[owner].always:
                local.append(owner)
    return local


def group_over_shards(
    solution: Solution,
    val_margins: np.ndarray,
    val_grads: np.ndarray,
    n_candidates: int,
    shards: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> GroupInfluence:
    """The group method's candidates seen through the validation gradients, from the shards.

    Each candidate's Δθ_j = (1/n)(G + λI)⁻¹ c_j d_j, through the reduction's one Cholesky
    factor, projected on the validation margin gradients D_val [m, d] (`val_grads`). `shards`
    yields, per shard holding candidates, (their slots in 0..n_candidates-1, their margins
    [k], their margin gradients [k, d]). Feed the result to `worker.influence.group.select`."""
    started = time.perf_counter()
    d_val = np.asarray(val_grads, dtype=np.float64)
    m, n = len(val_margins), solution.n
    q = cho_solve((solution.factor, True), d_val.T)  # (G + λI)⁻¹ D_valᵀ [d, m]
    projected = np.zeros((m, n_candidates))  # D_val Δθ_C
    for slots, margins, grads in shards:
        g = grads.astype(np.float64) * (-sigmoid(-margins))[:, None]
        projected[:, slots] = (q.T @ g.T) / n
    c_val = -sigmoid(-val_margins)
    prob = sigmoid(val_margins)
    return GroupInfluence(
        candidates=np.arange(n_candidates),
        effect=(c_val @ projected) / m,
        factor=np.sqrt(prob * (1.0 - prob) / m)[:, None] * projected,
        seconds=time.perf_counter() - started,
    )


__all__ = [
    "AUTO_PROJECTION_DIM",
    "DENSE_CURVATURE_MAX",
    "STREAM_METHODS",
    "Reduction",
    "ShardStats",
    "Solution",
    "Space",
    "choose_space",
    "GlobalInputs",
    "ShardInputs",
    "finalise_global",
    "global_reads",
    "local_methods",
    "needs_solution",
    "group_over_shards",
    "score_shard",
    "shard_gradients",
    "shard_positions",
    "shard_stats",
    "unsupported",
    "validation_gradient_streamed",
]
