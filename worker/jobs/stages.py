"""The stage table: every flow's stages in order, each with its share of the job's progress bar
and the label the job's `stage` shows while it runs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    name: str
    """The stage as the code names it (a canvas task's stage, or a single-task engine step)."""
    weight: float
    """Share of the job's progress bar (measured roughly on MiniLM)."""
    label: str
    """The job's `stage` while it runs (the names the single-task engine reports)."""


FLOWS: dict[str, tuple[Stage, ...]] = {
    # A LoRA audit as a canvas (a MiniLM LoRA audit on the CPU, roughly).
    "lora": (
        Stage("train", 0.45, "training"),
        Stage("gradients", 0.35, "per_pair_gradients"),
        Stage("reduce", 0.05, "solving"),
        Stage("scores", 0.10, "scoring"),
        Stage("finalize", 0.05, "saving"),
    ),
    # A head or pretrained audit as a canvas: the backbone's forward passes are nearly all of it.
    "features": (
        Stage("features", 0.9, "extracting_features"),
        Stage("head", 0.1, "fitting_head"),
    ),
    # The single-task engine's steps, per job kind (their names are their labels).
    "audit": (
        Stage("loading_data", 0.02, "loading_data"),
        Stage("loading_model", 0.03, "loading_model"),
        Stage("training", 0.55, "training"),
        Stage("validation_gradient", 0.05, "validation_gradient"),
        Stage("per_pair_gradients", 0.25, "per_pair_gradients"),
        Stage("scoring", 0.05, "scoring"),
        Stage("saving", 0.05, "saving"),
    ),
    "verify": (
        Stage("loading_data", 0.02, "loading_data"),
        Stage("retraining", 0.96, "retraining"),
        Stage("saving", 0.02, "saving"),
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
