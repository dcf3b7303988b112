"""Shared pieces of the engine tests: synthetic pairs with a learnable preference, tiny configs."""

from __future__ import annotations

import os

import pytest

from tests.factories import noisy_split
from worker.influence.data import Pair

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def noisy_data() -> tuple[list[Pair], list[Pair], list[int]]:
    return noisy_split()
