"""Data for the noise study: HH-RLHF pairs, seeded splits, nested label flips, cached features.

Nothing here is tuned on the test split: a seed fixes the permutation of a dataset, the test set is
its last `n_test` pairs, validation the `n_val` before them, training the first `n_train`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from backend.ingest.reading import read_pairs
from bench.lib.cache import save_torch, texts_key
from bench.lib.paths import HH_DIR
from worker.influence.config import EngineConfig
from worker.influence.data import Pair, flipped
from worker.influence.features import backbone_features
from worker.influence.model import encode, load_backbone, resolve_device

DEFAULT_DATA_DIR = HH_DIR
DATASETS: tuple[str, ...] = ("helpful-base", "harmless-base")


def load_pairs(dataset: str, data_dir: Path, limit: int | None = None) -> list[Pair]:
    """The HH-RLHF test file of `dataset` in file order (at most `limit` pairs)."""
    path = Path(data_dir) / f"{dataset}-test.jsonl.gz"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; pass --data-dir pointing at hh-rlhf/")
    parsed = read_pairs(path, allow_empty_responses=True)
    if limit is not None:
        parsed = parsed[:limit]
    return [Pair(p.prompt, p.chosen, p.rejected) for p in parsed]


@dataclass(frozen=True)
class Split:
    """Row indices into a dataset: disjoint training, validation and test pairs."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def make_split(n_total: int, n_train: int, n_val: int, n_test: int, seed: int) -> Split:
    """Permute with `default_rng(seed)`: test = last n_test, val = the n_val before, train = first.

    The test and validation sets do not depend on n_train, so regimes of different training size
    share them within a seed.
    """
    if n_train + n_val + n_test > n_total:
        raise ValueError(
            f"n_train {n_train} + n_val {n_val} + n_test {n_test} exceeds the {n_total} pairs"
        )
    perm = np.random.default_rng(seed).permutation(n_total)
    test = perm[n_total - n_test :]
    val = perm[n_total - n_test - n_val : n_total - n_test]
    return Split(train=perm[:n_train], val=val, test=test)


def flip_mask(n_train: int, noise: float, seed: int) -> np.ndarray:
    """Which training pairs get chosen/rejected swapped: round(noise · n) of them.

    Nested across noise levels for one seed (the 10% flips contain the 5% flips), drawn from
    `default_rng([seed, 1])` so it never coincides with the split's permutation.
    """
    order = np.random.default_rng([seed, 1]).permutation(n_train)
    mask = np.zeros(n_train, dtype=bool)
    mask[order[: int(round(noise * n_train))]] = True
    return mask


def noisy_pairs(pairs: list[Pair], index: np.ndarray, flips: np.ndarray) -> list[Pair]:
    """pairs[index] with the flagged ones flipped."""
    return [flipped(pairs[i]) if f else pairs[i] for i, f in zip(index, flips, strict=True)]


def feature_differences(
    dataset: str,
    pairs: list[Pair],
    config: EngineConfig,
    cache_dir: Path,
) -> torch.Tensor:
    """z_i = f(x_i, y_c) − f(x_i, y_r) for every pair, [N, h] float64 on the CPU, cached on disk.

    f is the frozen backbone's pooled output, the input of its scalar head (head mode). The cache
    file is keyed by the model, max_length and a hash of the texts; a mismatch recomputes.
    """
    key, name = texts_key(dataset, config.model, config.max_length, pairs)
    path = Path(cache_dir) / f"noise_features_{dataset}_{name}.pt"
    if path.exists():
        stored = torch.load(path, weights_only=True)
        return stored["z"]
    backbone, tokenizer = load_backbone(config)
    enc = encode(tokenizer, pairs, config.max_length)
    device = resolve_device(config.device)
    pooled = backbone_features(backbone, enc, device, 2 * config.chunk_size(device.type))
    chosen, rejected = pooled["pooler"]
    z = (chosen - rejected).cpu()
    save_torch(path, {"z": z, "key": key})
    return z
