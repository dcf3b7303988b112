"""Per-pair margin gradients d_i = ∇_θ Δ_i over the trainable parameters, batched with torch.func.

The loss gradient follows without a second pass: g_i = ∇ℓ_i = −σ(−Δ_i) d_i = −(1 − p_i) d_i with
p_i = σ(Δ_i). Each pair is one vmapped call of a 2-sequence forward (chosen and rejected through the
same weights), so both forwards count. Computed in fp32, eval mode, in chunks of bounded memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from worker.influence.model import Encoded, RewardModel
from worker.influence.train import ShouldCancel, check_cancel


class GradientProjector(Protocol):
    """A linear map of flat gradients [..., p] -> [..., dim] (KroneckerProjector, Projector)."""

    dim: int

    def __call__(self, flat: Tensor) -> Tensor: ...


class Projector:
    """Seeded block-diagonal Gaussian sketch of the flat parameter space, p -> k dimensions.

    Block l (one LoRA module, or the head) of size p_l maps to k_l ≈ k·p_l/p dimensions with a
    matrix of i.i.d. N(0, 1/k_l) entries, so E[(P x)ᵀ(P y)] = xᵀy and every block keeps its own
    coordinates (DataInf stays per layer). Memory Σ_l p_l k_l, far below p·k.
    """

    def __init__(self, blocks: list[tuple[str, slice]], k: int, seed: int, device: torch.device):
        total = blocks[-1][1].stop
        self.in_blocks = blocks
        self.matrices: list[Tensor] = []
        self.out_blocks: list[tuple[str, slice]] = []
        offset = 0
        for b, (name, block) in enumerate(blocks):
            p_l = block.stop - block.start
            k_l = max(1, min(p_l, round(k * p_l / total)))
            generator = torch.Generator().manual_seed(seed * 1_000_003 + b)
            matrix = torch.randn(p_l, k_l, generator=generator) / k_l**0.5
            self.matrices.append(matrix.to(device))
            self.out_blocks.append((name, slice(offset, offset + k_l)))
            offset += k_l
        self.dim = offset

    def __call__(self, flat: Tensor) -> Tensor:
        """[..., p] -> [..., k]."""
        parts = [
            flat[..., block] @ m
            for (_, block), m in zip(self.in_blocks, self.matrices, strict=True)
        ]
        return torch.cat(parts, dim=-1)


def per_pair_margin_gradients(
    rm: RewardModel,
    enc: Encoded,
    chunk: int = 32,
    params: dict[str, Tensor] | None = None,
    projector: GradientProjector | None = None,
    progress: Callable[[float], None] | None = None,
    should_cancel: ShouldCancel | None = None,
) -> tuple[np.ndarray, Tensor]:
    """Margins Δ [n] (float64, numpy) and margin gradients D [n, p] (or [n, k] projected), fp32.

    Pairs are processed in chunks sorted by length (less padding) and returned in `enc` order.
    `params` defaults to the model's current trainable parameters (pass a checkpoint for TracIn).
    """
    from torch.func import grad_and_value, vmap

    rm.module.eval()
    theta = {k: v.detach() for k, v in (params or rm.params).items()}

    def margin_of_pair(p: dict[str, Tensor], ids: Tensor, mask: Tensor) -> Tensor:
        return rm.margins(p, ids.unsqueeze(0), mask.unsqueeze(0))[0]

    batched = vmap(grad_and_value(margin_of_pair), in_dims=(None, 0, 0))
    n = len(enc)
    dim = projector.dim if projector is not None else rm.n_params
    dtype = next(iter(theta.values())).dtype  # fp32 in the engine; fp64 in exactness tests
    gradients = torch.empty((n, dim), dtype=dtype, device=rm.device)
    margins = np.empty(n, dtype=np.float64)
    order = np.argsort(enc.lengths(), kind="stable")
    for start in range(0, n, chunk):
        index = order[start : start + chunk].tolist()
        ids, mask = enc.batch(index, rm.device)
        with torch.no_grad():
            grads, values = batched(theta, ids, mask)
            flat = rm.flatten(grads)
            if projector is not None:
                flat = projector(flat)
        gradients[torch.as_tensor(index, device=rm.device)] = flat.to(dtype)
        margins[index] = values.double().cpu().numpy()
        check_cancel(should_cancel)
        if progress is not None:
            progress(min(1.0, (start + chunk) / n))
    return margins, gradients


def per_pair_margin_gradients_loop(
    rm: RewardModel, enc: Encoded, params: dict[str, Tensor] | None = None
) -> tuple[np.ndarray, Tensor]:
    """The naive reference: one autograd backward per pair (batch size 1). Same outputs as
    `per_pair_margin_gradients` without projection; used by tests and the benchmark only."""
    rm.module.eval()
    theta = {k: v.detach().clone().requires_grad_(True) for k, v in (params or rm.params).items()}
    rows, margins = [], []
    for i in range(len(enc)):
        ids, mask = enc.batch([i], rm.device)
        margin = rm.margins(theta, ids, mask)[0]
        grads = torch.autograd.grad(margin, list(theta.values()))
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
        margins.append(margin.item())
    return np.asarray(margins, dtype=np.float64), torch.stack(rows)
