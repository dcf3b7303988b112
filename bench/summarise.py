"""One table from several engine_bench runs (seeds, machines): AUROC at the default damping.

    .venv/bin/python -m bench.summarise bench/results/engine_bench_cpu.json \\
        bench/results/engine_bench_cpu-seed1.json bench/results/engine_bench_h100-seed*.json

Damping-dependent methods are read from each run's damping sweep at EngineConfig's default
damping, so runs made when the default was different still compare like with like. Prints
markdown.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from worker.influence.config import EngineConfig

SWEPT = {  # label -> key in the damping sweep (older runs called corrected_loss by its formula)
    "corrected_loss (default)": ("corrected_loss", "z_loss_plus_self_influence"),
    "self_influence": ("self_influence",),
    "influence": ("influence",),
}
FIXED = {  # label -> detection row (independent of the engine's damping)
    "loss": "harm_loss",
    "gradient_similarity": "harm_gradient_similarity",
    "datainf": "harm_datainf",
    "tracin": "harm_tracin",
    "kronfluence EK-FAC self-influence (same model)": "kronfluence EK-FAC self-influence "
    "(same model)",
    "kronfluence EK-FAC influence (same model)": "kronfluence EK-FAC influence (same model)",
    "z(loss) + z(kronfluence self-influence) (same model)": "z(loss) + z(kronfluence "
    "self-influence) (same model)",
}


def row_of(run: dict, label: str, damping: str) -> float | None:
    if label in SWEPT:
        sweep = run["damping_sweep"].get(damping, {})
        for key in SWEPT[label]:
            if key in sweep:
                return float(sweep[key]["auroc"])
        return None
    found = run["detection"].get(FIXED[label])
    return None if found is None else float(found["auroc"])


def main(paths: list[str]) -> None:
    damping = str(EngineConfig().damping)
    runs = []
    for path in paths:
        report = json.loads(Path(path).read_text())
        run = next(r for r in report["runs"] if "same_as" not in r)
        device = "H100" if "H100" in report["device"] else "CPU"
        runs.append((f"{device} seed {run['config']['seed']}", run))
    print(f"AUROC against the flip mask at damping {damping} (EngineConfig's default)\n")
    print("| method | " + " | ".join(name for name, _ in runs) + " | mean |")
    print("|---|" + "---|" * (len(runs) + 1))
    for label in list(SWEPT) + list(FIXED):
        values = [row_of(run, label, damping) for _, run in runs]
        known = [v for v in values if v is not None]
        cells = ["–" if v is None else f"{v:.3f}" for v in values]
        mean = f"**{np.mean(known):.3f}**" if len(known) == len(values) else "–"
        print(f"| {label} | " + " | ".join(cells) + f" | {mean} |")
    print()
    print("Damping sweep, mean AUROC over these runs\n")
    print("| damping | " + " | ".join(SWEPT) + " |")
    print("|---|" + "---|" * len(SWEPT))
    for swept in runs[0][1]["damping_sweep"]:
        cells = []
        for label in SWEPT:
            values = [row_of(run, label, swept) for _, run in runs]
            cells.append("–" if None in values else f"{np.mean(values):.3f}")
        print(f"| {swept} | " + " | ".join(cells) + " |")
    print()
    print("| | " + " | ".join(name for name, _ in runs) + " |")
    print("|---|" + "---|" * len(runs))
    for key, fmt in (
        ("val_accuracy", "{:.3f}"),
        ("test_accuracy", "{:.3f}"),
        ("epoch_ratio", "{:.2f}"),
    ):
        print(f"| {key} | " + " | ".join(fmt.format(run[key]) for _, run in runs) + " |")
    cells = []
    for _, run in runs:
        naive = run.get("naive")
        cells.append(
            "–"
            if naive is None
            else f"{naive['speedup_vs_naive']:.1f}× "
            f"(agree {naive['max_relative_score_difference']:.0e})"
        )
    print("| speedup_vs_naive | " + " | ".join(cells) + " |")
    cells = []
    for _, run in runs:
        k = run.get("kronfluence")
        cells.append("–" if k is None else f"{k['epoch_ratio']:.2f}")
    print("| kronfluence EK-FAC time in epochs | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="engine_bench_*.json files")
    main(parser.parse_args().paths)
