"""Engine benchmark on the hh-flip10 task of ../shared/ANCHORS.md: flip detection per method,
stage timings against one training epoch, the batch-size-1 reference, and a damping sweep.

    .venv/bin/python -m bench.engine_bench                      # anchor + default recipes
    .venv/bin/python -m bench.engine_bench --recipes anchor --naive --tag cpu

Writes bench/results/engine_bench_<tag>.json and .md and prints the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from bench.lib.hh import hh_flip10
from bench.lib.kronfluence_side import identity_self_scores, kronfluence_scores
from bench.lib.paths import HH_HELPFUL_TEST, RESULTS
from bench.lib.report import write_json
from worker.influence.audit import Fitted, run_audit, score_fitted
from worker.influence.columns import METHODS
from worker.influence.config import EngineConfig
from worker.influence.curvature import GaussNewton
from worker.influence.gradients import per_pair_margin_gradients_loop
from worker.influence.model import encode
from worker.influence.scores import bt_loss, leave_one_out_loss, loss_scale, self_influence
from worker.influence.train import evaluate_margins

DATA = HH_HELPFUL_TEST

RECIPES: dict[str, dict] = {
    # ANCHORS.md's recipe, exactly.
    "anchor": {
        "learning_rate": 5e-4,
        "epochs": 2,
        "batch_size": 16,
        "lora_r": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.0,
        "max_length": 128,
    },
    # EngineConfig's defaults (the recipe a user gets).
    "default": {},
}

ANCHOR_AUROC = {
    "BT loss (anchor)": 0.649,
    "kronfluence EK-FAC self-influence": 0.655,
    "kronfluence EK-FAC influence": 0.615,
    "gradient similarity (anchor)": 0.610,
    "dattri DataInf": 0.607,
    "loss + kronfluence self-influence (z-sum)": 0.691,
}

DAMPINGS = (1e-6, 1e-3, 1e-2, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0, 1e3, 1e4, 1e5)


def detection(harm: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """AUROC of harm against the flip mask, precision@100, recall in the top 10%."""
    from sklearn.metrics import roc_auc_score

    order = np.argsort(-harm, kind="stable")
    top10 = order[: len(harm) // 10]
    return {
        "auroc": float(roc_auc_score(mask, harm)),
        "precision_at_100": float(mask[order[:100]].mean()),
        "recall_top10pct": float(mask[top10].sum() / mask.sum()),
    }


def zscore(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-300)


def rankscore(x: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(x, kind="stable"), kind="stable") / (len(x) - 1)


def blockwise_self_influence(fitted: Fitted, damping: float) -> np.ndarray:
    """Σ_l g_ilᵀ (G_l + λ_l I)⁻¹ g_il with the Gauss–Newton matrix restricted to each layer
    (block-diagonal, as EK-FAC is), λ_l relative to each block's mean diagonal."""
    total = np.zeros(len(fitted.margins))
    blocks = _BLOCK_GN.setdefault(id(fitted), {})
    for name, block in fitted.blocks:
        if name not in blocks:
            blocks[name] = GaussNewton(fitted.grads[:, block].contiguous(), fitted.margins)
        gn = blocks[name]
        total += self_influence(gn, fitted.margins, gn.D, damping)
    return total


_BLOCK_GN: dict[int, dict[str, GaussNewton]] = {}
"""Per-layer Gauss–Newton matrices of a fitted model, kept across the damping sweep."""


def extra_scores(fitted: Fitted, config: EngineConfig, scores: dict) -> dict[str, np.ndarray]:
    """Memorisation corrections and combinations measured next to the engine's methods."""
    gn = fitted.gauss_newton()
    block_self = blockwise_self_influence(fitted, config.damping)
    loss, self_inf = scores["harm_loss"], scores["harm_self_influence"]
    out = {
        "leave_one_out_loss (Newton step)": leave_one_out_loss(
            gn, fitted.margins, config.damping, fitted.ridge
        ),
        "rank(loss) + rank(self_influence)": rankscore(loss) + rankscore(self_inf),
        "self_influence, block-diagonal": block_self,
        "z(loss) + z(block-diagonal self_influence)": zscore(loss) + zscore(block_self),
    }
    if fitted.seen_margins:
        seen = np.stack(fitted.seen_margins)
        out["loss before first training step on the pair (epoch 1)"] = bt_loss(seen[0])
        out["loss before each step, mean over epochs"] = bt_loss(seen).mean(axis=0)
        out["z(final loss) + z(epoch-1 loss)"] = zscore(loss) + zscore(bt_loss(seen[0]))
    return out


def naive_reference(
    fitted: Fitted, config: EngineConfig, fast_seconds: float, scores: dict
) -> dict:
    """The same scores through a batch-size-1 autograd loop over every pair."""
    train_enc, val_enc = fitted.encoded
    start = time.perf_counter()
    val_margins, val_grads = per_pair_margin_gradients_loop(fitted.rm, val_enc)
    margins, grads = per_pair_margin_gradients_loop(fitted.rm, train_enc)
    loop_seconds = time.perf_counter() - start
    reference = dataclasses.replace(
        fitted,
        margins=margins,
        grads=grads,
        val_margins=val_margins,
        val_grads=val_grads,
        _gauss_newton=None,
    )
    no_tracin = dataclasses.replace(config, methods=[m for m in config.methods if m != "tracin"])
    ref_scores = score_fitted(reference, no_tracin)[0]
    agreement = {}
    for key, value in ref_scores.items():
        agreement[key] = float(np.abs(scores[key] - value).max() / max(np.abs(value).max(), 1e-300))
    gradient_error = float((fitted.grads - grads).norm() / grads.norm())
    return {
        "loop_seconds": loop_seconds,
        "fast_seconds": fast_seconds,
        "speedup_vs_naive": loop_seconds / fast_seconds,
        "max_relative_score_difference": max(agreement.values()),
        "score_difference": agreement,
        "gradient_relative_error": gradient_error,
        "agrees_to_1e-4": max(agreement.values()) <= 1e-4,
    }


def run_recipe(name: str, overrides: dict, args: argparse.Namespace, task) -> dict:

    train, val, test, mask = task
    config = EngineConfig(
        model=args.model, methods=list(METHODS), seed=args.seed, device=args.device, **overrides
    )
    print(f"[{name}] {config}", flush=True)
    result = run_audit(train, val, config, keep_state=True, progress=lambda s, f, m: None)
    fitted = result.state
    metrics = result.metrics.model_dump()
    test_enc = encode(fitted.tokenizer, test, config.max_length)
    test_margins = evaluate_margins(fitted.rm, test_enc) if fitted.rm is not None else None
    rows = {}
    for column in (
        "harm_loss",
        "harm_gradient_similarity",
        "harm_gradient_cosine",
        "harm_influence",
        "harm_datainf",
        "harm_self_influence",
        "harm_corrected_loss",
        "harm_tracin",
    ):
        rows[column] = detection(result.scores[column], mask)
    for label, values in extra_scores(fitted, config, result.scores).items():
        rows[label] = detection(values, mask)
    seconds = metrics["seconds"]
    method_seconds = metrics["method_seconds"]
    epoch = float(np.mean(metrics["epoch_seconds"]))
    scoring_stage = (
        seconds["validation_gradient"]
        + seconds["per_pair_gradients"]
        + seconds["scoring"]
        - method_seconds.get("tracin", 0.0)
    )
    sweep = {}
    for damping in DAMPINGS:
        swept = dataclasses.replace(
            config,
            damping=damping,
            methods=["loss", "influence", "self_influence", "corrected_loss"],
        )
        s, m, _ = score_fitted(fitted, swept)
        loo = extra_scores(fitted, swept, s)
        sweep[str(damping)] = {
            "influence": detection(s["harm_influence"], mask),
            "self_influence": detection(s["harm_self_influence"], mask),
            "leave_one_out_loss": detection(loo["leave_one_out_loss (Newton step)"], mask),
            "self_influence_blockwise": detection(loo["self_influence, block-diagonal"], mask),
            "corrected_loss": detection(s["harm_corrected_loss"], mask),
            "relative_residual": m["influence"]["relative_residual"],
        }
    out = {
        "recipe": name,
        "config": dataclasses.asdict(config),
        "val_accuracy": metrics["val_accuracy"],
        "test_accuracy": float((test_margins > 0).mean()) if test_margins is not None else None,
        "history": metrics["history"],
        "detection": rows,
        "seconds": seconds,
        "method_seconds": method_seconds,
        "epoch_seconds": metrics["epoch_seconds"],
        "scoring_stage_seconds": scoring_stage,
        "epoch_ratio": scoring_stage / epoch,
        "peak_memory_mb": metrics["peak_memory_mb"],
        "stage_peak_memory_mb": metrics["stage_peak_memory_mb"],
        "influence_solve": metrics["influence"],
        "n_trainable_params": metrics["n_trainable_params"],
        "damping_sweep": sweep,
        "warnings": metrics["warnings"],
    }
    if args.naive:
        fast = seconds["validation_gradient"] + seconds["per_pair_gradients"]
        out["naive"] = naive_reference(fitted, config, fast, result.scores)
    if args.kronfluence and fitted.rm is not None:
        out["kronfluence"] = kronfluence_side(fitted, result.scores, mask, scoring_stage, epoch)
        rows.update(out["kronfluence"].pop("detection"))
    return out


def kronfluence_side(fitted: Fitted, scores: dict, mask: np.ndarray, ours: float, epoch: float):
    """kronfluence's EK-FAC on the same trained model and pairs: its time and its AUROC."""
    assert fitted.rm is not None and fitted.grads is not None
    train_enc, val_enc = fitted.encoded
    # Guard: with the identity preconditioner kronfluence's self-score is ‖g_i‖²; it must match
    # the engine's per-pair gradients (same modules, both forwards, one example per pair).
    check = identity_self_scores(fitted.rm, train_enc)
    head = fitted.grads[: len(check)].double()
    ours_sq = ((loss_scale(fitted.margins[: len(check)], head)[:, None] * head) ** 2).sum(1)
    identity_error = float(np.abs(check - ours_sq.cpu().numpy()).max() / ours_sq.max().item())
    print(f"[kronfluence] identity self-scores vs ours: max relative error {identity_error:.1e}")
    print("[kronfluence] EK-FAC factors, self-influence, influence ...", flush=True)
    k = kronfluence_scores(fitted.rm, train_enc, val_enc)
    total = sum(k["seconds"].values())
    corrected = zscore(scores["harm_loss"]) + zscore(k["harm_self_influence"])
    return {
        "version": k["version"],
        "identity_check_relative_error": identity_error,
        "strategy": k["strategy"],
        "damping_factor": k["damping_factor"],
        "seconds": k["seconds"],
        "total_seconds": total,
        "epoch_ratio": total / epoch,
        "ours_over_kronfluence_time": ours / total,
        "detection": {
            "kronfluence EK-FAC self-influence (same model)": detection(
                k["harm_self_influence"], mask
            ),
            "kronfluence EK-FAC influence (same model)": detection(k["harm_influence"], mask),
            "z(loss) + z(kronfluence self-influence) (same model)": detection(corrected, mask),
        },
    }


def markdown(report: dict) -> str:
    lines = [
        f"# Engine benchmark: hh-flip10 ({report['device']}, {report['started']})",
        "",
        f"Command: `{report['command']}`",
        "",
    ]
    for run in report["runs"]:
        if "same_as" in run:
            lines += [
                f"## Recipe `{run['recipe']}`",
                "",
                f"Identical to recipe `{run['same_as']}` (EngineConfig's defaults are the anchors' "
                "recipe, which bench/tune_recipe.py found best by validation loss): see above.",
                "",
            ]
            continue
        lines += [
            f"## Recipe `{run['recipe']}`",
            "",
            f"validation accuracy {run['val_accuracy']:.3f}, test accuracy "
            f"{run['test_accuracy']:.3f}; epoch {np.mean(run['epoch_seconds']):.1f} s; "
            f"scoring stage {run['scoring_stage_seconds']:.1f} s; "
            f"**epoch_ratio {run['epoch_ratio']:.2f}**"
            + (
                f"; **speedup_vs_naive {run['naive']['speedup_vs_naive']:.1f}×** "
                f"(max relative score difference "
                f"{run['naive']['max_relative_score_difference']:.1e})"
                if "naive" in run
                else ""
            ),
            "",
        ]
        lines += ["| stage | seconds | peak memory (MB) |", "|---|---|---|"]
        for stage, secs in run["seconds"].items():
            peak = run["stage_peak_memory_mb"].get(stage, {})
            memory = ", ".join(f"{kind} {value:.0f}" for kind, value in peak.items())
            lines.append(f"| {stage} | {secs:.1f} | {memory} |")
        lines += [
            "",
            "Scoring-stage methods (seconds): "
            + ", ".join(f"{m} {s:.2f}" for m, s in run["method_seconds"].items())
            + " (TracIn is left out of the epoch ratio: it retakes gradients at every "
            "checkpoint).",
            "",
        ]
        if "kronfluence" in run:
            k = run["kronfluence"]
            lines += [
                f"kronfluence {k['version']} ({k['strategy']}, damping {k['damping_factor']}) on "
                f"the same model: factors {k['seconds']['factors']:.1f} s, self-influence "
                f"{k['seconds']['self_influence']:.1f} s, influence {k['seconds']['influence']:.1f}"
                f" s; total {k['total_seconds']:.1f} s = **{k['epoch_ratio']:.2f} epochs** "
                f"(our whole scoring stage: {run['epoch_ratio']:.2f} epochs, "
                f"{k['ours_over_kronfluence_time']:.2f}× kronfluence's time)",
                "",
            ]
        lines += [
            "| method | AUROC | precision@100 | recall@top10% |",
            "|---|---|---|---|",
        ]
        for method, row in sorted(run["detection"].items(), key=lambda kv: -kv[1]["auroc"]):
            lines.append(
                f"| {method} | {row['auroc']:.3f} | {row['precision_at_100']:.2f} | "
                f"{row['recall_top10pct']:.2f} |"
            )
        lines += [
            "",
            "Damping sweep (λ relative to the mean diagonal of G): AUROC",
            "",
            "| damping | influence | self_influence | self_influence (block-diag.) "
            "| corrected_loss | leave_one_out_loss |",
            "|---|---|---|---|---|---|",
        ]
        for damping, row in run["damping_sweep"].items():
            lines.append(
                f"| {damping} | {row['influence']['auroc']:.3f} | "
                f"{row['self_influence']['auroc']:.3f} | "
                f"{row['self_influence_blockwise']['auroc']:.3f} | "
                f"{row['corrected_loss']['auroc']:.3f} | "
                f"{row['leave_one_out_loss']['auroc']:.3f} |"
            )
        lines.append("")
    lines += ["## Anchors (ANCHORS.md, same task)", "", "| method | AUROC |", "|---|---|"]
    lines += [f"| {k} | {v:.3f} |" for k, v in ANCHOR_AUROC.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default="anchor,default")
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument(
        "--naive", action="store_true", help="also time the batch-size-1 reference (minutes on CPU)"
    )
    parser.add_argument(
        "--no-kronfluence",
        dest="kronfluence",
        action="store_false",
        help="skip kronfluence's EK-FAC side by side (it is installed by `make bench` only)",
    )
    parser.add_argument("--tag", default=None, help="suffix of the result files")
    parser.add_argument(
        "--tuned",
        type=Path,
        default=None,
        help="bench.tune_recipe output: adds recipe 'tuned', its best by validation loss",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    import torch

    task = hh_flip10(args.data)
    if args.tuned is not None:
        best = json.loads(args.tuned.read_text())[0]
        RECIPES["tuned"] = {
            k: v
            for k, v in best.items()
            if k in {f.name for f in dataclasses.fields(EngineConfig)} and k != "seed"
        }
    device = (
        args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    )
    report = {
        "task": "hh-flip10 (ANCHORS.md)",
        "command": "python -m bench.engine_bench " + " ".join(sys.argv[1:]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "device": torch.cuda.get_device_name(0)
        if device == "cuda"
        else f"cpu ({platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "runs": [],
    }
    done: dict[str, dict] = {}
    for name in args.recipes.split(","):
        key = json.dumps(dataclasses.asdict(EngineConfig(**RECIPES[name])), sort_keys=True)
        if key in done:
            # The same configuration trains the same model: say so instead of training it twice.
            report["runs"].append({"recipe": name, "same_as": done[key]["recipe"]})
            continue
        done[key] = run_recipe(name, RECIPES[name], args, task)
        report["runs"].append(done[key])
        print(markdown(report), flush=True)
    tag = args.tag or device
    write_json(args.out / f"engine_bench_{tag}.json", report)
    (args.out / f"engine_bench_{tag}.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
