"""Seeded structured random projection of per-pair gradients, p -> ~k dimensions (LoGra-style).

A dense Gaussian sketch p -> k needs p·k numbers (Σ_l p_l k_l block by block), gigabytes for a 1B
model. The gradient of a weight matrix W [out, in] is itself a matrix G, and a Kronecker-structured
Gaussian (P_out ⊗ P_in) acts on vec G as P_out G P_inᵀ without ever being formed (Choe et al. 2024,
"What is your data worth to GPT?", LoGra). With P_out [k_out, out] ~ N(0, 1/k_out) and
P_in [k_in, in] ~ N(0, 1/k_in) independent,

    E[(P_out G P_inᵀ) · (P_out H P_inᵀ)] = tr(Gᵀ E[P_outᵀP_out] H E[P_inᵀP_in]) = G · H,

so inner products (hence influence, gradient similarity, the Gauss–Newton matrix) are preserved in
expectation, while storage drops from out·in·k_out·k_in to out·k_out + in·k_in numbers. A side
kept whole (k = its size) is the identity and stores nothing. The split of a budget k_t into
k_out·k_in is chosen for the least worst-case (rank-one) variance of the sketched norm: balanced,
k_out ≈ k_in ≈ √k_t, unless keeping one side whole does better, as for the rank side of a LoRA
factor. Parameters of other ranks (biases) are flattened and, when larger than their budget,
sketched by a small dense Gaussian.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from worker.influence.model import RewardModel

KINDS: tuple[str, ...] = ("identity", "kronecker", "dense")
"""How one parameter's gradient is mapped: kept exactly, P_out G P_inᵀ, or flat @ M."""


def block_budget(blocks: list[tuple[str, slice]], k: int) -> list[int]:
    """k_l = round(k·p_l/p) per block, at least 1 and at most p_l (the dense `Projector`'s rule)."""
    total = blocks[-1][1].stop
    return [max(1, min(b.stop - b.start, round(k * (b.stop - b.start) / total))) for _, b in blocks]


def kronecker_budget(blocks: list[tuple[str, slice]], k: int) -> list[int]:
    """The Kronecker projector's budget: the smallest blocks are kept exact while together they
    take at most k/4 coordinates, the rest of k is shared in proportion to size.

    Small blocks are usually the scalar head, which holds most of the gradient's energy in a
    reward model (a LoRA factor's gradient is scaled by the other factor); a size-proportional
    share would sketch it down to a handful of coordinates and dominate the sketch's error.
    """
    sizes = [b.stop - b.start for _, b in blocks]
    exact: set[int] = set()
    used = 0
    for index in sorted(range(len(sizes)), key=lambda i: sizes[i]):
        if used + sizes[index] > k // 4:
            break
        exact.add(index)
        used += sizes[index]
    rest = sum(size for i, size in enumerate(sizes) if i not in exact)
    left = max(1, k - used)
    return [
        size if i in exact else max(1, min(size, round(left * size / max(rest, 1))))
        for i, size in enumerate(sizes)
    ]


def dense_memory_bytes(blocks: list[tuple[str, slice]], k: int) -> int:
    """Bytes the dense block-diagonal fp32 Gaussian sketch would store: Σ_l p_l k_l · 4."""
    return sum(
        (b.stop - b.start) * k_l * 4
        for (_, b), k_l in zip(blocks, block_budget(blocks, k), strict=True)
    )


def _split(total: int, sizes: list[int]) -> list[int]:
    """`total` outputs shared among parameters in proportion to their sizes, each at least 1."""
    whole = sum(sizes)
    return [max(1, round(total * size / whole)) for size in sizes]


def _sides(out: int, inp: int, target: int) -> tuple[int, int]:
    """(k_out, k_in) with k_out·k_in ≈ target, k_out ≤ out and k_in ≤ in.

    For a rank-one G = u vᵀ the sketched squared norm is ‖P_out u‖²‖P_in v‖², of relative variance
    (1 + 2/k_out)(1 + 2/k_in) − 1, where a side kept whole contributes no factor. Candidates: the
    balanced split k_out ≈ k_in ≈ √target (the optimum when both sides are random) and each side
    kept whole; the one of least variance wins (LoRA's rank side stays whole once target ≳ r²/4).
    """

    def variance(k_out: int, k_in: int) -> float:
        left = 1.0 if k_out == out else 1.0 + 2.0 / k_out
        right = 1.0 if k_in == inp else 1.0 + 2.0 / k_in
        return left * right - 1.0

    root = max(1, round(target**0.5))
    candidates = []
    for k_out in (min(out, root), out, max(1, min(out, round(target / inp)))):
        k_in = max(1, min(inp, round(target / k_out)))
        candidates.append((variance(k_out, k_in), k_out * out + k_in * inp, k_out, k_in))
    _, _, k_out, k_in = min(candidates)
    return k_out, k_in


def _generator(seed: int, index: int) -> torch.Generator:
    """A CPU generator for parameter `index`, seeded from (seed, index) through numpy's
    SeedSequence so neighbouring seeds and indices give unrelated streams on every device."""
    state = np.random.SeedSequence([seed % 2**64, index]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & (2**63 - 1))


@dataclass
class ParameterSketch:
    """How one trainable parameter's gradient is projected.

    `source` is its slice of the flat gradient, `target` its slice of the output. For 'kronecker'
    `left` is P_out [k_out, out] and `right` P_in [k_in, in] (None where that side is kept whole);
    for 'dense' `matrix` is M [numel, k] (output flat @ M); 'identity' stores nothing.
    """

    name: str
    shape: tuple[int, ...]
    kind: str
    out_shape: tuple[int, ...]
    source: slice
    target: slice
    left: Tensor | None = None
    right: Tensor | None = None
    matrix: Tensor | None = None

    def stored(self) -> list[Tensor]:
        return [m for m in (self.left, self.right, self.matrix) if m is not None]

    def apply(self, x: Tensor) -> Tensor:
        """[..., numel] -> [..., prod(out_shape)], in x's dtype."""
        if self.kind == "identity":
            return x
        if self.kind == "dense":
            assert self.matrix is not None
            return x @ self.matrix.to(x.dtype)
        out, inp = self.shape
        lead = x.shape[:-1]
        g = x.reshape(*lead, out, inp)
        left = self.left.to(x.dtype) if self.left is not None else None
        right = self.right.to(x.dtype) if self.right is not None else None
        k_out, k_in = self.out_shape
        # Both association orders give P_out G P_inᵀ; take the one with fewer multiply-adds.
        right_first = out * inp * k_in + k_out * out * k_in
        left_first = k_out * out * inp + k_out * inp * k_in
        if right is not None and (left is None or right_first <= left_first):
            g = g @ right.T
            if left is not None:
                g = left @ g
        else:
            assert left is not None
            g = left @ g
            if right is not None:
                g = g @ right.T
        return g.reshape(*lead, k_out * k_in)


class KroneckerProjector:
    """Seeded block-structured projection of the flat trainable-parameter space, p -> `dim` ≈ k.

    Block l (a LoRA module's A and B, or the head) of size p_l gets k_l ≈ k·p_l/p outputs (at
    least 1, at most p_l), shared among its parameters by size; each parameter is then projected
    on its own (see `ParameterSketch`) and the outputs are concatenated in flat order, so every
    block keeps its own output coordinates (`out_blocks`, for DataInf's per-layer inverse).
    Random matrices come from CPU generators seeded by (seed, parameter index), so a projector is
    the same on every device; they are stored in `dtype` on `device`.
    """

    def __init__(
        self,
        names: list[str],
        shapes: list[tuple[int, ...]],
        blocks: list[tuple[str, slice]],
        k: int,
        seed: int,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if k <= 0:
            raise ValueError(f"k must be a positive integer (got {k})")
        if len(names) != len(shapes) or not names:
            raise ValueError("names and shapes must be non-empty and of equal length")
        numels = [int(torch.Size(s).numel()) for s in shapes]
        offsets = np.concatenate([[0], np.cumsum(numels)]).tolist()
        _check_blocks(blocks, offsets)
        self.k, self.seed = k, seed
        self.in_blocks = blocks
        self.parameters: list[ParameterSketch] = []
        self.out_blocks: list[tuple[str, slice]] = []
        position = 0
        for (block_name, block), k_l in zip(blocks, kronecker_budget(blocks, k), strict=True):
            members = [j for j in range(len(names)) if block.start <= offsets[j] < block.stop]
            block_start = position
            for j, k_j in zip(members, _split(k_l, [numels[j] for j in members]), strict=True):
                sketch = _sketch(
                    names[j], shapes[j], slice(offsets[j], offsets[j + 1]), position, k_j
                )
                _draw(sketch, seed, j, device, dtype)
                self.parameters.append(sketch)
                position = sketch.target.stop
            self.out_blocks.append((block_name, slice(block_start, position)))
        self.dim = position
        self.n_inputs = offsets[-1]
        self.memory_bytes = sum(
            m.numel() * m.element_size() for s in self.parameters for m in s.stored()
        )

    @classmethod
    def for_model(cls, rm: RewardModel, k: int, seed: int) -> KroneckerProjector:
        """The projector of a reward model's trainable parameters, on its device, fp32."""
        return cls(rm.names, rm.shapes, rm.blocks(), k, seed, rm.device)

    def __call__(self, flat: Tensor) -> Tensor:
        """[..., p] -> [..., dim], in flat's dtype (any leading dimensions)."""
        if flat.shape[-1] != self.n_inputs:
            raise ValueError(f"expected [..., {self.n_inputs}] gradients, got {tuple(flat.shape)}")
        return torch.cat([s.apply(flat[..., s.source]) for s in self.parameters], dim=-1)

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary for a job's metrics."""
        counts = {kind: sum(s.kind == kind for s in self.parameters) for kind in KINDS}
        return {
            "kind": "kronecker",
            "k": self.k,
            "dim": self.dim,
            "seed": self.seed,
            "memory_bytes": self.memory_bytes,
            "dense_memory_bytes": dense_memory_bytes(self.in_blocks, self.k),
            "parameters": counts,
        }


def _check_blocks(blocks: list[tuple[str, slice]], offsets: list[int]) -> None:
    """Blocks must tile [0, p) in order and never cut through a parameter."""
    if not blocks:
        raise ValueError("blocks is empty")
    boundaries = set(offsets)
    expected = 0
    for name, block in blocks:
        if block.start != expected or block.stop <= block.start:
            raise ValueError(f"block {name!r} {block} does not continue the tiling at {expected}")
        if block.stop not in boundaries:
            raise ValueError(f"block {name!r} ends inside a parameter (at {block.stop})")
        expected = block.stop
    if expected != offsets[-1]:
        raise ValueError(f"blocks cover [0, {expected}) but the parameters hold {offsets[-1]}")


def _sketch(
    name: str, shape: tuple[int, ...], source: slice, position: int, target: int
) -> ParameterSketch:
    """The projection of one parameter of this shape with about `target` outputs."""
    numel = source.stop - source.start
    out_shape: tuple[int, ...]
    if target >= numel:
        kind, out_shape = "identity", (numel,)
    elif len(shape) == 2:
        k_out, k_in = _sides(shape[0], shape[1], target)
        kind, out_shape = "kronecker", (k_out, k_in)
        if (k_out, k_in) == shape:
            kind, out_shape = "identity", (numel,)
    else:
        kind, out_shape = "dense", (target,)
    size = int(np.prod(out_shape))
    return ParameterSketch(
        name, tuple(shape), kind, out_shape, source, slice(position, position + size)
    )


def _draw(
    sketch: ParameterSketch, seed: int, index: int, device: torch.device, dtype: torch.dtype
) -> None:
    """Fill the sketch's random matrices: fp32 N(0, 1/k) draws, P_out before P_in."""
    generator = _generator(seed, index)

    def gaussian(rows: int, cols: int, k: int) -> Tensor:
        draw = torch.randn(rows, cols, generator=generator, dtype=torch.float32) / k**0.5
        return draw.to(device=device, dtype=dtype)

    if sketch.kind == "dense":
        numel, k_t = sketch.source.stop - sketch.source.start, sketch.out_shape[0]
        sketch.matrix = gaussian(numel, k_t, k_t)
    elif sketch.kind == "kronecker":
        (out, inp), (k_out, k_in) = sketch.shape, sketch.out_shape
        if k_out < out:
            sketch.left = gaussian(k_out, out, k_out)
        if k_in < inp:
            sketch.right = gaussian(k_in, inp, k_in)
