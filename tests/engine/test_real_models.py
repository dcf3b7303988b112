"""The engine on the real backbones (minutes on a 2-core CPU): `pytest -m slow tests/engine`."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest

from backend.ingest.parsing import split_transcripts
from tests.factories import noisy_split
from worker.influence.audit import run_audit
from worker.influence.config import EngineConfig
from worker.influence.data import Pair

DEVICE = os.environ.get("PREFAUDIT_TEST_DEVICE", "cpu")
HH_TEST = Path(__file__).resolve().parents[3] / "shared" / "data" / "hh-rlhf"


def hh_pairs(n: int) -> list[Pair]:
    pairs = []
    with gzip.open(HH_TEST / "helpful-base-test.jsonl.gz", "rt", encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            pairs.append(Pair(*split_transcripts(record["chosen"], record["rejected"])))
            if len(pairs) == n:
                return pairs
    return pairs


# The same audit runs through the API and a worker in tests/jobs/test_minilm_audit.py.
@pytest.mark.long
def test_minilm_audit_of_real_pairs() -> None:
    pairs = hh_pairs(240)
    result = run_audit(pairs[:200], pairs[200:], EngineConfig(model="minilm", device=DEVICE))
    assert result.metrics.model_dump()["n_trainable_params"] == 74_113  # ANCHORS.md's count
    assert len(result.metrics.model_dump()["history"]) == 2
    for name, values in result.scores.items():
        assert values.shape == (200,) and np.all(np.isfinite(values)), name
    np.testing.assert_array_equal(result.scores["harm"], result.scores["harm_length"])
    assert result.metrics.model_dump()["influence"]["relative_residual"] < 1e-4


@pytest.mark.slow
def test_smollm2_preset_trains_a_decoder_with_lora() -> None:
    train, val, flips = noisy_split(n_train=24, n_val=8, flips=(3,))
    config = EngineConfig(model="smollm2-135m", epochs=1, max_length=48, batch_size=8, device="cpu")
    result = run_audit(train, val, config)
    # q_proj and v_proj LoRA (r=8) in 30 layers of width 576 (kv 192) plus the score head.
    assert (
        result.metrics.model_dump()["n_trainable_params"]
        == 30 * (8 * 576 + 576 * 8 + 8 * 576 + 192 * 8) + 576
    )
    assert np.all(np.isfinite(result.scores["harm_influence"]))
