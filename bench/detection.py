"""Detection benchmark: does a score put the wrong pairs first, on data nobody tuned it to?

    python -m bench.detection                 # the full grid (head mode, CPU; resumable)
    python -m bench.detection --quick --out /tmp/d   # a minute-long smoke run (make test)

Grid: datasets helpful-base, harmless-base, llmbar (planted flips at 10% and 20%) and vicuna80
(real disagreement: one rater's vote against the majority of three), `--seeds` seeds per cell, each
seed a fresh split and fresh flips (bench/lib/detection_data.py), for every `--max-length` recipe.
Every cell fits the head-mode reward model through the engine's own code path
(`audit.head_fitted` + `audit.score_fitted`, the same functions a job runs) on features computed
once per dataset, and scores every head-mode method plus the baselines random, length heuristic
(direction chosen on validation) and loss. Per cell: AUROC, precision@k (k = the number of truly
wrong pairs), recall in the top 10%; the trust verdict; the mislabelled-count estimate and its
error; and the ceiling probe (a head trained on the correctly labelled pairs only, scoring every
pair's loss: what a model that never saw the errors finds).

Results: one JSON per cell under `<out>/cells/` (a rerun skips cells already there with the same
recipe), then `<out>/detection.json` (all cells and the summary), `<out>/detection.md` and
`<out>/detection_auroc.png`. Intervals are Student-t 95% over seeds; paired differences of every
method against the loss and the length heuristic are taken per seed (same split, same flips).
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
import torch

from bench.lib.detection_data import (
    DATASETS,
    PLANTED,
    SHARED_DATA,
    VOTED,
    Cell,
    Source,
    load_source,
    make_cell,
    source_views,
)
from bench.lib.detection_default import (
    DEFAULT_ROW,
    default_markdown,
    default_summary,
    group_key,
    rechoose,
)
from bench.lib.metrics import detection, t_interval
from bench.lib.paths import CACHE, REPO, RESULTS
from bench.lib.report import interval_text, write_json
from worker.influence import canaries
from worker.influence.audit import harm_column, head_fitted, run_audit, score_fitted
from worker.influence.columns import METHODS as ENGINE_METHODS
from worker.influence.config import EngineConfig
from worker.influence.features import PairViews
from worker.influence.head import fit_head
from worker.influence.scores import bt_loss
from worker.influence.stats import excludes_zero, paired_difference
from worker.influence.trust import mislabelled_estimate, validation_trust

DEFAULT_OUT = RESULTS / "detection"
METHODS: tuple[str, ...] = tuple(m for m in ENGINE_METHODS if m != "tracin")
"""Engine methods scored in head mode (tracin needs SGD checkpoints, which head mode has not)."""

COLUMNS: dict[str, str] = {
    **{m: harm_column(m) for m in METHODS},
    "ensemble_disagreement": "ensemble_disagreement",
}
BASELINES: tuple[str, ...] = ("random", "length", "loss")
FLIP_RATES: tuple[float, ...] = (0.1, 0.2)


def top_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUROC, precision@k (k = number of wrong pairs), recall and precision in the top 10%
    (the noise study's `detection`, NaN where a cell has no wrong pair)."""
    found = detection(np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool), 0.1)
    nan = float("nan")
    return {
        "auroc": nan if found["auroc"] is None else found["auroc"],
        "precision_at_k": nan if found["precision_at_k"] is None else found["precision_at_k"],
        "recall_top10": nan if found["recall_top"] is None else found["recall_top"],
        "precision_top10": nan if found["precision_top"] is None else found["precision_top"],
    }


def cell_views(views: PairViews, index: np.ndarray, swap: np.ndarray) -> PairViews:
    """A cell's rows of the source views, negated where the cell presents the pair swapped."""
    sign = torch.as_tensor(np.where(swap, -1.0, 1.0), dtype=torch.float64)[:, None]
    rows = torch.as_tensor(np.asarray(index, dtype=np.int64))
    return PairViews({k: v[rows] * sign for k, v in views.views.items()})


def run_cell(
    source: Source, views: PairViews, cell: Cell, config: EngineConfig, truncation: float
) -> dict:
    """Every method's detection figures, the trust verdict and the estimate for one cell."""
    start = time.perf_counter()
    positions = canaries.select_canaries(len(cell.train_index), cell.seed)
    keep = ~canaries.canary_mask(len(cell.train_index), positions)
    planted = cell.train_swap ^ ~keep  # a job's canaries: training pairs presented swapped
    train = canaries.plant(cell.train_pairs(source), positions)
    val = cell.val_pairs(source)
    v_train = cell_views(views, cell.train_index, planted)
    v_val = cell_views(views, cell.val_index, cell.val_swap)
    fitted, history = head_fitted(v_train, v_val, config, train, val)
    all_scores, metrics, warnings = score_fitted(fitted, config)
    y = cell.mislabelled[keep]
    result: dict = {"methods": {}, "canaries": len(positions)}
    scores = _score_defaults(result, all_scores, positions, fitted.val_margins, y)
    for method, column in COLUMNS.items():
        if column in scores:
            result["methods"][method] = top_metrics(y, scores[column])
    rng = np.random.default_rng([cell.seed, 5])
    result["methods"]["random"] = top_metrics(y, rng.random(len(y)))
    # Ceiling probe: the same head recipe on the correctly labelled pairs only.
    assert fitted.head_choice is not None and fitted.grads is not None
    z = fitted.grads[torch.as_tensor(np.flatnonzero(keep))]
    clean = torch.as_tensor(np.flatnonzero(~y))
    w, _ = fit_head(z[clean], fitted.head_choice.l2)
    result["ceiling_clean_model_loss"] = top_metrics(y, bt_loss((z @ w).numpy()))
    assert fitted.crossfit is not None
    estimate = mislabelled_estimate(fitted.crossfit.oof_margin[keep], scores["harm"])
    truth = int(y.sum())
    harm_order = np.argsort(-scores["harm"], kind="stable")
    actual_precision = {
        str(f): float(y[harm_order[: max(1, int(round(f * len(y))))]].mean())
        for f in (0.05, 0.1, 0.2)
    }
    result.update(
        dataset=cell.dataset,
        flip_rate=cell.flip_rate,
        seed=cell.seed,
        max_length=config.max_length,
        n_train=len(y),
        n_val=len(val),
        n_mislabelled=truth,
        truncation_rate=truncation,
        head=fitted.head_choice.metrics(),
        train_accuracy=float((fitted.margins > 0).mean()),
        trust=validation_trust(fitted.val_margins),
        estimate=estimate,
        estimate_error={
            "count": (estimate["estimated_count"] - truth)
            if estimate.get("estimated_count") is not None
            else None,
            "posterior_count": (estimate["posterior_count"] - truth)
            if "posterior_count" in estimate
            else None,
            "confident_learning_count": (estimate["confident_learning_count"] - truth)
            if "confident_learning_count" in estimate
            else None,
            "covered": bool(estimate["count_ci95"][0] <= truth <= estimate["count_ci95"][1])
            if "count_ci95" in estimate
            else None,
            "precision_at_top": {
                k: v - actual_precision[k]
                for k, v in estimate.get("expected_precision_at_top", {}).items()
            },
        },
        actual_precision_at_top=actual_precision,
        default_method=metrics["default_method"],
        length_direction=metrics.get("length_direction"),
        warnings=warnings,
        seconds=time.perf_counter() - start,
        history=[{k: v for k, v in h.items() if k != "validation_loss_grid"} for h in history],
    )
    return result


def _score_defaults(
    result: dict,
    all_scores: dict[str, np.ndarray],
    positions: np.ndarray,
    val_margins: np.ndarray,
    y: np.ndarray,
) -> dict[str, np.ndarray]:
    """The per-job default (canaries.apply, as a job runs it) added to `result`: its detection
    figures as the `DEFAULT_ROW` method and its choice with the expected (canary) AUROC against
    the true AUROC on the cell's wrong pairs. Returns the non-canary pairs' scores."""
    trust = validation_trust(val_margins)
    methods = [m for m in METHODS if harm_column(m) in all_scores]
    scores, choice = canaries.apply(all_scores, methods, positions, trust)
    result["methods"][DEFAULT_ROW] = top_metrics(y, scores["harm"])
    truth = result["methods"][DEFAULT_ROW]["auroc"]
    expected = choice["expected_auroc"]
    choice["true_auroc"] = truth
    choice["expected_error"] = None if expected is None else expected - truth
    result["default_choice"] = choice
    return scores


def summarise(cells: list[dict]) -> dict:
    """Per group (dataset × flip rate × max_length): every method's figures over seeds and its
    paired AUROC differences against loss and length; plus the pooled default selection. Every
    cell's per-job default is first re-chosen under the current rule (`rechoose`)."""
    for cell in cells:
        rechoose(cell)
    groups: dict[str, list[dict]] = {}
    for cell in cells:
        groups.setdefault(f"{group_key(cell)} | L{cell['max_length']}", []).append(cell)
    out: dict = {"groups": {}, "selection": {}}
    for key, members in sorted(groups.items()):
        members.sort(key=lambda c: c["seed"])
        methods = sorted(set.intersection(*(set(c["methods"]) for c in members)))
        entry: dict = {"seeds": [c["seed"] for c in members], "methods": {}}
        for method in methods:
            figures = {
                metric: t_interval([c["methods"][method][metric] for c in members])
                for metric in ("auroc", "precision_at_k", "recall_top10")
            }
            aurocs = [c["methods"][method]["auroc"] for c in members]
            for base in ("loss", "length"):
                figures[f"auroc_minus_{base}"] = paired_difference(
                    aurocs, [c["methods"][base]["auroc"] for c in members]
                )
            entry["methods"][method] = figures
        entry["ceiling_clean_model_loss"] = t_interval(
            [
                c["ceiling_clean_model_loss"]["auroc"]
                for c in members
                if "ceiling_clean_model_loss" in c
            ]
        )
        entry["val_accuracy"] = t_interval([c["trust"]["val_accuracy"] for c in members])
        entry["val_loss"] = t_interval([c["trust"]["val_loss"] for c in members])
        entry["trusted_fraction"] = float(np.mean([c["trust"]["is_evidence"] for c in members]))
        entry["truncation_rate"] = members[0]["truncation_rate"]
        entry["head_features"] = sorted({c["head"]["head_features"] for c in members})
        for c in members:
            if "estimate_error" not in c:  # LoRA cells: the job's estimate, compared here
                truth, est = c["n_mislabelled"], c["estimate"].get("estimated_count")
                c["estimate_error"] = {
                    "count": None if est is None else est - truth,
                    "precision_at_top": {},
                }
        entry["estimate_error_count"] = t_interval(
            [
                c["estimate_error"]["count"]
                for c in members
                if c["estimate_error"]["count"] is not None
            ]
        )
        entry["estimate_abs_error_count"] = t_interval(
            [
                abs(c["estimate_error"]["count"])
                for c in members
                if c["estimate_error"]["count"] is not None
            ]
        )
        entry["n_mislabelled"] = t_interval([c["n_mislabelled"] for c in members])
        covered = [c["estimate_error"].get("covered") for c in members]
        covered = [x for x in covered if x is not None]
        entry["estimate_interval_coverage"] = float(np.mean(covered)) if covered else None
        entry["estimate_error_confident_learning"] = t_interval(
            [
                c["estimate_error"]["confident_learning_count"]
                for c in members
                if c["estimate_error"].get("confident_learning_count") is not None
            ]
        )
        entry["estimate_error_precision_top10"] = t_interval(
            [
                c["estimate_error"]["precision_at_top"]["0.1"]
                for c in members
                if "0.1" in c["estimate_error"]["precision_at_top"]
            ]
        )
        out["groups"][key] = entry
    out["default"] = default_summary(cells)
    for length in sorted({c["max_length"] for c in cells}):
        out["selection"][f"L{length}"] = select_default(
            [c for c in cells if c["max_length"] == length]
        )
    return out


def select_default(cells: list[dict]) -> dict:
    """The default rule: best mean AUROC across datasets (each dataset weighted equally), kept
    only if its paired intervals (over every cell) exclude 0 above both loss and length."""
    by_dataset: dict[str, list[dict]] = {}
    for cell in cells:
        by_dataset.setdefault(cell["dataset"], []).append(cell)
    methods = sorted(set.intersection(*(set(c["methods"]) for c in cells)) - {"random"})
    means = {
        m: float(
            np.mean([np.mean([c["methods"][m]["auroc"] for c in g]) for g in by_dataset.values()])
        )
        for m in methods
        if m != "ensemble_disagreement"
    }
    ranking = sorted(means, key=lambda m: -means[m])
    best = ranking[0]
    diffs = {
        base: paired_difference(
            [c["methods"][best]["auroc"] for c in cells],
            [c["methods"][base]["auroc"] for c in cells],
        )
        for base in ("loss", "length")
    }
    beats = (
        all(excludes_zero(d) and d["mean"] > 0 for d in diffs.values())
        if best
        not in (
            "loss",
            "length",
        )
        else False
    )
    fallback = max(("loss", "length"), key=lambda m: means[m])
    rows = []
    for m in ranking:
        row: dict = {"method": m, "mean_auroc": means[m]}
        row["per_dataset"] = {
            d: float(np.mean([c["methods"][m]["auroc"] for c in g])) for d, g in by_dataset.items()
        }
        for base in ("loss", "length"):
            diff = paired_difference(
                [c["methods"][m]["auroc"] for c in cells],
                [c["methods"][base]["auroc"] for c in cells],
            )
            row[f"minus_{base}"] = diff
            row[f"beats_{base}"] = bool(m != base and excludes_zero(diff) and diff["mean"] > 0)
        rows.append(row)
    return {
        "rows": rows,
        "mean_auroc_across_datasets": means,
        "ranking": ranking,
        "best": best,
        "best_minus": diffs,
        "best_beats_both": beats,
        "default": best if beats or best in ("loss", "length") else fallback,
        "n_cells": len(cells),
        "datasets": sorted(by_dataset),
    }


def fmt(x: dict | None, digits: int = 3) -> str:
    return interval_text(x, digits=digits, signed=False)


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def markdown(summary: dict, command: str, mode: str = "head") -> str:
    lines = [
        f"# Detection benchmark ({mode} mode, MiniLM, CPU)",
        "",
        f"Command: `{command}`. AUROC against the truly wrong pairs, mean over seeds with its "
        "Student-t 95% interval; Δ columns are paired per seed (same split, same flips).",
        "",
    ]
    for key, entry in summary["groups"].items():
        lines += [
            f"## {key}",
            "",
            f"seeds {entry['seeds']}; validation accuracy {fmt(entry['val_accuracy'])}, loss "
            f"{fmt(entry['val_loss'], 4)} (ln 2 = 0.6931); ranking trusted in "
            f"{entry['trusted_fraction']:.0%} of seeds; truncation rate "
            f"{entry['truncation_rate']:.2f}; head features {', '.join(entry['head_features'])}; "
            f"ceiling (head on the correct pairs only, by loss) AUROC "
            f"{fmt(entry['ceiling_clean_model_loss'])}.",
            f"Mislabelled-count estimate: truly wrong {fmt(entry['n_mislabelled'], 1)}, "
            f"error {fmt(entry['estimate_error_count'], 1)} (|error| "
            f"{fmt(entry['estimate_abs_error_count'], 1)}), its 95% interval holding the truth in "
            f"{_percent(entry['estimate_interval_coverage'])} of seeds; confident-learning count "
            f"error {fmt(entry['estimate_error_confident_learning'], 1)}; expected − actual "
            f"precision in the default's top 10%: {fmt(entry['estimate_error_precision_top10'])}.",
            "",
            "| method | AUROC | P@k | recall top 10% | Δ vs loss | Δ vs length |",
            "|---|---|---|---|---|---|",
        ]
        rows = sorted(entry["methods"].items(), key=lambda kv: -(kv[1]["auroc"]["mean"] or 0.0))
        for method, fig in rows:
            lines.append(
                f"| {method} | {fmt(fig['auroc'])} | {fmt(fig['precision_at_k'])} | "
                f"{fmt(fig['recall_top10'])} | {fmt(fig['auroc_minus_loss'])} | "
                f"{fmt(fig['auroc_minus_length'])} |"
            )
        lines.append("")
    lines += default_markdown(summary)
    lines += ["## Default selection", ""]
    for recipe, sel in summary["selection"].items():
        ranked = ", ".join(
            f"{m} {sel['mean_auroc_across_datasets'][m]:.3f}" for m in sel["ranking"]
        )
        d = sel["best_minus"]
        lines += [
            f"- **{recipe}**: mean AUROC across {', '.join(sel['datasets'])}: {ranked}.",
            f"  Best `{sel['best']}`: Δ vs loss {fmt(d['loss'])}, Δ vs length {fmt(d['length'])}"
            f" over {sel['n_cells']} cells; beats both: {sel['best_beats_both']}; "
            f"default by the rule: `{sel['default']}`.",
        ]
    return "\n".join(lines) + "\n"


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(summary["groups"].items())
    methods = sorted({m for _, e in groups for m in e["methods"]})
    fig, ax = plt.subplots(figsize=(max(8, 1.4 * len(groups)), 5))
    width = 0.8 / len(methods)
    for j, method in enumerate(methods):
        xs, ys, lo, hi = [], [], [], []
        for i, (_, entry) in enumerate(groups):
            fig_ = entry["methods"].get(method)
            if not fig_ or fig_["auroc"]["mean"] is None:
                continue
            a = fig_["auroc"]
            xs.append(i + (j - len(methods) / 2) * width)
            ys.append(a["mean"])
            lo.append(a["mean"] - (a["ci_low"] if a["ci_low"] is not None else a["mean"]))
            hi.append((a["ci_high"] if a["ci_high"] is not None else a["mean"]) - a["mean"])
        ax.bar(xs, ys, width, yerr=[lo, hi], label=method, capsize=2)
    ax.axhline(0.5, color="k", lw=0.8, ls="--")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([k for k, _ in groups], rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0.3, 1.0)
    ax.set_ylabel("AUROC against truly wrong pairs (95% CI over seeds)")
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


LORA_METHODS: tuple[str, ...] = (*EngineConfig().methods, "datainf")
"""LoRA cells score what a default audit computes (its per-job default chooses among these) and
DataInf (free once the per-pair gradients exist); oof_loss/ensemble would train folds × repeats
more models, group its interactions."""

CANARY_RECIPE = "canaries-v1"
"""Cells plant the job's canaries (worker/influence/canaries.py): part of every cell's recipe."""

RECIPE_IGNORED: frozenset[str] = frozenset({"save_model"})
"""Config fields that do not change a cell's scores, left out of its recipe hash."""


def recipe_hash(config: EngineConfig, limit: int | None, sizes, n_source: int) -> str:
    """The key that makes a cached cell reusable: everything that changes its scores."""
    fields = {k: v for k, v in dataclasses.asdict(config).items() if k not in RECIPE_IGNORED}
    blob = json.dumps([fields, limit, sizes, n_source, CANARY_RECIPE], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def run_cell_lora(source: Source, cell: Cell, config: EngineConfig) -> dict:
    """A LoRA cell: the whole audit (training, gradients, scores) as a job runs it."""
    start = time.perf_counter()
    positions = canaries.select_canaries(len(cell.train_index), cell.seed)
    keep = ~canaries.canary_mask(len(cell.train_index), positions)
    train = canaries.plant(cell.train_pairs(source), positions)
    val = cell.val_pairs(source)
    audit = run_audit(train, val, config, keep_state=True)
    y = cell.mislabelled[keep]
    result: dict = {"methods": {}, "canaries": len(positions)}
    assert audit.state is not None
    scores = _score_defaults(result, audit.scores, positions, audit.state.val_margins, y)
    for method, column in COLUMNS.items():
        if column in scores:
            result["methods"][method] = top_metrics(y, scores[column])
    rng = np.random.default_rng([cell.seed, 5])
    result["methods"]["random"] = top_metrics(y, rng.random(len(y)))
    m = audit.metrics.model_dump()
    result.update(
        dataset=cell.dataset,
        flip_rate=cell.flip_rate,
        seed=cell.seed,
        max_length=config.max_length,
        mode="lora",
        n_train=len(y),
        n_val=len(val),
        n_mislabelled=int(y.sum()),
        truncation_rate=m["truncation_rate"]["train"],
        head={"head_features": "lora"},
        train_accuracy=m["train_accuracy"],
        trust=m["trust"],
        estimate=m["mislabelled"],
        default_method=m["default_method"],
        seconds=time.perf_counter() - start,
        stage_seconds=m["seconds"],
    )
    return result


def _verdict(sel: dict) -> str:
    """One sentence on the default rule's outcome, for job metrics and the UI."""
    best, means = sel["best"], sel["mean_auroc_across_datasets"]
    head = (
        f"Detection benchmark ({sel['n_cells']} cells of ~1,000 pairs: "
        f"{', '.join(sel['datasets'])}, head mode, MiniLM): "
    )
    if best in ("loss", "length"):
        runner = next(m for m in sel["ranking"] if m not in ("loss", "length"))
        row = next(r for r in sel["rows"] if r["method"] == runner)
        beaten = [b for b in ("loss", "length") if row[f"beats_{b}"]]
        if len(beaten) == 1:
            other = "length" if beaten[0] == "loss" else "loss"
            against = f"beats the {beaten[0]} but not the {other}"
        else:
            against = "beats both baselines" if beaten else "beats neither baseline"
        return (
            head + f"the {best} baseline ranks first (mean AUROC {means[best]:.3f}); the best "
            f"reward-model score, {runner}, reaches {means[runner]:.3f} and {against} with a "
            f"paired 95% interval, so the default harm is {sel['default']}."
        )
    verdict = "beats" if sel["best_beats_both"] else "does not beat"
    return (
        head + f"{best} ranks first (mean AUROC {means[best]:.3f}) and {verdict} both the loss "
        f"and the length heuristic with paired 95% intervals; the default harm is "
        f"{sel['default']}."
    )


def write_engine_table(summary: dict, cells: list[dict], max_length: int) -> Path:
    """The per-method verdict a job quotes (worker/influence/benchmark_table.py)."""
    sel = summary["selection"][f"L{max_length}"]
    chosen = [c for c in cells if c["max_length"] == max_length]
    table = {
        "mode": "head",
        "model": "minilm",
        "max_length": max_length,
        "n_train_range": [min(c["n_train"] for c in chosen), max(c["n_train"] for c in chosen)],
        "datasets": sel["datasets"],
        "n_cells": sel["n_cells"],
        "default": sel["default"],
        "source": "bench/results/detection/detection.md",
        "summary": _verdict(sel),
        "rows": [
            {
                "method": r["method"],
                "mean_auroc": round(r["mean_auroc"], 4),
                "per_dataset": {k: round(v, 4) for k, v in r["per_dataset"].items()},
                "beats_loss": r["beats_loss"],
                "beats_length": r["beats_length"],
                "minus_loss": [round(r["minus_loss"][k], 4) for k in ("mean", "ci_low", "ci_high")],
                "minus_length": [
                    round(r["minus_length"][k], 4) for k in ("mean", "ci_low", "ci_high")
                ],
            }
            for r in sel["rows"]
        ],
    }
    path = REPO / "worker" / "influence" / "detection_table.json"
    write_json(path, table, indent=1)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="seeds run from here (fresh seeds confirm a rule chosen on earlier ones)",
    )
    parser.add_argument("--rates", default=",".join(map(str, FLIP_RATES)), help="planted flips")
    parser.add_argument("--max-length", default="128,256", help="comma-separated recipes")
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (bench/gpu/)")
    parser.add_argument("--quick", action="store_true", help="tiny model, few pairs, 2 seeds")
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="planted sets: read only the first N pairs of the file and split them 3:1 into "
        "training and validation pairs (a smaller grid for a busy CPU); the voted sets keep theirs",
    )
    parser.add_argument(
        "--cap",
        default=None,
        help="TRAIN,VAL: at most this many training and validation pairs per cell, a seeded "
        "subset of every dataset's split, the voted sets' too (LoRA cells on a CPU)",
    )
    parser.add_argument(
        "--summarise-only",
        action="store_true",
        help="run no new cell: summarise the cells already under --out (a partial grid)",
    )
    parser.add_argument(
        "--mode",
        choices=("head", "lora"),
        default="head",
        help="lora: full audits per cell (run_audit; minutes per cell on a CPU)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    limit, sizes, seeds, model = None, None, args.seeds, args.model
    lengths = [int(x) for x in args.max_length.split(",")]
    cap = tuple(int(x) for x in args.cap.split(",")) if args.cap else None
    if args.limit is not None:
        limit, sizes = args.limit, (args.limit * 3 // 4, args.limit - args.limit * 3 // 4)
    if args.quick:
        limit, sizes, seeds, model, lengths = 260, (200, 50), 2, "tiny", [64]
    command = "python -m bench.detection " + " ".join(argv if argv is not None else sys.argv[1:])
    cells_dir = args.out / "cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    cells: list[dict] = []
    for dataset in args.datasets.split(","):
        voted_whole = dataset in VOTED and not args.quick
        source = load_source(dataset, args.data_dir, None if voted_whole else limit)
        planted_rates = tuple(float(r) for r in args.rates.split(","))
        rates: tuple[float | None, ...] = planted_rates if dataset in PLANTED else (None,)
        for max_length in lengths:
            config = EngineConfig(
                model=model,
                mode="head",
                max_length=max_length,
                device=args.device,
                methods=list(METHODS),
                default_method="oof_loss",
            )
            if args.mode == "lora":
                config = dataclasses.replace(
                    config,
                    mode="lora",
                    methods=list(LORA_METHODS),
                    default_method="auto",
                    crossfit_repeats=1,
                )
            recipe = recipe_hash(config, limit, (sizes, cap) if cap else sizes, len(source.pairs))
            views, truncation = (
                source_views(source, config, args.cache)
                if args.mode == "head" and not args.summarise_only
                else (None, None)
            )
            for rate in rates:
                for seed in range(args.first_seed, args.first_seed + seeds):
                    mode_tag = "" if args.mode == "head" else "_lora"
                    tag = f"{dataset}_r{rate}_s{seed}_L{max_length}{mode_tag}_{recipe}"
                    path = cells_dir / f"{tag}.json"
                    if path.exists():
                        cells.append(json.loads(path.read_text()))
                        continue
                    if args.summarise_only:
                        continue
                    cell = make_cell(source, rate, seed, sizes if dataset not in VOTED else None)
                    if cap:
                        cell = cell.capped(*cap)
                    if views is None:
                        result = run_cell_lora(source, cell, config)
                    else:
                        assert truncation is not None
                        result = run_cell(source, views, cell, config, truncation)
                    result["recipe"] = recipe
                    result["command"] = command
                    path.write_text(json.dumps(result, indent=1, default=float))
                    cells.append(result)
                    best = result["methods"]
                    main_method = "oof_loss" if "oof_loss" in best else "corrected_loss"
                    choice = result["default_choice"]
                    print(
                        f"{tag}: default {choice['method']} {best[DEFAULT_ROW]['auroc']:.3f} "
                        f"(expected {choice['expected_auroc'] or float('nan'):.3f}) "
                        f"{main_method} {best[main_method]['auroc']:.3f} loss "
                        f"{best['loss']['auroc']:.3f} length {best['length']['auroc']:.3f} "
                        f"val acc {result['trust']['val_accuracy']:.3f} "
                        f"({result['seconds']:.1f} s)",
                        flush=True,
                    )
    summary = summarise(cells)
    (args.out / "detection.json").write_text(
        json.dumps(
            {"command": command, "summary": summary, "cells": cells}, indent=1, default=float
        )
    )
    (args.out / "detection.md").write_text(markdown(summary, command, args.mode))
    plot(summary, args.out / "detection_auroc.png")
    for recipe, sel in summary["selection"].items():
        print(
            f"{recipe}: best {sel['best']}, beats loss and length: {sel['best_beats_both']}, "
            f"default {sel['default']}"
        )
    whole_grid = args.limit is None and set(args.datasets.split(",")) >= set(DATASETS)
    if not args.quick and args.mode == "head" and not args.summarise_only and whole_grid:
        # Only a run over every dataset at full size may replace the table jobs quote.
        write_engine_table(summary, cells, lengths[0])
    print(f"wrote {args.out / 'detection.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
