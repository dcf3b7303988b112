"""The label-noise study of issue 4: flip p% of HH-RLHF training pairs, audit them, remove each
method's top 10%, retrain from scratch, and compare with all pairs, random removal and the oracle.

    python -m bench.noise_study           # full run: head-mode grid, then LoRA cells (resumable)
    python -m bench.noise_study --quick   # CI-sized: tiny model, a few cells, a few minutes

Every finished cell (one setup, dataset, training size, recipe, noise level and seed) is cached as
JSON under --cache, so an interrupted run resumes; the outputs are rebuilt from the cache.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shlex
import sys
import time
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from bench.lib.cache import save_json
from bench.lib.metrics import (
    aggregate,
    bottom_mask,
    detection,
    noise_cost,
    rank_average,
    summary_interval,
    top_mask,
)
from bench.lib.noise_data import (
    DATASETS,
    DEFAULT_DATA_DIR,
    feature_differences,
    flip_mask,
    load_pairs,
    make_split,
    noisy_pairs,
)
from bench.lib.paths import CACHE, RESULTS
from bench.lib.report import interval_text, write_json
from worker.influence.config import EngineConfig

ENGINE_METHODS = ["loss", "gradient_similarity", "influence", "datainf", "self_influence"]
L2_GRID = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
"""Head L2 penalties the 'l2-val' recipe chooses from, by validation BT loss (never test)."""


@dataclass
class Settings:
    """What the study runs; stored with every cell, and a cell made under other settings is
    recomputed rather than mixed in."""

    model: str = "minilm"
    lora_model: str = "minilm"
    data_limit: int | None = None
    datasets: list[str] = field(default_factory=lambda: list(DATASETS))
    noise: list[float] = field(default_factory=lambda: [0.0, 0.05, 0.1, 0.2, 0.3])
    seeds: list[int] = field(default_factory=lambda: list(range(10)))
    n_train: list[int] = field(default_factory=lambda: [1000, 250])
    recipes: list[str] = field(default_factory=lambda: ["default", "l2-val"])
    n_val: int = 300
    n_test: int = 1000
    prune_fraction: float = 0.1
    lora_datasets: list[str] = field(default_factory=lambda: list(DATASETS))
    lora_noise: list[float] = field(default_factory=lambda: [0.1, 0.2, 0.3, 0.0, 0.05])
    lora_seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    lora_n_train: int = 1000
    lora_methods: list[str] | None = None
    """Methods whose top fraction is removed and retrained in LoRA cells (None = all)."""
    lora_helpful: list[str] = field(
        default_factory=lambda: ["influence", "gradient_similarity", "loss"]
    )
    lora_overrides: dict = field(default_factory=dict)
    """EngineConfig fields that differ from the engine's defaults (the anchors' recipe)."""

    @classmethod
    def quick(cls) -> Settings:
        """Tiny random backbone on 200 helpful-base pairs: exercises every path in minutes."""
        return cls(
            model="tiny",
            lora_model="tiny",
            data_limit=200,
            datasets=["helpful-base"],
            noise=[0.0, 0.2],
            seeds=[0, 1],
            n_train=[80],
            recipes=["default", "l2-val"],
            n_val=30,
            n_test=60,
            lora_datasets=["helpful-base"],
            lora_noise=[0.2],
            lora_seeds=[0],
            lora_n_train=40,
            lora_methods=["influence", "loss", "random"],
            lora_helpful=["influence"],
            lora_overrides={"epochs": 1, "learning_rate": 1e-2, "batch_size": 8, "max_length": 64},
        )


def head_config(settings: Settings, weight_decay: float, device: str) -> EngineConfig:
    return EngineConfig(
        model=settings.model,
        mode="head",
        methods=list(ENGINE_METHODS),
        weight_decay=weight_decay,
        device=device,
    )


def lora_config(settings: Settings, device: str) -> EngineConfig:
    return EngineConfig(
        model=settings.lora_model,
        mode="lora",
        methods=list(ENGINE_METHODS),
        hessian="exact",
        device=device,
        **settings.lora_overrides,
    )


# ----------------------------------------------------------------------------------------------
# Cells


def cell_specs(settings: Settings, setups: Iterable[str]) -> list[dict]:
    """Every cell to run, in priority order: the head grid, then LoRA by noise priority."""
    specs = []
    if "head" in setups:
        for dataset in settings.datasets:
            for n_train in settings.n_train:
                for recipe in settings.recipes:
                    for noise in settings.noise:
                        for seed in settings.seeds:
                            specs.append(
                                {
                                    "setup": "head",
                                    "dataset": dataset,
                                    "n_train": n_train,
                                    "recipe": recipe,
                                    "noise": noise,
                                    "seed": seed,
                                }
                            )
    if "lora" in setups:
        for noise in settings.lora_noise:
            for seed in settings.lora_seeds:
                for dataset in settings.lora_datasets:
                    specs.append(
                        {
                            "setup": "lora",
                            "dataset": dataset,
                            "n_train": settings.lora_n_train,
                            "recipe": "anchors",
                            "noise": noise,
                            "seed": seed,
                        }
                    )
    return specs


def fingerprint(settings: Settings, spec: dict) -> str:
    """Hash of everything that decides a cell's numbers besides its spec."""
    shared = {k: getattr(settings, k) for k in ("data_limit", "n_val", "n_test", "prune_fraction")}
    if spec["setup"] == "head":
        shared["model"] = settings.model
    else:
        shared.update(
            model=settings.lora_model,
            overrides=settings.lora_overrides,
            helpful=settings.lora_helpful,
            methods=settings.lora_methods,
        )
    blob = json.dumps({"spec": spec, "shared": shared}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def cell_path(cache: Path, settings: Settings, spec: dict) -> Path:
    name = (
        f"{spec['setup']}_{spec['dataset']}_n{spec['n_train']}_{spec['recipe']}"
        f"_p{round(100 * spec['noise']):02d}_s{spec['seed']}_{fingerprint(settings, spec)}"
    )
    return cache / f"{name}.json"


_FEATURES: dict[str, object] = {}
_PAIRS: dict[str, list] = {}


def _dataset_pairs(settings: Settings, data_dir: Path, dataset: str) -> list:
    if dataset not in _PAIRS:
        _PAIRS[dataset] = load_pairs(dataset, data_dir, settings.data_limit)
    return _PAIRS[dataset]


def _features(settings: Settings, data_dir: Path, cache: Path, dataset: str, device: str):
    if dataset not in _FEATURES:
        config = head_config(settings, 0.0, device)
        pairs = _dataset_pairs(settings, data_dir, dataset)
        _FEATURES[dataset] = feature_differences(dataset, pairs, config, cache)
    return _FEATURES[dataset]


def run_cell(
    spec: dict, settings: Settings, data_dir: Path, cache: Path, device: str, command: str = ""
) -> dict:
    """Run one cell and cache its JSON; a cached cell is read back instead."""
    path = cell_path(cache, settings, spec)
    if path.exists():
        return json.loads(path.read_text())
    start = time.perf_counter()
    pairs = _dataset_pairs(settings, data_dir, spec["dataset"])
    split = make_split(len(pairs), spec["n_train"], settings.n_val, settings.n_test, spec["seed"])
    flips = flip_mask(spec["n_train"], spec["noise"], spec["seed"])
    if spec["setup"] == "head":
        cell = _head_cell(spec, settings, split, flips, data_dir, cache, device)
    else:
        cell = _lora_cell(spec, settings, pairs, split, flips, device)
    cell.update(
        spec=spec,
        n_flips=int(flips.sum()),
        seconds=time.perf_counter() - start,
        fingerprint=fingerprint(settings, spec),
        command=command,
        device_name=_device_name(device),
    )
    save_json(path, cell)
    return cell


def _head_cell(spec, settings, split, flips, data_dir, cache, device) -> dict:
    import torch

    from worker.influence.audit import Fitted, score_fitted
    from worker.influence.head import MIN_L2, fit_head, select_l2
    from worker.influence.model import resolve_device
    from worker.influence.verify import Retrainer

    z_all = _features(settings, data_dir, cache, spec["dataset"], device)
    target = resolve_device(device)
    sign = torch.where(torch.as_tensor(flips), -1.0, 1.0).to(torch.float64)
    z_train = (z_all[split.train] * sign[:, None]).to(target)
    z_val, z_test = z_all[split.val].to(target), z_all[split.test].to(target)

    weight_decay, l2_search = 0.0, None
    if spec["recipe"] == "l2-val":
        weight_decay, l2_search = select_l2(z_train, z_val, L2_GRID)
    config = head_config(settings, weight_decay, device)
    w, _ = fit_head(z_train, config.weight_decay)
    fitted = Fitted(
        rm=None,
        margins=(z_train @ w).cpu().numpy(),
        grads=z_train,
        val_margins=(z_val @ w).cpu().numpy(),
        val_grads=z_val,
        blocks=[("head", slice(0, z_train.shape[1]))],
        ridge=max(config.weight_decay, MIN_L2),
    )
    scores, metrics, warnings = score_fitted(fitted, config)
    harms = _harms(scores, spec["seed"])
    retrainer = Retrainer.from_features(z_train, z_test, config)
    retrain = _retrain(
        retrainer,
        harms,
        flips,
        spec["seed"],
        settings.prune_fraction,
        harmful=list(harms),
        helpful=list(harms),
    )
    return {
        "config": {
            "model": config.model,
            "mode": "head",
            "weight_decay": config.weight_decay,
            "damping": config.damping,
        },
        "l2_search_val_loss": l2_search,
        "val_accuracy": float((fitted.val_margins > 0).mean()),
        "train_accuracy": float((fitted.margins > 0).mean()),
        "influence": metrics.get("influence"),
        "warnings": warnings,
        "detection": {m: detection(h, flips, settings.prune_fraction) for m, h in harms.items()},
        "retrain": retrain,
    }


def _lora_cell(spec, settings, pairs, split, flips, device) -> dict:
    from worker.influence.audit import run_audit, score_fitted
    from worker.influence.train import evaluate_margins
    from worker.influence.verify import Retrainer, evaluation_result

    config = lora_config(settings, device)
    config = dataclasses.replace(config, seed=spec["seed"])
    train = noisy_pairs(pairs, split.train, flips)
    val = [pairs[i] for i in split.val]
    test = [pairs[i] for i in split.test]
    audit = run_audit(train, val, config, keep_state=True)
    fitted = audit.state
    assert fitted is not None and fitted.rm is not None
    gn_config = dataclasses.replace(
        config, hessian="gauss_newton", methods=["influence"], default_method="influence"
    )
    gn_scores, gn_metrics, _ = score_fitted(
        dataclasses.replace(fitted, exact_matvec=None), gn_config
    )
    scores = dict(audit.scores)
    scores["harm_influence_exact"] = scores.pop("harm_influence")
    scores["harm_influence"] = gn_scores["harm_influence"]
    harms = _harms(scores, spec["seed"])
    retrainer = Retrainer.for_pairs(train, test, config)
    audit_metrics = audit.metrics.model_dump()
    audit_seconds = audit_metrics["seconds"]
    full = evaluation_result(
        evaluate_margins(fitted.rm, retrainer.eval_enc),
        len(train),
        audit_seconds.get("training", 0.0),
    )
    audit.state = fitted = None  # free the per-pair gradients before retraining
    retrain = _retrain(
        retrainer,
        harms,
        flips,
        spec["seed"],
        settings.prune_fraction,
        harmful=settings.lora_methods or list(harms),
        helpful=settings.lora_helpful,
        full=full,
    )
    return {
        "config": {
            "model": config.model,
            "mode": "lora",
            "epochs": config.epochs,
            "learning_rate": config.learning_rate,
            "batch_size": config.batch_size,
            "max_length": config.max_length,
            "lora_r": config.lora_r,
            "damping": config.damping,
            "weight_decay": config.weight_decay,
        },
        "val_accuracy": audit_metrics["val_accuracy"],
        "train_accuracy": audit_metrics["train_accuracy"],
        "influence_exact": audit_metrics.get("influence"),
        "influence": gn_metrics.get("influence"),
        "audit_seconds": audit_seconds,
        "warnings": audit_metrics.get("warnings", []),
        "detection": {m: detection(h, flips, settings.prune_fraction) for m, h in harms.items()},
        "retrain": retrain,
    }


def _harms(scores: dict, seed: int) -> dict[str, np.ndarray]:
    """Every method's harm (higher = more harmful), plus the rank average and a random score."""
    harms = {
        name[len("harm_") :]: np.asarray(values)
        for name, values in scores.items()
        if name.startswith("harm_") and name != "harm_gradient_cosine"
    }
    harms["rank_average"] = rank_average(harms["influence"], harms["gradient_similarity"])
    harms["random"] = np.random.default_rng([seed, 3]).random(len(harms["loss"]))
    return harms


def _retrain(
    retrainer,
    harms: dict[str, np.ndarray],
    flips: np.ndarray,
    seed: int,
    fraction: float,
    harmful: list[str],
    helpful: list[str],
    full=None,
) -> dict:
    """Retrain without each method's top (harmful) and bottom (helpful) fraction, the oracle
    (exactly the flips removed) and all pairs; test accuracy and BT loss of each."""
    n = len(flips)
    k = max(1, int(round(fraction * n)))

    def fit(keep: np.ndarray) -> dict:
        result = retrainer.fit(keep, seed)
        return {
            "accuracy": result.accuracy,
            "loss": result.loss,
            "n_train": result.n_train,
            "seconds": result.seconds,
        }

    out: dict = {"k": k}
    if full is None:
        out["full"] = fit(np.ones(n, dtype=bool))
    else:
        out["full"] = {
            "accuracy": full.accuracy,
            "loss": full.loss,
            "n_train": full.n_train,
            "seconds": full.seconds,
        }
    out["oracle"] = fit(~flips) if flips.any() else dict(out["full"])
    out["harmful"] = {m: fit(~top_mask(harms[m], k)) for m in harmful if m in harms}
    out["helpful"] = {m: fit(~bottom_mask(harms[m], k)) for m in helpful if m in harms}
    return out


# ----------------------------------------------------------------------------------------------
# Running


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def run_all(
    specs: list[dict],
    settings: Settings,
    data_dir: Path,
    cache: Path,
    device: str,
    workers: int,
    deadline: float | None,
    log=print,
    command: str = "",
) -> None:
    """Run the cells not cached yet; several processes when `workers` > 1 (a GPU has room for
    many small models at once). No new cell starts after `deadline` (time.time())."""
    todo = [s for s in specs if not cell_path(cache, settings, s).exists()]
    log(f"{len(specs) - len(todo)} of {len(specs)} cells cached; {len(todo)} to run")
    if not todo:
        return
    for dataset in sorted({s["dataset"] for s in todo if s["setup"] == "head"}):
        started = time.perf_counter()
        _features(settings, data_dir, cache, dataset, device)
        log(f"features of {dataset}: {time.perf_counter() - started:.0f} s")
    if workers <= 1:
        for k, spec in enumerate(todo):
            if deadline is not None and time.time() > deadline:
                log("deadline reached; stopping (cached cells are kept)")
                return
            cell = run_cell(spec, settings, data_dir, cache, device, command)
            log(f"[{k + 1}/{len(todo)}] {_label(spec)}: {cell['seconds']:.1f} s")
        return
    threads = max(1, (os.cpu_count() or 2) // workers)
    with ProcessPoolExecutor(
        workers, mp_context=get_context("spawn"), initializer=_init_worker, initargs=(threads,)
    ) as pool:
        queue = list(todo)
        running: dict[Future, dict] = {}
        done_count = 0
        while queue or running:
            while queue and len(running) < workers and (deadline is None or time.time() < deadline):
                spec = queue.pop(0)
                running[pool.submit(run_cell, spec, settings, data_dir, cache, device, command)] = (
                    spec
                )
            if not running:
                log(f"deadline reached; {len(queue)} cells left for the next run")
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                spec = running.pop(future)
                done_count += 1
                try:
                    cell = future.result()
                    log(f"[{done_count}/{len(todo)}] {_label(spec)}: {cell['seconds']:.1f} s")
                except Exception as exc:  # report and go on: one bad cell must not lose the rest
                    log(f"[{done_count}/{len(todo)}] {_label(spec)} FAILED: {exc!r}")


def _device_name(device: str) -> str:
    import torch

    from worker.influence.model import resolve_device

    target = resolve_device(device)
    if target.type == "cuda":
        return torch.cuda.get_device_name(target)
    return f"cpu ({os.cpu_count()} cores)"


def _label(spec: dict) -> str:
    return (
        f"{spec['setup']} {spec['dataset']} n={spec['n_train']} {spec['recipe']} "
        f"p={spec['noise']:.2f} seed {spec['seed']}"
    )


def collect(specs: list[dict], settings: Settings, cache: Path) -> list[dict]:
    """The cached cells of `specs` (missing ones skipped)."""
    cells = []
    for spec in specs:
        path = cell_path(cache, settings, spec)
        if path.exists():
            cells.append(json.loads(path.read_text()))
    return cells


# ----------------------------------------------------------------------------------------------
# Outputs


def write_outputs(
    cells: list[dict], specs: list[dict], settings: Settings, out: Path, command: str, device: str
) -> dict:
    """noise_study.json, noise_study.md (tables) and the PNG plots under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    rows = aggregate(cells)
    costs = noise_cost(cells)
    result = {
        "command": command,
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": device,
        "settings": dataclasses.asdict(settings),
        "cells_planned": len(specs),
        "cells_finished": len(cells),
        "cell_commands": sorted({c.get("command", "") for c in cells}),
        "cell_devices": sorted({c.get("device_name", "") for c in cells}),
        "data": "HH-RLHF {helpful,harmless}-base test files (../shared/data/hh-rlhf), file order",
        "notes": [
            "head: frozen backbone pooled features, exact L2-regularised logistic head "
            "(fits are deterministic given the data; seeds vary split, flips and random removal)",
            "head: influence_exact is not listed separately: the head's Hessian is exactly the "
            "Gauss-Newton matrix plus the L2 term, so both give identical scores",
            "lora: the 'full' arm is the audit's own model (trained on all noisy pairs with the "
            "same seed and recipe), evaluated on the test split",
            "differences are paired by seed; intervals are 95% Student-t over seeds",
        ],
        "noise_cost": costs,
        "groups": rows,
        "cells": cells,
    }
    write_json(out / "noise_study.json", result, indent=1, newline=False)
    # Figures name the runs that made their cells, not only this (possibly --report-only) call.
    made_by = "; ".join(result["cell_commands"]) + f" (outputs: {command})"
    (out / "noise_study.md").write_text(markdown_tables(rows, costs, settings, made_by))
    plot(rows, settings, out, made_by)
    plot_noise_cost(costs, settings, out, made_by)
    return result


def _ci(diff: dict | None) -> str:
    """A difference in percentage points, with its interval."""
    return interval_text(diff, 100)


def _mean(summary: dict | None, scale: float = 1.0, digits: int = 3) -> str:
    if not summary or summary.get("mean") is None:
        return "–"
    return f"{scale * summary['mean']:.{digits}f}"


COMPACT_METHODS = [
    "influence",
    "influence_exact",
    "gradient_similarity",
    "datainf",
    "rank_average",
    "self_influence",
    "loss",
    "random",
]


def compact_table(
    rows: list[dict], value, title: str, methods: list[str] | None = None, extra: dict | None = None
) -> list[str]:
    """One line per group, one column per method: `value(method_entry)` formatted."""
    methods = methods or COMPACT_METHODS
    present = [m for m in methods if any(m in r["methods"] for r in rows)]
    extra = extra or {}
    header = ["setup", "data", "n", "recipe", "noise", *extra, *present]
    lines = [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [
            row["setup"],
            row["dataset"],
            str(row["n_train"]),
            row["recipe"],
            f"{100 * row['noise']:.0f}%",
        ]
        cells += [fn(row) for fn in extra.values()]
        cells += [value(row["methods"][m]) if m in row["methods"] else "" for m in present]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def headline_tables(rows: list[dict], costs: list[dict]) -> list[str]:
    """The study's answers in compact tables (RESULTS.md quotes them)."""
    lines = [
        "## What label noise costs (all pairs at p% minus all pairs at 0%, same seeds)",
        "",
        "| setup | data | n | recipe | noise | clean accuracy | noisy − clean | oracle − clean |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cost in costs:
        lines.append(
            f"| {cost['setup']} | {cost['dataset']} | {cost['n_train']} | {cost['recipe']} | "
            f"{100 * cost['noise']:.0f}% | {_mean(cost['clean_accuracy'])} | "
            f"{_ci(cost['noisy_minus_clean'])} | {_ci(cost['oracle_minus_clean'])} |"
        )
    lines.append("")
    noisy = [r for r in rows if r["noise"] > 0]
    lines += compact_table(
        rows,
        lambda e: _ci(e.get("harmful_minus_full")),
        "Top 10% most harmful removed, minus all pairs (accuracy points, 95% CI)",
        extra={
            "all pairs": lambda r: _mean(r["full_accuracy"]),
            "oracle − all": lambda r: _ci(r.get("oracle_minus_full")),
        },
    )
    lines += compact_table(
        rows,
        lambda e: _ci(e.get("harmful_minus_random")),
        "Top 10% most harmful removed, minus 10% random removed",
    )
    lines += compact_table(
        noisy,
        lambda e: _mean(e.get("auroc")),
        "AUROC of each score against the flip mask (mean over seeds)",
    )
    lines += compact_table(
        noisy,
        lambda e: _ci(e.get("auroc_minus_loss")),
        "AUROC minus the loss ranking's AUROC (×100, paired by seed)",
    )
    lines += compact_table(
        rows,
        lambda e: _ci(e.get("harmful_minus_loss")),
        "Top 10% removed by the method, minus top 10% removed by loss",
    )
    lines += compact_table(
        rows,
        lambda e: _ci(e.get("helpful_minus_full")),
        "Top 10% most HELPFUL removed, minus all pairs",
    )
    return lines


def markdown_tables(rows: list[dict], costs: list[dict], settings: Settings, command: str) -> str:
    """Headline tables, then one table per group: detection and retraining per method."""
    lines = [
        "# Noise study: tables",
        "",
        f"Commands: `{command}`. Data: HH-RLHF test files. Head model: {settings.model}; "
        f"LoRA model: {settings.lora_model}. Differences are accuracy points (×100) on the test "
        "split, paired by seed, with 95% Student-t intervals over seeds in brackets.",
        "",
        *headline_tables(rows, costs),
        "# Per group",
        "",
    ]
    for row in rows:
        lines += [
            f"## {row['setup']} · {row['dataset']} · n_train {row['n_train']} · {row['recipe']}"
            f" · noise {100 * row['noise']:.0f}% · seeds {row['seeds']}",
            "",
            f"All pairs: test accuracy {_mean(row['full_accuracy'])} (val "
            f"{_mean(row['val_accuracy'])}); oracle − all pairs: "
            f"{_ci(row.get('oracle_minus_full'))}.",
            "",
            "| method | AUROC | P@k | recall top 10% | harmful removed − all | − random | − loss "
            "| helpful removed − all |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for method, entry in row["methods"].items():
            lines.append(
                f"| {method} | {_mean(entry.get('auroc'))} | {_mean(entry.get('precision_at_k'))}"
                f" | {_mean(entry.get('recall_top'))} | {_ci(entry.get('harmful_minus_full'))} | "
                f"{_ci(entry.get('harmful_minus_random'))} | {_ci(entry.get('harmful_minus_loss'))}"
                f" | {_ci(entry.get('helpful_minus_full'))} |"
            )
        lines.append("")
    return "\n".join(lines)


PLOT_METHODS = [
    "influence",
    "influence_exact",
    "gradient_similarity",
    "rank_average",
    "datainf",
    "self_influence",
    "loss",
    "random",
]


def _series(rows: list[dict], where: dict, getter) -> tuple[list, list, list, list]:
    xs, ys, lows, highs = [], [], [], []
    for row in sorted(rows, key=lambda r: r["noise"]):
        if any(row[k] != v for k, v in where.items()):
            continue
        value = getter(row)
        if not value or value.get("mean") is None:
            continue
        xs.append(100 * row["noise"])
        ys.append(value["mean"])
        lows.append(
            value.get("ci_low", value["mean"]) if value.get("ci_low") is not None else value["mean"]
        )
        highs.append(value.get("ci_high") if value.get("ci_high") is not None else value["mean"])
    return xs, ys, lows, highs


def _panels(rows: list[dict]) -> list[dict]:
    """One panel per (setup, dataset, n_train, recipe) present."""
    keys = sorted(
        {(r["setup"], r["dataset"], r["n_train"], r["recipe"]) for r in rows},
        key=lambda k: (k[0] != "lora", k[1], -k[2], k[3]),
    )
    return [dict(zip(("setup", "dataset", "n_train", "recipe"), k, strict=True)) for k in keys]


def plot(rows: list[dict], settings: Settings, out: Path, command: str) -> None:
    """Accuracy change vs noise per method, detection vs noise, and where noise hurts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = _panels(rows)
    if not panels:
        return
    caption = (
        f"HH-RLHF test files; head model {settings.model}, LoRA model "
        f"{settings.lora_model}; seeds {settings.seeds} (head), {settings.lora_seeds} "
        f"(LoRA); 95% t-intervals over seeds. Command: {command}"
    )
    colors = dict(zip(PLOT_METHODS + ["oracle"], plt.cm.tab10.colors, strict=False))

    def grid(title: str, ylabel: str, draw, name: str) -> None:
        cols = min(4, len(panels))
        nrows = -(-len(panels) // cols)
        fig, axes = plt.subplots(
            nrows, cols, figsize=(4.2 * cols, 3.4 * nrows + 0.8), squeeze=False
        )
        for ax, panel in zip(axes.flat, panels, strict=False):
            draw(ax, panel)
            ax.set_title(
                f"{panel['setup']} · {panel['dataset']}\nn={panel['n_train']} · {panel['recipe']}",
                fontsize=9,
            )
            ax.set_xlabel("flipped training pairs (%)")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(panels) :]:
            ax.axis("off")
        legend: dict = {}
        for ax in axes.flat:
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                legend.setdefault(label, handle)
        fig.legend(list(legend.values()), list(legend), loc="upper right", fontsize=8, ncol=1)
        fig.suptitle(title, fontsize=11)
        fig.text(0.01, 0.005, caption, fontsize=6, wrap=True)
        fig.tight_layout(rect=(0, 0.04, 0.9, 0.95))
        fig.savefig(out / name, dpi=110)
        plt.close(fig)

    def errorbar(ax, xs, ys, lows, highs, label, color, offset=0.0, style="-o") -> None:
        if not xs:
            return
        x = np.asarray(xs) + offset
        y = 100 * np.asarray(ys)
        err = 100 * np.vstack([np.asarray(ys) - lows, np.asarray(highs) - ys])
        ax.errorbar(x, y, yerr=err, fmt=style, ms=3, lw=1, capsize=2, label=label, color=color)

    def draw_accuracy(ax, panel) -> None:
        ax.axhline(0, color="black", lw=0.8)
        s = _series(rows, panel, lambda r: r.get("oracle_minus_full"))
        errorbar(ax, *s, "oracle (flips removed)", "black", style="--s")
        for k, method in enumerate(PLOT_METHODS):
            s = _series(
                rows, panel, lambda r, m=method: r["methods"].get(m, {}).get("harmful_minus_full")
            )
            errorbar(ax, *s, method, colors[method], offset=0.25 * (k - 3.5))

    def draw_detection(ax, panel) -> None:
        ax.axhline(50, color="black", lw=0.8)
        for k, method in enumerate(PLOT_METHODS):
            s = _series(
                rows,
                panel,
                lambda r, m=method: summary_interval(r["methods"].get(m, {}).get("auroc")),
            )
            if s[0]:
                errorbar(
                    ax, s[0], s[1], s[2], s[3], method, colors[method], offset=0.25 * (k - 3.5)
                )
        ax.set_ylim(30, 100)

    def draw_helpful(ax, panel) -> None:
        ax.axhline(0, color="black", lw=0.8)
        for k, method in enumerate(PLOT_METHODS):
            s = _series(
                rows, panel, lambda r, m=method: r["methods"].get(m, {}).get("helpful_minus_full")
            )
            errorbar(ax, *s, method, colors[method], offset=0.25 * (k - 3.5))

    grid(
        "Test accuracy after removing each method's top 10% most harmful, minus all pairs",
        "accuracy change (points)",
        draw_accuracy,
        "noise_study_accuracy.png",
    )
    grid(
        "Detection of flipped pairs: AUROC (×100) vs noise",
        "AUROC × 100",
        draw_detection,
        "noise_study_detection.png",
    )
    grid(
        "Test accuracy after removing each method's top 10% most HELPFUL, minus all pairs",
        "accuracy change (points)",
        draw_helpful,
        "noise_study_helpful.png",
    )


def plot_noise_cost(costs: list[dict], settings: Settings, out: Path, command: str) -> None:
    """Where noise hurts: all pairs at p% minus at 0%, per regime and dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({c["dataset"] for c in costs})
    if not datasets:
        return
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4.4), squeeze=False)
    for ax, dataset in zip(axes.flat, datasets, strict=True):
        regimes = sorted(
            {(c["setup"], c["n_train"], c["recipe"]) for c in costs if c["dataset"] == dataset}
        )
        for k, regime in enumerate(regimes):
            points = sorted(
                (
                    c
                    for c in costs
                    if c["dataset"] == dataset and (c["setup"], c["n_train"], c["recipe"]) == regime
                ),
                key=lambda c: c["noise"],
            )
            x = np.array([100 * c["noise"] for c in points]) + 0.3 * (k - len(regimes) / 2)
            d = [c["noisy_minus_clean"] for c in points]
            y = np.array([100 * v["mean"] for v in d])
            low = np.array(
                [100 * (v["ci_low"] if v["ci_low"] is not None else v["mean"]) for v in d]
            )
            high = np.array(
                [100 * (v["ci_high"] if v["ci_high"] is not None else v["mean"]) for v in d]
            )
            ax.errorbar(
                x,
                y,
                yerr=[y - low, high - y],
                fmt="-o",
                ms=3,
                capsize=2,
                label=f"{regime[0]} n={regime[1]} {regime[2]} "
                f"(clean {points[0]['clean_accuracy']['mean']:.3f})",
            )
        ax.axhline(0, color="black", lw=0.8)
        ax.set_title(dataset)
        ax.set_xlabel("flipped training pairs (%)")
        ax.set_ylabel("test accuracy, noisy − clean (points)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("What label noise costs: all pairs at p% minus all pairs at 0% (same seeds)")
    fig.text(
        0.01,
        0.005,
        f"HH-RLHF test files; head model {settings.model}, LoRA model "
        f"{settings.lora_model}; 95% t-intervals over seeds. Command: {command}",
        fontsize=6,
    )
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    fig.savefig(out / "noise_study_regimes.png", dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CI-sized run: tiny random backbone, 200 helpful-base pairs, 2 seeds",
    )
    parser.add_argument(
        "--setups",
        default="head,lora",
        help="which setups to run: head, lora or both (default head,lora)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS,
        help="where noise_study.json, .md and the plots go (default bench/results)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=CACHE / "noise_study",
        help="per-cell JSON cache, so a run resumes (default bench/cache/...)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="folder with {helpful,harmless}-base-test.jsonl.gz (default ../shared/data/hh-rlhf)",
    )
    parser.add_argument(
        "--model",
        default=None,
        help="backbone for both setups instead of the preset's (e.g. a local "
        "directory holding all-MiniLM-L6-v2); recorded in the settings",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="cells run in parallel processes (default 1; a GPU fits many)",
    )
    parser.add_argument(
        "--deadline-minutes",
        type=float,
        default=None,
        help="start no new cell after this many minutes (default: no limit)",
    )
    parser.add_argument(
        "--seeds", type=int, default=None, help="head-grid seeds 0..N-1 (default 10; quick 2)"
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rebuild the outputs from the cache without running cells",
    )
    args = parser.parse_args(argv)

    settings = Settings.quick() if args.quick else Settings()
    if args.model:
        settings.model = settings.lora_model = args.model
    if args.seeds is not None:
        settings.seeds = list(range(args.seeds))
    setups = [s.strip() for s in args.setups.split(",") if s.strip()]
    unknown = set(setups) - {"head", "lora"}
    if unknown:
        parser.error(f"unknown setups {sorted(unknown)}; use head and/or lora")
    command = "python -m bench.noise_study " + shlex.join(sys.argv[1:] if argv is None else argv)
    specs = cell_specs(settings, setups)
    deadline = (
        time.time() + 60 * args.deadline_minutes if args.deadline_minutes is not None else None
    )

    def log(message: str) -> None:
        print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)

    if not args.report_only:
        run_all(
            specs,
            settings,
            args.data_dir,
            args.cache,
            args.device,
            args.workers,
            deadline,
            log,
            command,
        )
    cells = collect(specs, settings, args.cache)
    from worker.influence.model import resolve_device

    device = str(resolve_device(args.device))
    if not cells:
        log("no finished cells yet; nothing written")
        return 1
    write_outputs(cells, specs, settings, args.out, command, device)
    log(f"{len(cells)} of {len(specs)} cells → {args.out / 'noise_study.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
