"""On-disk caches of the benchmarks: keys from the texts and the recipe, atomic writes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from worker.influence.data import Pair


def texts_key(dataset: str, model: str, max_length: int, pairs: list[Pair]) -> tuple[dict, str]:
    """(key, name): what decides a backbone's features of `pairs`, and its 16-hex-digit hash."""
    digest = hashlib.sha256()
    for pair in pairs:
        digest.update(json.dumps([pair.prompt, pair.chosen, pair.rejected]).encode())
    key = {
        "dataset": dataset,
        "model": model,
        "max_length": max_length,
        "n": len(pairs),
        "texts_sha256": digest.hexdigest(),
    }
    return key, hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def save_torch(path: Path, payload: dict) -> None:
    """torch.save through a `.partial` file renamed in place: a killed run leaves no half file."""
    import torch  # torch: heavy, only where features are cached

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    torch.save(payload, partial)
    partial.rename(path)


def save_json(path: Path, payload: dict) -> None:
    """A JSON cell (indent 1) through a `.partial` file renamed in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(payload, indent=1))
    partial.rename(path)
