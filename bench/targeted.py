"""Targeted detection, first measurement (issue 20, item 4, length bias only): plant
length-biased flips in HH-RLHF training pairs and find them with influence against a small clean
target set that shows the unbiased behaviour, against the loss, the length heuristic and random.

    python -m bench.targeted --quick --out /tmp/t     # tiny model, 260 pairs, 3 seeds
    python -m bench.targeted                          # MiniLM, 400 helpful-base pairs, 5 seeds

Per seed (a fresh split): a target pool, a validation split and the training pairs. Length bias:
of the training pairs whose chosen response is shorter (by ≥ 20% of the longer), a share is
flipped, so the longer one is chosen. Target: the pool's clean pairs whose chosen is the shorter
(the unbiased behaviour the flips contradict). The model is the head-mode reward model fitted
through the engine's code (worker.influence.fitted.head_fitted on cached backbone features); the
targeted scores take the target in the validation set's place exactly as a targeted audit does
(worker/influence/targeting.py). Figures: AUROC and precision at k (k = number of flips) against
the flip mask, mean and 95% t-interval over seeds, and paired differences against the loss.
Not here: the refusal and third biases, LoRA mode and the retraining arm (items 4–5).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from bench.lib.detection_data import load_source, source_views
from bench.lib.metrics import auroc, t_interval, top_mask
from bench.lib.paths import CACHE, RESULTS
from bench.lib.report import write_json
from worker.influence.config import EngineConfig
from worker.influence.data import Pair
from worker.influence.features import PairViews
from worker.influence.fitted import head_fitted
from worker.influence.scoring import score_fitted

LENGTH_RATIO = 0.2
SCORES = {
    "influence (target)": ("target", "harm_influence"),
    "gradient similarity (target)": ("target", "harm_gradient_similarity"),
    "DataInf (target)": ("target", "harm_datainf"),
    "influence (validation)": ("plain", "harm_influence"),
    "loss": ("plain", "harm_loss"),
    "length": ("plain", "harm_length"),
}


def _rows(views: PairViews, index: np.ndarray, swap: np.ndarray) -> PairViews:
    """The views of source rows `index`, negated where presented swapped."""
    sign = torch.as_tensor(1.0 - 2.0 * swap.astype(np.float64)).unsqueeze(1)
    return PairViews({k: v[torch.as_tensor(index)] * sign for k, v in views.views.items()})


def _present(pairs: list[Pair], index: np.ndarray, swap: np.ndarray) -> list[Pair]:
    return [
        Pair(pairs[i].prompt, pairs[i].rejected, pairs[i].chosen) if s else pairs[i]
        for i, s in zip(index, swap, strict=True)
    ]


def cell(pairs: list[Pair], views: PairViews, config: EngineConfig, seed: int, sizes: dict) -> dict:
    """One seed: split, plant length-biased flips, fit, score with and without the target."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pairs))
    pool, val, train = np.split(order, [sizes["pool"], sizes["pool"] + sizes["val"]])
    chosen_len = np.array([len(p.chosen) for p in pairs])
    rejected_len = np.array([len(p.rejected) for p in pairs])
    clear = np.abs(chosen_len - rejected_len) >= LENGTH_RATIO * np.maximum(chosen_len, rejected_len)
    shorter_chosen = clear & (chosen_len < rejected_len)
    target = pool[shorter_chosen[pool]][: sizes["target"]]
    candidates = np.flatnonzero(shorter_chosen[train])
    n_flip = int(round(sizes["flip_share"] * len(candidates)))
    flips = np.zeros(len(train), dtype=bool)
    flips[rng.choice(candidates, n_flip, replace=False)] = True
    no_swap = np.zeros(len(val), dtype=bool)
    train_pairs, val_pairs = _present(pairs, train, flips), _present(pairs, val, no_swap)
    fitted, _ = head_fitted(
        _rows(views, train, flips), _rows(views, val, no_swap), config, train_pairs, val_pairs
    )
    plain, _, _ = score_fitted(fitted, config)
    choice = fitted.head_choice
    assert choice is not None and fitted.head_weight is not None
    z_t = choice.apply(_rows(views, target, np.zeros(len(target), dtype=bool))[choice.view])
    aimed = dataclasses.replace(
        fitted, val_margins=(z_t @ fitted.head_weight).numpy(), val_grads=z_t, g_val=None
    )
    targeted, _, _ = score_fitted(aimed, config)
    columns = {"plain": plain, "target": targeted}
    out: dict = {
        "seed": seed,
        "n_train": len(train),
        "n_flips": n_flip,
        "n_target": len(target),
        "n_val": len(val),
        "val_accuracy": float((fitted.val_margins > 0).mean()),
        "target_accuracy": float((aimed.val_margins > 0).mean()),
        "methods": {},
    }
    harms = {name: columns[side][column] for name, (side, column) in SCORES.items()}
    harms["random"] = rng.random(len(train))
    for name, harm in harms.items():
        out["methods"][name] = {
            "auroc": auroc(harm, flips),
            "precision_at_k": float(flips[top_mask(harm, n_flip)].mean()) if n_flip else None,
        }
    return out


def summarise(cells: list[dict]) -> dict:
    names = list(cells[0]["methods"])
    summary: dict = {"methods": {}, "paired_vs_loss": {}}
    for name in names:
        summary["methods"][name] = {
            metric: t_interval([c["methods"][name][metric] for c in cells])
            for metric in ("auroc", "precision_at_k")
        }
        summary["paired_vs_loss"][name] = t_interval(
            [c["methods"][name]["auroc"] - c["methods"]["loss"]["auroc"] for c in cells]
        )
    for key in ("val_accuracy", "target_accuracy"):
        summary[key] = t_interval([c[key] for c in cells])
    return summary


def _fmt(d: dict) -> str:
    if d["mean"] is None:
        return "–"
    if d["ci_low"] is None:
        return f"{d['mean']:.3f}"
    return f"{d['mean']:.3f} [{d['ci_low']:.3f}, {d['ci_high']:.3f}]"


def markdown(result: dict) -> str:
    s = result["summary"]
    lines = [
        "# Targeted detection: length-biased flips, head mode",
        "",
        f"Command: `{result['command']}`. Data: HH-RLHF {result['dataset']} (first "
        f"{result['n_pairs']} pairs), model {result['model']} (head mode, max_length "
        f"{result['max_length']}), {len(result['cells'])} seeds (fresh splits). Per seed "
        f"{result['cells'][0]['n_train']} training pairs with "
        f"{result['cells'][0]['n_flips']} length-biased flips, a target of "
        f"{result['cells'][0]['n_target']} clean pairs whose chosen is the shorter, "
        f"{result['cells'][0]['n_val']} validation pairs. Validation accuracy "
        f"{_fmt(s['val_accuracy'])}, target accuracy {_fmt(s['target_accuracy'])}.",
        "",
        "| ranking | AUROC (95% t-interval) | precision at k | AUROC − loss (paired) |",
        "|---|---|---|---|",
    ]
    for name, m in s["methods"].items():
        lines.append(
            f"| {name} | {_fmt(m['auroc'])} | {_fmt(m['precision_at_k'])} | "
            f"{_fmt(s['paired_vs_loss'][name])} |"
        )
    lines += [
        "",
        "The loss and the length heuristic (its direction taken from the validation pairs, where "
        "the longer answer is mostly the chosen one) rank these flips near or below chance: the "
        "flips agree with the data's own habit, which is what a target set is for. Not measured: "
        "the refusal and a third bias, LoRA mode, and retraining without the top k.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny model, 260 pairs, 3 seeds")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS / "targeted")
    args = parser.parse_args()
    quick = args.quick
    model, max_length, limit = ("tiny", 64, 260) if quick else ("minilm", 128, 400)
    seeds = args.seeds or (3 if quick else 5)
    sizes = {"pool": 120 if not quick else 90, "val": 40, "target": 60, "flip_share": 0.35}
    config = EngineConfig(
        model=model,
        mode="head",
        max_length=max_length,
        device="cpu",
        methods=["loss", "gradient_similarity", "influence", "datainf", "length"],
        default_method="loss",
    )
    source = load_source("helpful-base", limit=limit)
    views, _ = source_views(source, config, CACHE)
    started = time.perf_counter()
    cells = [cell(source.pairs, views, config, seed, sizes) for seed in range(seeds)]
    result = {
        "command": "python -m bench.targeted" + (" --quick" if quick else ""),
        "dataset": "helpful-base",
        "n_pairs": len(source.pairs),
        "model": model,
        "max_length": max_length,
        "sizes": sizes,
        "seconds": round(time.perf_counter() - started, 2),
        "cells": cells,
        "summary": summarise(cells),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    name = "targeted-quick" if quick else "targeted-length"
    write_json(args.out / f"{name}.json", result)
    (args.out / f"{name}.md").write_text(markdown(result))
    print(markdown(result))
    print(json.dumps({"seconds": result["seconds"]}))


if __name__ == "__main__":
    main()
