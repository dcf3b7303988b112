"""What the detection benchmark says about each method, shipped with the engine for job metrics.

`bench/detection.py` writes `detection_table.json` beside this file from its committed results
(head mode, MiniLM, ~1,000 training pairs per cell; see bench/results/detection/detection.md):
every method's mean AUROC across the benchmark's datasets and whether its paired 95% interval over
all cells lies above the loss and above the length heuristic. A job quotes it so a user can see
which scores are trustworthy at this data size, without reading the benchmark.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

TABLE = Path(__file__).with_name("detection_table.json")


@lru_cache(maxsize=1)
def _load() -> dict | None:
    if not TABLE.exists():
        return None
    return json.loads(TABLE.read_text())


def method_benchmark(mode: str, n_train: int) -> dict | None:
    """The benchmark's verdict per method, with a note on how far it applies to this job."""
    table = _load()
    if table is None:
        return None
    notes = []
    if mode != table["mode"]:
        notes.append(f"measured in {table['mode']} mode; this job ran in {mode} mode")
    low, high = table["n_train_range"]
    if not low / 3 <= n_train <= high * 3:
        notes.append(f"measured at {low}–{high} training pairs; this job has {n_train}")
    return {**table, "applies": not notes, "notes": notes}
