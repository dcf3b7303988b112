"""The Kronecker-structured gradient projection: shapes, seeding, exactness of its structure,
unbiased inner products, memory, and agreement with projection inside the per-pair gradient pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.factories import synthetic_pairs, tiny_config
from worker.influence.gradients import per_pair_margin_gradients
from worker.influence.model import RewardModel, add_lora, encode, load_backbone
from worker.influence.projection import KroneckerProjector, dense_memory_bytes

CPU = torch.device("cpu")

# A LoRA-like module (A [r, in], B [out, r]), a square linear layer with its bias, a head
# (weight [1, h], bias [1]) and a 1-D parameter of its own large enough to need the dense sketch.
NAMES = ["m1.lora_A", "m1.lora_B", "m2.weight", "m2.bias", "head.weight", "head.bias", "vec"]
SHAPES: list[tuple[int, ...]] = [(4, 30), (20, 4), (24, 24), (24,), (1, 20), (1,), (300,)]
BLOCKS = [
    ("m1", slice(0, 200)),
    ("m2", slice(200, 800)),
    ("head", slice(800, 821)),
    ("vec", slice(821, 1121)),
]
P = 1121


def projector(k: int = 160, seed: int = 0, dtype: torch.dtype = torch.float32):
    return KroneckerProjector(NAMES, SHAPES, BLOCKS, k, seed, CPU, dtype)


def vectors(count: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(count, P, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_output_shape_and_blocks() -> None:
    proj = projector()
    x = vectors(5)
    out = proj(x)
    assert out.shape == (5, proj.dim)
    assert [name for name, _ in proj.out_blocks] == [name for name, _ in BLOCKS]
    position = 0
    for _, block in proj.out_blocks:
        assert block.start == position and block.stop > block.start
        position = block.stop
    assert position == proj.dim
    counts = proj.describe()["parameters"]
    # The 21-coordinate head fits the exact share (k/4 = 40): kept whole, the rest sketched.
    assert counts == {"identity": 2, "kronecker": 3, "dense": 2}
    head = dict(proj.out_blocks)["head"]
    assert head.stop - head.start == 21
    assert torch.equal(out[:, head], x[:, 800:821])
    # Any leading dimensions, each row projected on its own.
    batched = proj(x.reshape(5, 1, P).expand(5, 3, P))
    assert torch.allclose(batched, out[:, None, :].expand(5, 3, proj.dim), atol=1e-5)
    assert torch.allclose(proj(x[2]), out[2], atol=1e-5)


def test_same_seed_same_projection_other_seed_differs() -> None:
    x = vectors(3)
    assert torch.equal(projector(seed=7)(x), projector(seed=7)(x))
    assert not torch.allclose(projector(seed=7)(x), projector(seed=8)(x), atol=1e-3)
    # The matrices are drawn in fp32 whatever the storage dtype.
    in_double = projector(seed=7, dtype=torch.float64)(x.double())
    assert torch.allclose(in_double.float(), projector(seed=7)(x), atol=1e-5)


def test_linear() -> None:
    proj = projector()
    x, y = vectors(2, seed=1, dtype=torch.float64)
    proj64 = projector(dtype=torch.float64)
    assert torch.allclose(proj64(2.5 * x - 0.75 * y), 2.5 * proj64(x) - 0.75 * proj64(y))
    assert proj(torch.zeros(P)).abs().max() == 0


def test_large_budget_is_the_identity() -> None:
    proj = projector(k=P)
    x = vectors(4)
    assert proj.dim == P and proj.memory_bytes == 0
    assert torch.equal(proj(x), x)
    assert proj.describe()["parameters"] == {"identity": len(NAMES), "kronecker": 0, "dense": 0}


def test_two_dimensional_parameters_are_kronecker_products() -> None:
    """The output of a matrix parameter is (P_out ⊗ P_in) vec G, its other outputs untouched."""
    proj = projector(seed=3)
    for sketch in proj.parameters:
        if sketch.kind != "kronecker":
            continue
        out, inp = sketch.shape
        left = sketch.left if sketch.left is not None else torch.eye(out)
        right = sketch.right if sketch.right is not None else torch.eye(inp)
        g = torch.randn(out, inp, generator=torch.Generator().manual_seed(out * inp))
        x = torch.zeros(P)
        x[sketch.source] = g.reshape(-1)
        y = proj(x)
        np.testing.assert_allclose(
            y[sketch.target].numpy(), (torch.kron(left, right) @ g.reshape(-1)).numpy(), atol=1e-5
        )
        rest = torch.ones(proj.dim, dtype=torch.bool)
        rest[sketch.target] = False
        assert y[rest].abs().max() == 0
    sketches = {s.name: s for s in proj.parameters}
    assert sketches["m2.weight"].left is not None and sketches["m2.weight"].right is not None
    assert sketches["m1.lora_A"].left is None  # the rank side is kept whole
    assert sketches["head.bias"].kind == "identity" and sketches["vec"].kind == "dense"


def test_inner_products_preserved_in_expectation() -> None:
    """E[(Px)ᵀ(Py)] = xᵀy and E‖Px‖² = ‖x‖²: the mean over 200 seeds is within 4 standard errors,
    and within 5% (the standard errors here are 1-2% of xᵀy)."""
    x, noise = vectors(2, seed=5, dtype=torch.float64)
    y = x + 0.5 * noise
    for a, b in ((x, y), (x, x)):
        exact = float(a @ b)
        values = []
        for seed in range(200):
            proj = projector(k=160, seed=seed, dtype=torch.float64)
            values.append(float(proj(a) @ proj(b)))
        mean, error = float(np.mean(values)), float(np.std(values, ddof=1) / np.sqrt(200))
        assert abs(mean - exact) < 4 * error
        assert abs(mean - exact) < 0.05 * abs(exact)
        assert error < 0.03 * abs(exact)


def test_memory_far_below_the_dense_sketch() -> None:
    """LoRA A [8, 4096], B [4096, 8] and a head [1, 4096] + [1] at k = 1024.

    Each LoRA factor keeps its rank side whole: I_8 ⊗ P_in with P_in [60, 4096], 1/128 of the
    dense block's Σ p_l k_l. The head is a vector, where no structure saves anything, and is
    stored as densely as before: with a single LoRA module it is a third of the total.
    """
    names = ["q.lora_A", "q.lora_B", "head.weight", "head.bias"]
    shapes: list[tuple[int, ...]] = [(8, 4096), (4096, 8), (1, 4096), (1,)]
    blocks = [("q", slice(0, 65536)), ("head", slice(65536, 69633))]
    proj = KroneckerProjector(names, shapes, blocks, 1024, 0, CPU)
    assert [s.out_shape for s in proj.parameters] == [(8, 60), (60, 8), (1, 60), (1,)]
    assert proj.memory_bytes == 3 * 60 * 4096 * 4
    dense = dense_memory_bytes(blocks, 1024)
    assert dense == (65536 * 964 + 4097 * 60) * 4
    lora_bytes = sum(m.numel() * 4 for s in proj.parameters[:2] for m in s.stored())
    assert lora_bytes < 0.01 * dense_memory_bytes(blocks[:1], 964)
    assert proj.memory_bytes < 0.012 * dense
    assert proj.describe()["dense_memory_bytes"] == dense
    square = KroneckerProjector(["w"], [(4096, 4096)], [("w", slice(0, 4096**2))], 1024, 0, CPU)
    assert square.parameters[0].out_shape == (32, 32)
    assert square.memory_bytes == 2 * 32 * 4096 * 4


def test_blocks_must_tile_the_parameters() -> None:
    with pytest.raises(ValueError, match="inside a parameter"):
        KroneckerProjector(NAMES, SHAPES, [("a", slice(0, 100)), ("b", slice(100, P))], 64, 0, CPU)
    with pytest.raises(ValueError, match="cover"):
        KroneckerProjector(NAMES, SHAPES, BLOCKS[:2], 64, 0, CPU)


def test_projection_inside_the_gradient_pass_equals_projecting_exact_gradients() -> None:
    config = tiny_config()
    backbone, tokenizer = load_backbone(config)
    rm = RewardModel(add_lora(backbone, config), CPU)
    with torch.no_grad():  # LoRA B starts at zero, which would leave A's gradients zero
        generator = torch.Generator().manual_seed(0)
        for name, param in rm.params.items():
            if "lora_B" in name:
                param.copy_(0.1 * torch.randn(param.shape, generator=generator))
    enc = encode(tokenizer, synthetic_pairs(10, 3), 48)
    proj = KroneckerProjector.for_model(rm, 256, seed=1)
    assert proj.dim < rm.n_params and proj.describe()["parameters"]["kronecker"] > 0
    assert [name for name, _ in proj.out_blocks] == [name for name, _ in rm.blocks()]
    margins, exact = per_pair_margin_gradients(rm, enc, chunk=4)
    proj_margins, projected = per_pair_margin_gradients(rm, enc, chunk=4, projector=proj)
    np.testing.assert_allclose(proj_margins, margins, rtol=1e-6)
    expected = proj(exact)
    assert projected.shape == (len(enc), proj.dim)
    assert float((projected - expected).abs().max() / expected.abs().max()) < 1e-5


def test_projected_influence_warns_only_outside_its_measured_fidelity() -> None:
    """The default influence damping is one at which projected influence kept the exact ranking
    (bench/results/projection/damping-*.md); a weaker damping or a smaller sketch says so."""
    from worker.influence.config import EngineConfig
    from worker.influence.stream import (
        FAITHFUL_INFLUENCE_DAMPING,
        FAITHFUL_INFLUENCE_DIM,
        choose_space,
    )

    p = 10**6
    default = choose_space(p, 100, EngineConfig(projection_dim=FAITHFUL_INFLUENCE_DIM))
    assert default.kind == "projected" and default.warnings == ()
    weak = EngineConfig(
        projection_dim=FAITHFUL_INFLUENCE_DIM, influence_damping=FAITHFUL_INFLUENCE_DAMPING / 10
    )
    (warning,) = choose_space(p, 100, weak).warnings
    assert "rough ranking" in warning and "influence_damping" in warning
    (small,) = choose_space(p, 100, EngineConfig(projection_dim=1024)).warnings
    assert "1024-dimensional" in small
    no_influence = EngineConfig(
        projection_dim=1024, methods=["loss", "gradient_similarity"], default_method="loss"
    )
    assert choose_space(p, 100, no_influence).warnings == ()
    # Too many exact gradients for memory: projected automatically, at the measured size.
    auto = choose_space(p, 10**5, EngineConfig())
    assert auto.projection_dim == FAITHFUL_INFLUENCE_DIM and len(auto.warnings) == 1
