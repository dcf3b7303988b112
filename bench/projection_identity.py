"""Can exact inner products rescue projected influence? A negative result, measured.

The sharded engine can compute b_i = d_iᵀg_val exactly in the gradient pass (g_val is known after
training), and the exact identity H⁻¹ = (1/λ)(I − H⁻¹G) gives

    d_iᵀH⁻¹g_val = (1/λ) (b_i − d_iᵀH⁻¹(G g_val)),

where G g_val = (1/n) Σ_j w_j b_j d_j lies in the span of the training gradients, so the part of
g_val no gradient sees (which a sketch leaks into every score, amplified by 1/λ) drops out. Only
the second term would be sketched ("level 1"); "level 2" applies the identity once more and needs
d_iᵀG g_val exactly, i.e. a second pass. This script trains the hh-flip10 model of
bench.projection once (1,000 pairs, MiniLM LoRA, 2 epochs), keeps its exact gradients, and
compares both with the plain projected solve, Spearman against the exact influence.

    .venv/bin/python -m bench.projection_identity [--cache /tmp/hh-flip10-grads.npz]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from bench.lib.hh import hh_flip10_subset
from bench.lib.paths import HH_HELPFUL_TEST
from worker.influence.audit import run_audit
from worker.influence.config import EngineConfig
from worker.influence.projection import KroneckerProjector


def gradients(cache: Path) -> dict:
    if cache.exists():
        return dict(np.load(cache, allow_pickle=False)) | json.loads(
            cache.with_suffix(".json").read_text()
        )
    train, val, mask = hh_flip10_subset(HH_HELPFUL_TEST, 1000, 100)
    config = EngineConfig(
        model="minilm",
        mode="lora",
        epochs=2,
        max_length=128,
        projection_dim=None,
        methods=["loss", "influence"],
        default_method="influence",
        device="cpu",
        seed=0,
    )
    state = run_audit(train, val, config, keep_state=True).state
    assert state is not None and state.rm is not None and state.grads is not None
    arrays = {
        "grads": state.grads.float().numpy(),
        "val_grads": state.val_grads.float().numpy(),
        "margins": state.margins,
        "val_margins": state.val_margins,
    }
    meta = {
        "names": state.rm.names,
        "shapes": [list(s) for s in state.rm.shapes],
        "blocks": [[name, b.start, b.stop] for name, b in state.rm.blocks()],
    }
    np.savez(cache, **arrays)
    cache.with_suffix(".json").write_text(json.dumps(meta))
    return arrays | meta


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/hh-flip10-grads.npz"))
    parser.add_argument("--ks", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    data = gradients(args.cache)
    d, v = data["grads"].astype(np.float64), data["val_grads"].astype(np.float64)
    m, vm = data["margins"], data["val_margins"]
    sigmoid = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    n, p = d.shape
    w, c = sigmoid(m) * (1 - sigmoid(m)), -sigmoid(-m)
    g = v.T @ (-sigmoid(-vm)) / len(vm)
    lam = float((w[:, None] * d**2).sum() / n / p)  # damping 1 × trace(G)/p, the engine's default
    gram, b = d @ d.T, d @ g
    root = np.sqrt(w)
    inner = n * lam * np.eye(n) + root[:, None] * gram * root[None, :]
    exact = -c * (b - gram @ (root * np.linalg.solve(inner, root * b))) / lam  # Woodbury, exact
    gg = d.T @ (w * b) / n
    b2 = d @ gg
    names, shapes = data["names"], [tuple(s) for s in data["shapes"]]
    blocks = [(name, slice(s, e)) for name, s, e in data["blocks"]]
    print(f"n = {n}, p = {p:,}, λ = {lam:.3g}; nλ / mean non-zero eigenvalue of G = {n / p:.4f}")
    print("| k | seed | projected solve | level 1 (b exact) | level 2 (b, dᵀGg exact) |")
    print("|---|---|---|---|---|")
    for k in args.ks:
        for seed in args.seeds:
            projector = KroneckerProjector(names, shapes, blocks, k, seed, torch.device("cpu"))

            def project(x: np.ndarray, projector=projector) -> np.ndarray:
                return np.concatenate(
                    [
                        projector(torch.from_numpy(x[s : s + 128])).numpy()
                        for s in range(0, len(x), 128)
                    ]
                )

            dk, gk = project(d), project(g[None])[0]
            h = dk.T @ (w[:, None] * dk) / n + lam * np.eye(dk.shape[1])
            plain = dk @ np.linalg.solve(h, gk)
            level1 = (b - dk @ np.linalg.solve(h, dk.T @ (w * b) / n)) / lam
            level2 = b / lam - b2 / lam**2 + dk @ np.linalg.solve(h, dk.T @ (w * b2) / n) / lam**2
            rho = [spearmanr(-c * x, exact)[0] for x in (plain, level1, level2)]
            print(f"| {k} | {seed} | " + " | ".join(f"{r:.3f}" for r in rho) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
