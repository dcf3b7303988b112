"""The detection benchmark's view of the per-job default (worker/influence/canaries.py): each
cell's choice under the current rule, and the per-dataset table with the expected-figure error.

A cell stores every ranking's canary figures (`default_choice.rankings`), its validation verdict
and every method's true detection figures; the job's `harm` is a copy of the chosen method's
column, so the default's figures under any rule follow exactly from what the cell stored. The
summary re-applies the current `canaries.decide` to every cell (`rechoose`): a cell run under an
older rule is scored under the current one, and keeps what it chose when run beside it
(`default_choice.as_run`)."""

from __future__ import annotations

import numpy as np

from bench.lib.metrics import t_interval
from bench.lib.report import interval_text
from worker.influence import canaries

DEFAULT_ROW = "default (per job)"
"""The ranking each job picks for itself from its canaries and validation figures, scored like
every method on the non-canary pairs."""


def group_key(cell: dict) -> str:
    rate = cell["flip_rate"]
    return f"{cell['dataset']}" + (f" @{int(round(rate * 100))}%" if rate else " (real)")


def rechoose(cell: dict) -> bool:
    """Set the cell's default (its `DEFAULT_ROW` figures and `default_choice`) to what the current
    rule chooses from the cell's stored canary evidence; True where that differs from the choice
    the cell was run with. Cells without canaries are left alone."""
    stored = cell.get("default_choice")
    if not stored or not stored.get("rankings"):
        return False
    as_run = stored.get("as_run") or {"method": stored["method"], "rule": stored.get("rule")}
    evidence = {
        m: canaries.Evidence(
            m, e["auroc"], e["auroc_se"], e["top10_hits"], cell["canaries"], e["top10_size"]
        )
        for m, e in stored["rankings"].items()
    }
    method, reason, rule = canaries.decide(evidence, list(evidence), cell["trust"])
    choice = canaries.describe(method, reason, rule, evidence, cell["canaries"])
    truth = cell["methods"][method]["auroc"]
    expected = choice["expected_auroc"]
    choice.update(
        true_auroc=truth,
        expected_error=None if expected is None else expected - truth,
        as_run=as_run,
    )
    cell["default_choice"] = choice
    cell["methods"][DEFAULT_ROW] = dict(cell["methods"][method])
    return method != as_run["method"]


def default_summary(cells: list[dict]) -> dict:
    """The per-job default per dataset (and recipe): its AUROC over seeds, what it chose, the
    error of its expected figure (canary AUROC − true AUROC), and the mean over datasets (each
    weighted equally); 'learned' cells are those where the job's own rule says its model learned
    (validation above chance and a model ranking confirmed on the canaries)."""
    groups: dict[str, list[dict]] = {}
    for cell in cells:
        if "default_choice" in cell:
            groups.setdefault(f"{group_key(cell)} | L{cell['max_length']}", []).append(cell)
    rows: dict[str, dict] = {}
    for key, members in sorted(groups.items()):
        learned = [c for c in members if c["default_choice"].get("rule") == "learned"]
        errors = [
            c["default_choice"]["expected_error"]
            for c in members
            if c["default_choice"]["expected_error"] is not None
        ]
        chosen: dict[str, int] = {}
        for c in members:
            chosen[c["default_choice"]["method"]] = chosen.get(c["default_choice"]["method"], 0) + 1
        ran = [c for c in members if "as_run" in c["default_choice"]]
        rows[key] = {
            "dataset": members[0]["dataset"],
            "seeds": sorted(c["seed"] for c in members),
            "auroc": t_interval([c["methods"][DEFAULT_ROW]["auroc"] for c in members]),
            "auroc_learned": t_interval([c["methods"][DEFAULT_ROW]["auroc"] for c in learned]),
            "auroc_as_run": t_interval(
                [c["methods"][c["default_choice"]["as_run"]["method"]]["auroc"] for c in ran]
            ),
            "loss_auroc": t_interval([c["methods"]["loss"]["auroc"] for c in members]),
            "length_auroc": t_interval([c["methods"]["length"]["auroc"] for c in members]),
            "validation_learned_cells": sum(bool(c["trust"]["is_evidence"]) for c in members),
            "learned_cells": len(learned),
            "cells": len(members),
            "chosen": chosen,
            "expected_error": t_interval(errors),
            "expected_abs_error": t_interval([abs(e) for e in errors]),
            "canaries": int(np.mean([c["canaries"] for c in members])),
        }
    by_dataset: dict[str, list[float]] = {}
    for row in rows.values():
        if row["auroc"]["mean"] is not None:
            by_dataset.setdefault(row["dataset"], []).append(row["auroc"]["mean"])
    means = [float(np.mean(v)) for v in by_dataset.values()]
    return {
        "rows": rows,
        "mean_over_datasets": float(np.mean(means)) if means else None,
        "worst_dataset": float(np.min(means)) if means else None,
    }


def _fmt(x: dict | None) -> str:
    return interval_text(x, digits=3, signed=False)


def default_markdown(summary: dict) -> list[str]:
    """The per-job default's table (bench/RESULTS.md quotes it)."""
    d = summary.get("default") or {"rows": {}}
    lines = [
        "## The per-job default (canaries + validation; worker/influence/canaries.py)",
        "",
        "Each cell's default under the current rule (`canaries.decide`, re-applied to the canary "
        "figures the cell stored). 'Learned' = the job's own evidence says its model learned: "
        "validation accuracy above chance *and* the chosen model ranking's canary AUROC 95% "
        "interval above 0.5 (cells passing the validation test alone in brackets). Expected − "
        "true: the job's own expected figure (its chosen ranking's canary AUROC) minus that "
        "ranking's AUROC against the truly wrong pairs.",
        "",
        "| set | seeds | default AUROC | on learned cells (learned / by validation / cells) | "
        "as run (older rule) | loss | length | chosen (cells) | expected − true AUROC | "
        "abs error | canaries |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, r in d["rows"].items():
        chosen = ", ".join(f"{m} {n}" for m, n in sorted(r["chosen"].items()))
        seeds = f"{min(r['seeds'])}-{max(r['seeds'])}"
        lines.append(
            f"| {key.replace(' | ', ', ')} | {seeds} | {_fmt(r['auroc'])} | "
            f"{_fmt(r['auroc_learned'])} ({r['learned_cells']} / "
            f"[{r['validation_learned_cells']}] / {r['cells']}) | {_fmt(r['auroc_as_run'])} | "
            f"{_fmt(r['loss_auroc'])} | {_fmt(r['length_auroc'])} | {chosen} | "
            f"{_fmt(r['expected_error'])} | {_fmt(r['expected_abs_error'])} | {r['canaries']} |"
        )
    if d.get("mean_over_datasets") is not None:
        lines += [
            "",
            f"Mean over datasets (each weighted equally): {d['mean_over_datasets']:.3f}; "
            f"worst dataset {d['worst_dataset']:.3f}.",
        ]
    return lines + [""]
