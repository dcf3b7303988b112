"""Targeted audits benchmark (issue 20, item 4): plant biased flips in HH-RLHF helpful pairs and
find them with influence, gradient similarity, DataInf and TracIn against a small clean target set
that shows the unbiased behaviour, against influence on the validation split, the loss, the length
heuristic and random; then retrain without each ranking's top k and measure the held-out target
accuracy.

    python -m bench.targeted --quick --out /tmp/t          # tiny model, small, 2 seeds (tests)
    python -m bench.targeted                               # MiniLM head mode, 3 biases × 5 seeds
    python -m bench.targeted --mode lora --out DIR --device cuda --seeds 5   # the LoRA cells

Biases (bench/lib/targeted_biases.py): length, refusal (hedging / refusing answers), question
(answers that ask the user a question back). Split, scoring and retraining: bench/lib/
targeted_cell.py. Resumable: each cell's JSON is cached under OUT/cells/ with a hash of its recipe;
a rerun skips the cells already there and rewrites the summary from every cached cell.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from bench.lib.detection_data import Source, load_source, source_views
from bench.lib.paths import CACHE, RESULTS
from bench.lib.report import write_json
from bench.lib.targeted_biases import BIASES
from bench.lib.targeted_cell import HEAD_METHODS, LORA_METHODS, head_cell, lora_cell
from bench.lib.targeted_report import markdown, plot, summarise
from worker.influence.config import EngineConfig

DATASET = "helpful-base"
SIZES = {
    "full": {
        "train": 400,
        "val": 80,
        "target": 50,
        "test": 50,
        "train_candidates": 60,
        "flip_share": 0.5,
    },
    "lora": {
        "train": 240,
        "val": 60,
        "target": 50,
        "test": 50,
        "train_candidates": 48,
        "flip_share": 0.5,
    },
    "quick": {
        "train": 150,
        "val": 40,
        "target": 20,
        "test": 20,
        "train_candidates": 24,
        "flip_share": 0.5,
    },
}
NOTES = [
    "TracIn needs training checkpoints: the engine computes it in LoRA mode only, so head-mode "
    "tables have no TracIn row. The length heuristic takes its direction from the validation "
    "split. `influence (validation)` is the plain audit's influence (f = the validation loss).",
    "",
]


PER_BIAS = 240
OTHERS = 300


def targeted_source(limit: int | None, dataset: str = DATASET) -> Source:
    """The pairs the cells draw from. With `limit`: the dataset's first `limit` pairs. Without:
    a subset of helpful-base that keeps the backbone's feature pass affordable on a CPU — the
    first PER_BIAS candidates of each bias and the first OTHERS pairs that are no bias's
    candidate, in file order (the whole file's features take an hour on the shared 2-core CPU)."""
    source = load_source(dataset, limit=limit)
    if limit is not None:
        return source
    masks = [bias.candidates(source.pairs) for bias in BIASES.values()]
    keep = np.zeros(len(source.pairs), dtype=bool)
    for mask in masks:
        keep[np.flatnonzero(mask)[:PER_BIAS]] = True
    keep[np.flatnonzero(~np.logical_or.reduce(masks))[:OTHERS]] = True
    return Source(dataset, [p for p, k in zip(source.pairs, keep, strict=True) if k])


MIN_TRAIN_CANDIDATES = 20


def fitted_sizes(sizes: dict, n_candidates: int) -> dict:
    """`sizes`, with fewer training candidates (so fewer planted flips) where the bias has too
    few candidates for all three parts: T and the target test set keep their sizes."""
    spare = n_candidates - sizes["target"] - sizes["test"]
    if spare >= sizes["train_candidates"]:
        return sizes
    if spare < MIN_TRAIN_CANDIDATES:
        raise SystemExit(
            f"{n_candidates} candidate pairs: too few for T ({sizes['target']}), the target "
            f"test set ({sizes['test']}) and {MIN_TRAIN_CANDIDATES} training candidates"
        )
    return {**sizes, "train_candidates": spare}


def _config(args: argparse.Namespace) -> EngineConfig:
    config = EngineConfig(
        model="tiny" if args.quick else "minilm",
        mode=args.mode,
        max_length=args.max_length or (64 if args.quick else 128),
        device=args.device,
        methods=list(LORA_METHODS if args.mode == "lora" else HEAD_METHODS),
        default_method="loss",
    )
    if args.mode == "lora":
        config = dataclasses.replace(config, crossfit_repeats=1)
    elif args.quick:  # one head view and one L2: no hyperparameter grid (the test's speed)
        config = dataclasses.replace(config, head_features="mean", weight_decay=1e-3)
    return config


def _recipe(
    config: EngineConfig, sizes: dict, n_pairs: int, retrain: bool, dataset: str = DATASET
) -> str:
    fields = {k: v for k, v in dataclasses.asdict(config).items() if k != "device"}
    named = [fields, sizes, n_pairs, retrain] + ([dataset] if dataset != DATASET else [])
    blob = json.dumps(named, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny model, small sizes, 2 seeds")
    parser.add_argument("--mode", choices=("head", "lora"), default="head")
    parser.add_argument("--biases", nargs="+", choices=list(BIASES), default=list(BIASES))
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (5; quick 2)")
    parser.add_argument("--max-length", type=int, default=None)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--no-retrain", action="store_true", help="LoRA: skip the retraining arm")
    parser.add_argument("--limit", type=int, default=None, help="first N source pairs")
    parser.add_argument(
        "--dataset",
        default=DATASET,
        choices=("helpful-base", "helpful-rejection-sampled"),
        help="the HH-RLHF helpful split the cells draw from",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "targeted")
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parser.parse_args(argv)
    sizes = SIZES["quick" if args.quick else args.mode if args.mode == "lora" else "full"]
    seeds = args.seeds or (2 if args.quick else 5)
    retrain = not args.no_retrain
    config = _config(args)
    source = targeted_source(args.limit or (800 if args.quick else None), args.dataset)
    recipe = _recipe(config, sizes, len(source.pairs), retrain, args.dataset)
    views = source_views(source, config, args.cache)[0] if args.mode == "head" else None
    name = "targeted" + ("-quick" if args.quick else "") + ("-lora" if args.mode == "lora" else "")
    cells_dir = args.out / "cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    command = "python -m bench.targeted " + " ".join(argv if argv is not None else sys.argv[1:])
    started = time.perf_counter()
    cells: list[dict] = []
    for bias_name in args.biases:
        bias = BIASES[bias_name]
        cell_sizes = fitted_sizes(sizes, int(bias.candidates(source.pairs).sum()))
        for seed in range(seeds):
            path = cells_dir / f"{args.mode}_{bias_name}_s{seed}_{recipe}.json"
            if path.exists():
                cells.append(json.loads(path.read_text()))
                continue
            if views is not None:
                cell = head_cell(source.pairs, views, bias, config, seed, cell_sizes)
            else:
                cell = lora_cell(source.pairs, bias, config, seed, cell_sizes, retrain)
            cell["recipe"] = recipe
            write_json(path, cell)
            cells.append(cell)
            best = max(
                (n for n in cell["methods"] if "(target)" in n),
                key=lambda n: cell["methods"][n]["auroc"],
            )
            print(
                f"{path.stem}: {cell['n_flips']} flips, {best} "
                f"{cell['methods'][best]['auroc']:.3f}, loss {cell['methods']['loss']['auroc']:.3f}"
                f" ({cell['seconds']:.0f} s)",
                flush=True,
            )
    result = {
        "command": command,
        "dataset": args.dataset,
        "n_pairs": len(source.pairs),
        "model": config.model,
        "mode": args.mode,
        "max_length": config.max_length,
        "device": args.device,
        "sizes": sizes,
        "recipe": recipe,
        "seconds": round(time.perf_counter() - started, 2),
        "notes": NOTES,
        "cells": cells,
        "summary": summarise(cells),
    }
    write_json(args.out / f"{name}.json", result)
    (args.out / f"{name}.md").write_text(markdown(result))
    plot(result["summary"], args.out / f"{name.replace('targeted', 'targeted_auroc')}.png")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
