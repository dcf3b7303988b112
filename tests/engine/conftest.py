"""Shared pieces of the engine tests: synthetic pairs with a learnable preference, tiny configs."""

from __future__ import annotations

import os
import random

import pytest

from worker.influence.config import EngineConfig
from worker.influence.data import Pair, flipped

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

TOPICS = [
    "garden",
    "bread",
    "taxes",
    "piano",
    "bicycle",
    "python",
    "coffee",
    "winter",
    "chess",
    "history",
    "paint",
    "camping",
    "music",
    "dogs",
    "rain",
    "sleep",
]
GOOD = ["thank", "you", "happy", "help", "great", "sure", "glad", "welcome", "kind", "clear"]
BAD = ["no", "stupid", "hate", "never", "awful", "ugly", "wrong", "terrible", "rude", "bad"]


def synthetic_pairs(n: int, seed: int) -> list[Pair]:
    """Pairs whose chosen reply uses friendly words and whose rejected reply uses hostile ones."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        topic = rng.choice(TOPICS)
        prompt = f"\n\nHuman: tell me about {topic} please\n\nAssistant:"
        chosen = " " + " ".join(rng.choices(GOOD, k=6)) + f" {topic}"
        rejected = " " + " ".join(rng.choices(BAD, k=6)) + f" {topic}"
        pairs.append(Pair(prompt, chosen, rejected))
    return pairs


def noisy_split(
    n_train: int = 80, n_val: int = 24, flips: tuple[int, ...] = (3, 17, 42)
) -> tuple[list[Pair], list[Pair], list[int]]:
    train = synthetic_pairs(n_train, seed=1)
    train = [flipped(p) if i in flips else p for i, p in enumerate(train)]
    return train, synthetic_pairs(n_val, seed=2), list(flips)


def tiny_config(**overrides: object) -> EngineConfig:
    base: dict = {
        "model": "tiny",
        "epochs": 4,
        "learning_rate": 1e-2,
        "batch_size": 8,
        "max_length": 48,
        "device": os.environ.get("PREFAUDIT_TEST_DEVICE", "cpu"),
        "seed": 0,
        "methods": ["loss", "gradient_similarity", "influence"],
    }
    base.update(overrides)
    return EngineConfig(**base)


@pytest.fixture(scope="session")
def noisy_data() -> tuple[list[Pair], list[Pair], list[int]]:
    return noisy_split()
