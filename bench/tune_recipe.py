"""Training-recipe search for the default reward model, on hh-flip10's clean validation split only.

The test split and the flip mask are never read: recipes are ranked by validation loss and
accuracy of the model trained on the 1,000 noisy training pairs.

    .venv/bin/python -m bench.tune_recipe --grid small
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

from bench.lib.hh import hh_flip10
from bench.lib.paths import HH_HELPFUL_TEST, RESULTS
from bench.lib.report import write_json
from worker.influence.audit import run_audit
from worker.influence.config import EngineConfig

GRIDS: dict[str, dict[str, list]] = {
    "small": {"learning_rate": [5e-4, 1e-3, 2e-3], "epochs": [2, 4], "lora_r": [8]},
    "medium": {
        "learning_rate": [5e-4, 1e-3, 2e-3, 4e-3],
        "epochs": [2, 4],
        "max_length": [128, 256],
    },
    "wide": {
        "learning_rate": [5e-4, 1e-3, 2e-3, 4e-3],
        "epochs": [2, 3, 5],
        "lora_r": [8, 16],
        "max_length": [128, 256],
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", default="small", choices=sorted(GRIDS))
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--data", type=Path, default=HH_HELPFUL_TEST)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    train, val, _test, _mask = hh_flip10(args.data)  # test and flips stay unread
    grid = GRIDS[args.grid]
    rows = []
    for values in itertools.product(*grid.values()):
        recipe = dict(zip(grid, values, strict=True))
        for seed in map(int, args.seeds.split(",")):
            config = EngineConfig(
                model=args.model, methods=["loss"], seed=seed, device=args.device, **recipe
            )
            start = time.perf_counter()
            metrics = run_audit(train, val, config).metrics.model_dump()
            row = {
                **recipe,
                "seed": seed,
                "val_accuracy": metrics["val_accuracy"],
                "val_loss": metrics["val_loss"],
                "train_loss": metrics["train_loss"],
                "seconds": time.perf_counter() - start,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    rows.sort(key=lambda r: r["val_loss"])
    write_json(args.out / f"tune_recipe_{args.grid}.json", rows)
    print("best by validation loss:", json.dumps(rows[0]))


if __name__ == "__main__":
    main()
