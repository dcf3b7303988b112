"""Several reward models vote on held-out pairs: do their mean margin and their votes find planted
label flips better than one model's margin?

    python -m bench.reward_models [--models 3] [--train 300] [--max-length 64]

Data: HH-RLHF helpful-base test (2,354 pairs), permuted with default_rng(0): the first 800 are the
pool the models train on, the next 400 the held-out set they vote on (sized for a busy 2-core CPU;
`POOL`, `HELD_OUT`, `--train` and `--max-length` scale it). Each model k is MiniLM
(all-MiniLM-L6-v2, the `minilm` preset) with a scalar head fitted as head mode fits it (exact
L2-penalised BT head on the pooler features, L2 chosen on 150 validation pairs), on its own random
300-pair subset of the pool (seed k). Each is then saved as a transformers reward-model directory
(MiniLM with its classifier set to the head); its margins are the head on the held-out features,
and the saved directory, loaded through `worker.influence.reward_models.score_pairs` (the code an
audit's `rewards` tasks run), is checked to give the same margins on 48 of them.

Flips: 10% of the held-out pairs, drawn with default_rng(s) for s = 0..9 (a flipped pair's margins
are the clean pair's negated, so every draw reuses the same margins). Detection: AUROC of each
harm ordering against the flips — one model's −margin, the models' −mean margin, the votes
against the label (ties half), the votes with ties broken by −mean — and the `ambiguous` flag's
and the unanimous vote's precision and recall.

Target: the mean margin's AUROC at least the best single model's (Secrets of RLHF II,
PrefCleanBench: several models beat one); printed as measured vs target.
Writes bench/results/reward_models.json and .md.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.lib.hh import transcript_pairs
from bench.lib.metrics import auroc
from bench.lib.paths import CACHE, HH_HELPFUL_TEST, RESULTS
from bench.lib.report import write_json
from worker.influence.config import EngineConfig
from worker.influence.data import Pair
from worker.influence.features import backbone_features, pair_views
from worker.influence.head import choose_head, fit_head
from worker.influence.model import encode, load_backbone, resolve_device
from worker.influence.reward_models import score_pairs, vote

HELD_OUT = 400
N_VAL = 150
POOL = 800
"""Pairs the models train on (their subsets drawn from these); the rest of the file is unused."""
CHECKED = 48
"""Held-out pairs each saved model scores through `score_pairs` (the others from its features:
the same numbers, checked on these)."""
FLIP_SEEDS = 10


def _pooled(pairs: list[Pair], max_length: int, device: torch.device) -> tuple[Any, Any]:
    """MiniLM (seed 0) and its pooler-feature differences z [n, 384] of every pair."""
    model, tokenizer = load_backbone(EngineConfig(model="minilm", seed=0))
    pooled = backbone_features(model.eval(), encode(tokenizer, pairs, max_length), device, 64)
    z = pair_views({k: v for k, v in pooled.items()}, pairs)["pooler"].double()
    return (model, tokenizer), z


def _train_model(
    base: tuple[Any, Any], z: torch.Tensor, pool: np.ndarray, seed: int, n_train: int, out: Path
) -> dict[str, Any]:
    """Fit head k on its subset of the pool; save MiniLM with that head as a reward model."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(pool, n_train + N_VAL, replace=False)
    train, val = chosen[:n_train], chosen[n_train:]
    views_tr, views_va = {"pooler": z[train]}, {"pooler": z[val]}
    choice = choose_head(views_tr, views_va, "pooler", 0.0)  # type: ignore[arg-type]
    w, _ = fit_head(choice.apply(z[train]), choice.l2)
    weight = (w / choice.scale).float()  # on the raw pooler features
    model, tokenizer = base
    rm = copy.deepcopy(model).cpu()
    with torch.no_grad():
        rm.classifier.weight.copy_(weight.reshape(1, -1))
        rm.classifier.bias.zero_()
    out.mkdir(parents=True, exist_ok=True)
    rm.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {"seed": seed, "l2": choice.l2, "n_train": n_train, "dir": str(out), "w": weight}


def _orderings(margins: np.ndarray) -> dict[str, np.ndarray]:
    """Harm orderings (higher = more suspect) from the models' margins [K, n]."""
    columns = vote(margins)
    votes = columns["rm_votes_against"]
    mean = columns["rm_mean"]
    span = float(np.ptp(mean)) or 1.0
    out = {f"model {k + 1} (−margin)": -margins[k] for k in range(len(margins))}
    out["mean (−rm_mean)"] = -mean
    out["votes (rm_votes_against)"] = votes
    out["votes, ties by −mean"] = votes + 0.5 * (mean.max() - mean) / span
    return out


def _detect(margins: np.ndarray, seed: int) -> dict[str, Any]:
    """One flip draw: AUROC of each ordering, and the flag's precision and recall."""
    n = margins.shape[1]
    flips = np.zeros(n, dtype=bool)
    flips[np.random.default_rng(seed).choice(n, round(0.1 * n), replace=False)] = True
    seen = np.where(flips, -margins, margins)
    columns = vote(seen)
    k = len(margins)
    flags = {
        "ambiguous": columns["rm_ambiguous"] == 1,
        "all against": columns["rm_votes_against"] == k,
        "mean < 0": columns["rm_mean"] < 0,
    }
    return {
        "auroc": {name: auroc(h, flips) for name, h in _orderings(seen).items()},
        "flags": {
            name: {
                "flagged": int(mask.sum()),
                "precision": float((mask & flips).sum() / max(1, mask.sum())),
                "recall": float((mask & flips).sum() / flips.sum()),
            }
            for name, mask in flags.items()
        },
    }


def _mean_sd(values: list[float]) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1))}


def run(n_models: int, n_train: int, max_length: int) -> dict[str, Any]:
    started = time.perf_counter()
    device = resolve_device("auto")
    pairs = transcript_pairs(HH_HELPFUL_TEST)
    perm = np.random.default_rng(0).permutation(len(pairs))
    pool, held = np.arange(POOL), np.arange(POOL, POOL + HELD_OUT)
    pairs = [pairs[i] for i in perm[: POOL + HELD_OUT]]  # features of these only
    base, z = _pooled(pairs, max_length, device)
    features_s = time.perf_counter() - started
    held_pairs = [pairs[i] for i in held]
    models, margins = [], []
    for k in range(n_models):
        info = _train_model(base, z, pool, k, n_train, CACHE / "reward_models" / f"minilm-{k}")
        t0 = time.perf_counter()
        m = (z[held].float() @ info.pop("w")).double().numpy()
        # The saved model scores as the head does on the features (checked on CHECKED pairs).
        saved = score_pairs(info["dir"], held_pairs[:CHECKED], max_length, device, batch_size=48)
        info.update(
            score_seconds=round(time.perf_counter() - t0, 2),
            max_abs_diff_vs_head=float(np.abs(saved - m[:CHECKED]).max()),
            heldout_accuracy=float((m > 0).mean()),
        )
        models.append(info)
        margins.append(m)
    margin_array = np.stack(margins)
    draws = [_detect(margin_array, s) for s in range(FLIP_SEEDS)]
    names = list(draws[0]["auroc"])
    summary = {name: _mean_sd([d["auroc"][name] for d in draws]) for name in names}
    flags = {
        name: {
            key: _mean_sd([d["flags"][name][key] for d in draws])
            for key in ("flagged", "precision", "recall")
        }
        for name in draws[0]["flags"]
    }
    single = [summary[f"model {k + 1} (−margin)"]["mean"] for k in range(n_models)]
    return {
        "data": (
            f"HH-RLHF helpful-base test permuted (seed 0): models train on subsets of the first "
            f"{POOL}, vote on the next {HELD_OUT}; 10% flips × {FLIP_SEEDS} draws"
        ),
        "device": str(device),
        "max_length": max_length,
        "models": models,
        "auroc": summary,
        "flags": flags,
        "best_single_auroc": max(single),
        "mean_single_auroc": float(np.mean(single)),
        "target": "mean-margin AUROC ≥ best single model's AUROC",
        "met": summary["mean (−rm_mean)"]["mean"] >= max(single),
        "margin_correlation": np.corrcoef(margin_array).round(3).tolist(),
        "seconds": {
            "features": round(features_s, 1),
            "total": round(time.perf_counter() - started, 1),
        },
    }


def markdown(result: dict[str, Any]) -> str:
    mean_auroc = result["auroc"]["mean (−rm_mean)"]["mean"]
    mean_gain = mean_auroc - result["mean_single_auroc"]
    best_gain = mean_auroc - result["best_single_auroc"]
    accuracies = [m["heldout_accuracy"] for m in result["models"]]
    lines = [
        "# Several reward models vote on held-out pairs (`python -m bench.reward_models`)",
        "",
        f"{result['data']}; device {result['device']}, max_length {result['max_length']}.",
        f"{len(result['models'])} MiniLM head-mode reward models, each on its own random "
        f"{result['models'][0]['n_train']}-pair subset of the 800-pair pool, saved as "
        "transformers directories (checked through the audit's reward-model code).",
        "",
        "| model | L2 | held-out accuracy (clean labels) | saved vs head max abs diff |",
        "|---|---|---|---|",
    ]
    for k, m in enumerate(result["models"]):
        lines.append(
            f"| {k + 1} (seed {m['seed']}) | {m['l2']:g} | {m['heldout_accuracy']:.3f} | "
            f"{m['max_abs_diff_vs_head']:.1e} |"
        )
    lines += [
        "",
        "| ordering | AUROC of the planted flips (mean ± sd over 10 draws) |",
        "|---|---|",
    ]
    for name, v in result["auroc"].items():
        lines.append(f"| {name} | {v['mean']:.3f} ± {v['sd']:.3f} |")
    lines += ["", "| flag | pairs flagged | precision | recall |", "|---|---|---|---|"]
    for name, v in result["flags"].items():
        lines.append(
            f"| {name} | {v['flagged']['mean']:.1f} | {v['precision']['mean']:.3f} | "
            f"{v['recall']['mean']:.3f} |"
        )
    lines += [
        "",
        f"Measured: mean-margin AUROC {result['auroc']['mean (−rm_mean)']['mean']:.3f} vs best "
        f"single model {result['best_single_auroc']:.3f} (mean of singles "
        f"{result['mean_single_auroc']:.3f}). Target: {result['target']} — "
        f"{'met' if result['met'] else 'NOT met'}.",
        f"Read: the mean margin is {mean_gain:+.3f} AUROC above a single model on average and "
        f"{best_gain:+.3f} above the best one, whose identity a user would not know in advance "
        f"(sd over draws about {result['auroc']['mean (−rm_mean)']['sd']:.2f}). `ambiguous` "
        f"marks contested pairs, not wrong ones: its precision "
        f"{result['flags']['ambiguous']['precision']['mean']:.3f} is near the 0.10 flip rate; "
        "'all against' is the purer flag. These are weak models (held-out accuracy "
        f"{min(accuracies):.2f}-{max(accuracies):.2f} on clean labels), trained on a few hundred "
        "pairs each.",
        f"Margin correlation between the models: {result['margin_correlation']}.",
        f"Seconds: {result['seconds']}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=3)
    parser.add_argument("--train", type=int, default=300)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--report-only", action="store_true", help="rewrite the .md from the JSON")
    args = parser.parse_args()
    if args.report_only:
        result = json.loads((RESULTS / "reward_models.json").read_text())
    else:
        result = run(args.models, args.train, args.max_length)
        write_json(RESULTS / "reward_models.json", result)
    (RESULTS / "reward_models.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
