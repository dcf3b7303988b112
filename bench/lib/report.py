"""Writing results: JSON files, and the interval text of the markdown tables."""

from __future__ import annotations

import json
from pathlib import Path


def write_json(path: Path, data: object, indent: int = 2, newline: bool = True) -> None:
    """`data` as JSON at `path` (its folder made), ending in a newline unless told not to."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=indent) + ("\n" if newline else ""))


def interval_text(
    d: dict | None, scale: float = 1.0, digits: int = 1, signed: bool = True, missing: str = "–"
) -> str:
    """`mean [ci_low, ci_high]` of an interval dict, each times `scale`; the mean alone when it
    has no interval, `missing` when it has no mean."""
    if not d or d.get("mean") is None:
        return missing
    spec = f"{'+' if signed else ''}.{digits}f"
    mean = format(scale * d["mean"], spec)
    if d.get("ci_low") is None:
        return mean
    return f"{mean} [{format(scale * d['ci_low'], spec)}, {format(scale * d['ci_high'], spec)}]"


def bootstrap_text(d: dict, spec: str = ".3f") -> str:
    """`value [ci_low, ci_high]` of a bootstrap dict, each formatted by `spec`."""
    return f"{d['value']:{spec}} [{d['ci_low']:{spec}}, {d['ci_high']:{spec}}]"
