"""The models a job's tasks run, cached per process across the shards of one job, and the pairs
they tokenise (read from the database in bounded batches)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from sqlalchemy.orm import Session

from worker.influence.config import EngineConfig
from worker.influence.data import Pair as EnginePair
from worker.influence.model import RewardModel, add_lora, encode, load_backbone, resolve_device
from worker.influence.projection import KroneckerProjector
from worker.influence.stream import Space, choose_space
from worker.jobs import store
from worker.jobs.context import JobContext, artifact_store


def config_key(config: EngineConfig) -> str:
    """A config as the cache key of the models built from it (its JSON)."""
    return json.dumps(dataclasses.asdict(config), sort_keys=True)


@lru_cache(maxsize=1)
def _base_model(key: str) -> tuple[Any, Any]:
    """(RewardModel with fresh LoRA adapters, tokenizer) for a config (keyed by its JSON)."""
    config = EngineConfig(**json.loads(key))
    backbone, tokenizer = load_backbone(config)
    return RewardModel(add_lora(backbone, config), resolve_device(config.device)), tokenizer


def fresh_adapters() -> None:
    """Drop the cached model: it may hold trained weights (of this job or another)."""
    _base_model.cache_clear()


def reward_model(context: JobContext, trained: bool) -> tuple[Any, Any]:
    """(reward model, tokenizer); `trained` loads the adapter weights the train stage wrote."""
    rm, tokenizer = _base_model(config_key(context.config))
    if trained:
        weights = artifact_store().get_arrays(context.key("adapter.npz"))
        with torch.no_grad():
            for name, param in rm.params.items():
                param.copy_(torch.from_numpy(weights[name]).to(param.device, param.dtype))
    return rm, tokenizer


@lru_cache(maxsize=1)
def _backbone(key: str) -> tuple[Any, Any]:
    """(backbone with its head, tokenizer) for a config (keyed by its JSON), once per process."""
    return load_backbone(EngineConfig(**json.loads(key)))


def backbone(config: EngineConfig) -> tuple[Any, Any]:
    """The head and pretrained modes' backbone and tokenizer, cached per process."""
    return _backbone(config_key(config))


def projector(context: JobContext, rm: Any, space: Space) -> Any:
    if space.projection_dim is None:
        return None
    return KroneckerProjector.for_model(rm, space.projection_dim, context.config.seed)


def space(context: JobContext, n_params: int, n_train: int) -> Space:
    return choose_space(n_params, n_train, context.config)


def blocks(rm: Any, projector: Any) -> list[slice]:
    found = projector.out_blocks if projector is not None else rm.blocks()
    return [block for _, block in found]


def _encode_rows(tokenizer: Any, rows: Sequence[Any], max_length: int) -> tuple[list, np.ndarray]:
    pairs = [EnginePair(r.prompt, r.chosen, r.rejected) for r in rows]
    enc = encode(tokenizer, pairs, max_length)
    diffs = np.array([len(p.chosen) - len(p.rejected) for p in pairs], dtype=np.float64)
    return enc.ids, diffs


def encode_by_ids(
    session: Session, tokenizer: Any, pair_ids: np.ndarray, max_length: int
) -> tuple[list, np.ndarray]:
    """Token ids and length differences of the given pairs, in the given order."""
    ids: list = [None] * len(pair_ids)
    diffs = np.empty(len(pair_ids))
    for positions, rows in store.row_batches(session, pair_ids):
        encoded, chunk_diffs = _encode_rows(tokenizer, rows, max_length)
        for k, tokens, diff in zip(positions, encoded, chunk_diffs, strict=True):
            ids[k] = tokens
            diffs[k] = diff
    return ids, diffs
