"""The stage table: every flow's stages in order, each with its share of the job's progress bar,
the label the job's `stage` shows while it runs, and whether its fraction extrapolates; and a
job's work plan for the ETA (backend/storage/eta.py: rates are measured, never taken from here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Stage:
    name: str
    """The stage as the code names it (a canvas task's stage, or a single-task engine step)."""
    weight: float
    """Share of the job's progress bar (measured roughly on MiniLM)."""
    label: str
    """The job's `stage` while it runs (the names the single-task engine reports)."""
    steady: bool = False
    """Its fraction grows evenly with its work (a loop over pairs or steps), so the stage's own
    measured rate extrapolates; other stages are estimated from recent jobs only."""


FLOWS: dict[str, tuple[Stage, ...]] = {
    # A LoRA audit as a canvas (a MiniLM LoRA audit on the CPU, roughly).
    "lora": (
        Stage("train", 0.45, "training", steady=True),
        Stage("gradients", 0.35, "per_pair_gradients", steady=True),
        Stage("reduce", 0.05, "solving"),
        Stage("scores", 0.10, "scoring", steady=True),
        Stage("finalize", 0.05, "saving"),
    ),
    # A head or pretrained audit as a canvas: the backbone's forward passes are nearly all of it.
    "features": (
        Stage("features", 0.9, "extracting_features", steady=True),
        Stage("head", 0.1, "fitting_head"),
    ),
    # The single-task engine's steps, per job kind (their names are their labels).
    "audit": (
        Stage("loading_data", 0.02, "loading_data"),
        Stage("loading_model", 0.03, "loading_model"),
        Stage("training", 0.55, "training", steady=True),
        Stage("validation_gradient", 0.05, "validation_gradient"),
        Stage("per_pair_gradients", 0.25, "per_pair_gradients", steady=True),
        Stage("scoring", 0.05, "scoring"),
        Stage("saving", 0.05, "saving"),
    ),
    "verify": (
        Stage("loading_data", 0.02, "loading_data"),
        # The frozen backbone's features in head mode (tokenising only in LoRA mode).
        Stage("features", 0.3, "extracting_features", steady=True),
        Stage("retraining", 0.66, "retraining", steady=True),
        Stage("saving", 0.02, "saving"),
    ),
    # An LLM judge job (worker/jobs/judge.py): the server's answers are nearly all of it.
    "judge": (
        Stage("loading_data", 0.01, "loading_data"),
        Stage("judging", 0.98, "judging", steady=True),
        Stage("saving", 0.01, "saving"),
    ),
}

CANVAS_FLOWS: tuple[str, ...] = ("lora", "features")
"""The flows that run as Celery canvases of claimed tasks (the others run in one task)."""

CANVAS_STAGES: frozenset[str] = frozenset(s.name for f in CANVAS_FLOWS for s in FLOWS[f])
"""Stages whose tasks move the job's progress bar from their rows."""

LABELS: dict[str, str] = {s.name: s.label for f in CANVAS_FLOWS for s in FLOWS[f]}
"""A canvas stage's label (the job's `stage` while it runs, and in failure messages)."""


def weights(flow: str) -> dict[str, float]:
    """{stage: share of the progress bar} of a flow, in order; empty for an unknown flow."""
    return {s.name: s.weight for s in FLOWS.get(flow, ())}


def label(stage: str) -> str:
    """The label of a canvas stage; any other stage is its own label."""
    return LABELS.get(stage, stage)


def work_plan(
    flow: str, config: dict[str, Any], n_pairs: int, recipe: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What the ETA needs to know about a job before it runs (`backend.storage.eta.new_timing`'s
    arguments but the history): the key its stage rates are shared under (flow, mode, model,
    device: a verify job's from its audit's `recipe`), the flow's stages, the steady ones, and
    each stage's work in units (pairs; a verify job's retraining: pairs × seeds × arms)."""
    recipe = recipe if recipe is not None else config
    parts = (flow, recipe.get("mode", "lora"), recipe.get("model", "minilm"))
    key = "/".join(str(p) for p in (*parts, recipe.get("device", "auto")))
    units: dict[str, float] = {s.name: float(max(1, n_pairs)) for s in FLOWS.get(flow, ())}
    if flow == "verify":
        arms = 4 if config.get("rule") == "greedy" else 3
        units["retraining"] = float(max(1, n_pairs) * int(config.get("seeds", 3)) * arms)
    return {
        "key": key,
        "order": [s.name for s in FLOWS.get(flow, ())],
        "steady": [s.name for s in FLOWS.get(flow, ()) if s.steady],
        "units": units,
    }
