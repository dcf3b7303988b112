"""Group influence against leave-group-out retraining, and greedy vs top-K pruning (issue 11).

Head mode (MiniLM's pooled features, a logistic reward head fitted exactly, so retraining without a
group is exact and takes milliseconds), on HH-RLHF helpful-base and harmless-base with planted
flips. Two parts:

1. **Fidelity.** Groups of sizes 5, 20 and 50 of three kinds: (a) random training pairs, (b) a
   random pair and its nearest neighbours in gradient space (cosine of the loss gradients), (c)
   near-duplicates: light paraphrases and copies of one pair, added to the training set in clusters
   of 50. For every group the actual change of validation loss when the head is refitted without it
   is compared with the first-order sum Σ e_i and the interaction-aware Σ e_i + ½ ΣΣ κ(i, j):
   Spearman and mean absolute error per kind and size, bootstrap 95% intervals over groups, and the
   paired bootstrap difference (interaction-aware minus first-order).
2. **Pruning.** Remove a budget of K pairs chosen by greedy (interaction-aware), by the top-K of the
   same first-order effect, or at random; refit; pairwise accuracy on a held-out test split, per
   seed, with paired t-intervals. At 10/20/30% flips, and with duplicated noise (every flipped pair
   present 3–5 times): the number of distinct flipped pairs each rule removes is reported.

    python -m bench.group_fidelity            # full run (a few minutes per dataset after features)
    python -m bench.group_fidelity --quick    # CI-sized: the tiny model, fewer groups

The curvature is the head's exact Hessian (damping 0 on top of the L2 the head was fitted with)
unless --damping is given. Features are cached under --cache.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from bench.lib.metrics import estimate_fidelity
from bench.lib.noise_data import (
    DATASETS,
    DEFAULT_DATA_DIR,
    feature_differences,
    flip_mask,
    load_pairs,
    make_split,
)
from bench.lib.paths import CACHE, RESULTS
from bench.lib.report import bootstrap_text, interval_text, write_json
from worker.influence.config import EngineConfig
from worker.influence.curvature import GaussNewton
from worker.influence.data import Pair
from worker.influence.features import column_scale
from worker.influence.group import GroupInfluence, group_influence
from worker.influence.head import MIN_L2, fit_head, select_l2
from worker.influence.stats import paired_difference

KINDS: tuple[str, ...] = ("random", "neighbours", "duplicates")
L2_GRID = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
_CONTRACTIONS = (
    ("do not", "don't"),
    ("I am", "I'm"),
    ("it is", "it's"),
    ("can not", "can't"),
    ("you are", "you're"),
    ("that is", "that's"),
)
_PREFIXES = ("", "Well, ", "Sure. ", "Okay, ", "Hm, ")


@dataclass
class Settings:
    model: str = "minilm"
    max_length: int = 128
    n_train: int = 1000
    n_val: int = 200
    n_test: int = 500
    noise: float = 0.1
    groups: int = 200
    sizes: tuple[int, ...] = (5, 20, 50)
    clusters: int = 20
    seeds: tuple[int, ...] = (0, 1, 2)
    prune_noise: tuple[float, ...] = (0.1, 0.2, 0.3)
    budget: float = 0.1
    damping: float = 0.0
    bootstrap: int = 2000
    l2: float | None = None  # None: chosen on validation loss from L2_GRID, as head mode does


def paraphrase(text: str, rng: np.random.Generator) -> str:
    """A light edit of `text`: a contraction swapped, a filler prefix, or punctuation; a third of
    the time the text itself (an exact copy)."""
    kind = rng.integers(3)
    if kind == 0:
        return text
    if kind == 1:
        for long, short in _CONTRACTIONS:
            if long in text:
                return text.replace(long, short, 1)
            if short in text:
                return text.replace(short, long, 1)
    prefix = _PREFIXES[rng.integers(1, len(_PREFIXES))]
    body = text.lstrip()
    edited = prefix + (body[:1].lower() + body[1:] if prefix.endswith(", ") else body)
    return edited.rstrip(".") + ("!" if rng.random() < 0.5 else ".")


def variant(pair: Pair, rng: np.random.Generator) -> Pair:
    """A near-duplicate of `pair`: both responses lightly edited, the label kept."""
    return Pair(pair.prompt, paraphrase(pair.chosen, rng), paraphrase(pair.rejected, rng))


@dataclass
class Problem:
    """One dataset's head-mode problem: scaled features, the fitted head, group influence."""

    z: torch.Tensor  # training [n, h], scaled
    z_val: torch.Tensor
    z_test: torch.Tensor
    l2: float
    w: torch.Tensor
    group: GroupInfluence
    flips: np.ndarray  # [n] which training rows carry a wrong label
    origin: np.ndarray  # [n] the base training row each row copies (itself for base rows)
    n_base: int

    def val_loss(self, w: torch.Tensor) -> float:
        return float(torch.nn.functional.softplus(-(self.z_val @ w)).mean())

    def refit(self, keep: np.ndarray) -> torch.Tensor:
        """The head without the removed rows: ε = −1/n on each, so the L2 scales by n/(n − s)."""
        n = len(keep)
        where = torch.as_tensor(keep)
        w, _ = fit_head(self.z[where], self.l2 * n / int(keep.sum()), start=self.w)
        return w

    def test_accuracy(self, w: torch.Tensor) -> float:
        return float(((self.z_test @ w) > 0).double().mean())


_FEATURES: dict[tuple, torch.Tensor] = {}


def _features(name: str, pairs: list[Pair], settings: Settings, cache: Path) -> torch.Tensor:
    key = (name, len(pairs), settings.model, settings.max_length)
    if key not in _FEATURES:
        config = EngineConfig(model=settings.model, mode="head", max_length=settings.max_length)
        _FEATURES[key] = feature_differences(name, pairs, config, cache).double()
    return _FEATURES[key]


def build_problem(
    dataset: str,
    pairs: list[Pair],
    settings: Settings,
    seed: int,
    noise: float,
    cache: Path,
    clusters: int,
    copies: tuple[int, int] | None = None,
) -> Problem:
    """Split, flip, add near-duplicate clusters (or duplicate every flip `copies` times), fit.

    Rows 0 … n_base − 1 are the base training pairs; copies follow. Features are computed once
    per dataset: a flip is z → −z, an exact copy repeats a row, and only the paraphrases of the
    cluster seeds are encoded anew (of the original pair; the seed's flip applies to them too).
    """
    split = make_split(len(pairs), settings.n_train, settings.n_val, settings.n_test, seed)
    flips = flip_mask(settings.n_train, noise, seed)
    z_all = _features(dataset, pairs, settings, cache)
    sign = torch.where(torch.as_tensor(flips), -1.0, 1.0).double()
    rows = [z_all[split.train] * sign[:, None]]
    rng = np.random.default_rng([seed, 7])
    origin = list(range(settings.n_train))
    if clusters:
        # Half the clusters copy a flipped pair, half a clean one.
        bad, good = np.flatnonzero(flips), np.flatnonzero(~flips)
        half = min(clusters // 2, len(bad))
        seeds = np.concatenate(
            [rng.choice(bad, half, replace=False), rng.choice(good, clusters - half, replace=False)]
        )
        variants = [
            variant(pairs[split.train[s]], rng)
            for s in seeds
            for _ in range(max(settings.sizes) - 1)
        ]
        z_var = _features(f"group-variants-{dataset}-{seed}", variants, settings, cache)
        per = max(settings.sizes) - 1
        for k, s in enumerate(seeds):
            rows.append(z_var[k * per : (k + 1) * per] * sign[s])
            origin.extend([int(s)] * per)
    if copies is not None:
        for s in np.flatnonzero(flips):
            extra = int(rng.integers(copies[0], copies[1] + 1)) - 1
            rows.append(rows[0][s : s + 1].repeat(extra, 1))
            origin.extend([int(s)] * extra)
    z_raw = torch.cat(rows)
    scale = column_scale(z_raw)
    z = z_raw / scale
    z_val, z_test = z_all[split.val] / scale, z_all[split.test] / scale
    l2 = settings.l2 if settings.l2 is not None else select_l2(z, z_val, L2_GRID)[0]
    l2 = max(l2, MIN_L2)
    w, _ = fit_head(z, l2)
    margins = (z @ w).numpy()
    gn = GaussNewton(z, margins)
    shift = l2 + settings.damping * gn.mean_diagonal()
    group = group_influence(
        gn.factor(shift).solve, z, margins, z_val, (z_val @ w).numpy(), np.arange(len(z))
    )
    origin_arr = np.asarray(origin)
    return Problem(z, z_val, z_test, l2, w, group, flips[origin_arr], origin_arr, settings.n_train)


def draw_groups(problem: Problem, kind: str, size: int, count: int, rng: np.random.Generator):
    """`count` groups of `size` training rows of `kind`."""
    n_base = problem.n_base
    if kind == "random":
        return [rng.choice(n_base, size, replace=False) for _ in range(count)]
    if kind == "neighbours":
        prob = torch.sigmoid(problem.z[:n_base] @ problem.w)
        g = -(1 - prob)[:, None] * problem.z[:n_base]
        g = g / torch.linalg.vector_norm(g, dim=1, keepdim=True).clamp_min(1e-300)
        out = []
        for anchor in rng.choice(n_base, count, replace=count > n_base):
            cosine = (g @ g[anchor]).numpy()
            out.append(np.argsort(-cosine, kind="stable")[:size])
        return out
    members: dict[int, list[int]] = {}
    for row in range(n_base, len(problem.origin)):
        members.setdefault(int(problem.origin[row]), [int(problem.origin[row])]).append(row)
    clusters = [np.asarray(v) for v in members.values() if len(v) >= size]
    return [
        rng.choice(clusters[rng.integers(len(clusters))], size, replace=False) for _ in range(count)
    ]


def fidelity(problem: Problem, settings: Settings, seed: int, log) -> list[dict]:
    rng = np.random.default_rng([seed, 11])
    full = problem.val_loss(problem.w)
    n = len(problem.origin)
    rows = []
    for kind in KINDS:
        for size in settings.sizes:
            start = time.perf_counter()
            actual, first, inter = [], [], []
            for members in draw_groups(problem, kind, size, settings.groups, rng):
                keep = np.ones(n, dtype=bool)
                keep[members] = False
                actual.append(problem.val_loss(problem.refit(keep)) - full)
                f, i = problem.group.estimate(members)
                first.append(f)
                inter.append(i)
            row = {
                "kind": kind,
                "size": size,
                "groups": len(actual),
                "mean_actual": float(np.mean(actual)),
                "seconds": time.perf_counter() - start,
                **estimate_fidelity(actual, first, inter, settings.bootstrap, rng),
                "points": {"actual": actual, "first": first, "interaction": inter},
            }
            rows.append(row)
            log(
                f"  {kind:10s} s={size:3d}: ρ first {row['spearman_first']['value']:.3f} "
                f"interaction {row['spearman_interaction']['value']:.3f}; MAE "
                f"{row['mae_first']['value']:.2e} → {row['mae_interaction']['value']:.2e}"
            )
    return rows


def prune_cell(problem: Problem, budget: int, seed: int) -> dict:
    """Greedy vs top-K (same first-order e) vs random removal of `budget` rows: test accuracy
    after refitting, and how many rows and distinct base pairs with a wrong label each removes."""
    n = len(problem.origin)
    rules = {
        "greedy": problem.group.candidates[problem.group.greedy(budget).order],
        "top_k": problem.group.candidates[problem.group.first_order(budget)],
        "random": np.random.default_rng([seed, 13]).choice(n, budget, replace=False),
    }
    out: dict = {"full": problem.test_accuracy(problem.w), "budget": budget}
    for rule, removed in rules.items():
        keep = np.ones(n, dtype=bool)
        keep[removed] = False
        bad = removed[problem.flips[removed]]
        out[rule] = {
            "test_accuracy": problem.test_accuracy(problem.refit(keep)),
            "flipped_rows": int(len(bad)),
            "distinct_flips": int(len(np.unique(problem.origin[bad]))),
            "estimate": problem.group.estimate(np.searchsorted(problem.group.candidates, removed)),
        }
    return out


def summarise_prune(cells: list[dict]) -> dict:
    """Per rule pair, the seed-paired difference of test accuracy and of distinct flips removed."""
    out = {}
    for a, b in (("greedy", "top_k"), ("greedy", "random"), ("top_k", "random")):
        out[f"{a}_minus_{b}"] = {
            "test_accuracy": paired_difference(
                [c[a]["test_accuracy"] for c in cells], [c[b]["test_accuracy"] for c in cells]
            ),
            "distinct_flips": paired_difference(
                [c[a]["distinct_flips"] for c in cells], [c[b]["distinct_flips"] for c in cells]
            ),
        }
    for rule in ("greedy", "top_k", "random"):
        out[f"{rule}_minus_full"] = {
            "test_accuracy": paired_difference(
                [c[rule]["test_accuracy"] for c in cells], [c["full"] for c in cells]
            )
        }
    return out


def _ci(d: dict, scale: float = 1.0, digits: int = 1) -> str:
    return interval_text(d, scale, digits)


def markdown(result: dict) -> str:
    s = result["settings"]
    lines = [
        "# Group influence vs leave-group-out retraining, and greedy pruning (head mode)",
        "",
        f"`{result['command']}` — {result['finished']}, {result['seconds']:.0f} s on this CPU.",
        f"Model {s['model']} (pooled features, max_length {s['max_length']}), a logistic head "
        f"fitted exactly; {s['n_train']} training pairs + {s['clusters']} near-duplicate clusters "
        f"of {max(s['sizes'])}, {s['n_val']} validation, {s['n_test']} test pairs; "
        f"{s['noise']:.0%} planted flips; damping {s['damping']} on top of the head's L2 "
        f"(0 = the exact Hessian); head L2 "
        f"{'chosen on validation loss' if s.get('l2') is None else s['l2']} "
        f"(fidelity problem: {', '.join(f'{d} {v:g}' for d, v in result.get('l2', {}).items())}).",
        "",
        "## Fidelity: Spearman with the actual change of validation loss (bootstrap 95% intervals "
        f"over groups, {s['groups']} groups per row)",
        "",
        "| dataset | kind | size | ρ first-order | ρ interaction-aware | gain | MAE first | "
        "MAE interaction | MAE change |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset, rows in result["fidelity"].items():
        for r in rows:
            lines.append(
                f"| {dataset} | {r['kind']} | {r['size']} | "
                f"{bootstrap_text(r['spearman_first'])} | "
                f"{bootstrap_text(r['spearman_interaction'])} | "
                f"{bootstrap_text(r['spearman_gain'])} | "
                f"{bootstrap_text(r['mae_first'], '.2e')} | "
                f"{bootstrap_text(r['mae_interaction'], '.2e')} | "
                f"{bootstrap_text(r['mae_change'], '.2e')} |"
            )
    lines += [
        "",
        f"## Pruning a budget of {s['budget']:.0%}: test accuracy and flips removed, seeds "
        f"{list(s['seeds'])} (paired t-intervals)",
        "",
        "| dataset | flips | duplicated | greedy − top-K (points) | greedy − random | "
        "top-K − random | top-K − all pairs | distinct flips removed: greedy / top-K / random |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in result["pruning"]:
        summary = row["summary"]
        counts = " / ".join(
            f"{np.mean([c[r]['distinct_flips'] for c in row['cells']]):.1f}"
            for r in ("greedy", "top_k", "random")
        )
        lines.append(
            f"| {row['dataset']} | {row['noise']:.0%} | {'3–5×' if row['duplicated'] else 'no'} | "
            f"{_ci(summary['greedy_minus_top_k']['test_accuracy'], 100)} | "
            f"{_ci(summary['greedy_minus_random']['test_accuracy'], 100)} | "
            f"{_ci(summary['top_k_minus_random']['test_accuracy'], 100)} | "
            f"{_ci(summary['top_k_minus_full']['test_accuracy'], 100)} | {counts} |"
        )
    return "\n".join(lines) + "\n"


def plot(result: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(result["fidelity"])
    fig, axes = plt.subplots(
        len(datasets), len(KINDS), figsize=(12, 4 * len(datasets)), squeeze=False
    )
    for r, dataset in enumerate(datasets):
        for c, kind in enumerate(KINDS):
            ax = axes[r][c]
            for row in result["fidelity"][dataset]:
                if row["kind"] != kind:
                    continue
                p = row["points"]
                ax.scatter(
                    p["actual"],
                    p["first"],
                    s=6,
                    alpha=0.4,
                    marker="x",
                    label=f"first, s={row['size']}",
                )
                ax.scatter(
                    p["actual"],
                    p["interaction"],
                    s=6,
                    alpha=0.4,
                    label=f"interaction, s={row['size']}",
                )
            lims = ax.get_xlim()
            ax.plot(lims, lims, color="grey", lw=0.8)
            ax.set_title(f"{dataset}: {kind}")
            ax.set_xlabel("actual Δ validation loss (refit)")
            ax.set_ylabel("estimate")
            ax.legend(fontsize=6)
    fig.suptitle(result["command"], fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny model, fewer groups (CI)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--out", type=Path, default=RESULTS / "group")
    parser.add_argument("--cache", type=Path, default=CACHE / "group")
    parser.add_argument("--groups", type=int)
    parser.add_argument("--damping", type=float)
    parser.add_argument("--skip-pruning", action="store_true")
    parser.add_argument(
        "--l2", type=float, help="the head's L2 (default: chosen on validation loss)"
    )
    parser.add_argument("--stem", default=None, help="output file name (default fidelity)")
    parser.add_argument("--torch-threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.torch_threads)
    settings = Settings()
    if args.quick:
        settings = Settings(
            model="tiny",
            n_train=120,
            n_val=40,
            n_test=60,
            groups=30,
            sizes=(3, 8),
            clusters=6,
            seeds=(0, 1),
            prune_noise=(0.2,),
            bootstrap=200,
        )
    if args.groups is not None:
        settings.groups = args.groups
    if args.damping is not None:
        settings.damping = args.damping
    settings.l2 = args.l2
    command = "python -m bench.group_fidelity " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f}s] {message}", flush=True)

    result: dict = {
        "settings": settings.__dict__,
        "command": command.strip(),
        "fidelity": {},
        "pruning": [],
    }
    for dataset in args.datasets:
        pairs = load_pairs(dataset, args.data_dir)
        log(f"{dataset}: fidelity (seed 0)")
        problem = build_problem(
            dataset, pairs, settings, 0, settings.noise, args.cache, settings.clusters
        )
        log(
            f"  {len(problem.origin)} training rows, h = {problem.z.shape[1]}, l2 {problem.l2:g}, "
            f"κ factor {problem.group.memory_bytes()['factor'] / 2**20:.1f} MiB in "
            f"{problem.group.seconds:.2f} s"
        )
        result["fidelity"][dataset] = fidelity(problem, settings, 0, log)
        result.setdefault("l2", {})[dataset] = problem.l2
        if args.skip_pruning:
            continue
        for duplicated in (False, True):
            for noise in settings.prune_noise:
                cells = []
                for seed in settings.seeds:
                    p = build_problem(
                        dataset,
                        pairs,
                        settings,
                        seed,
                        noise,
                        args.cache,
                        0,
                        (3, 5) if duplicated else None,
                    )
                    budget = max(1, round(settings.budget * len(p.origin)))
                    cells.append(prune_cell(p, budget, seed))
                row = {
                    "dataset": dataset,
                    "noise": noise,
                    "duplicated": duplicated,
                    "cells": cells,
                    "summary": summarise_prune(cells),
                }
                result["pruning"].append(row)
                log(
                    f"  prune {noise:.0%}{' dup' if duplicated else ''}: greedy − top-K "
                    f"{_ci(row['summary']['greedy_minus_top_k']['test_accuracy'], 100)} points, "
                    f"distinct flips greedy − top-K "
                    f"{_ci(row['summary']['greedy_minus_top_k']['distinct_flips'], 1, 1)}"
                )
    result["seconds"] = time.perf_counter() - started
    result["finished"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    stem = args.stem or ("fidelity-quick" if args.quick else "fidelity")
    write_json(args.out / f"{stem}.json", result, indent=1, newline=False)
    (args.out / f"{stem}.md").write_text(markdown(result))
    plot(result, args.out / f"{stem}.png")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
