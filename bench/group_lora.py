"""Group influence against leave-group-out retraining on a real LoRA reward model (CPU-sized).

    python -m bench.group_lora                 # MiniLM LoRA, 200 harmless-base pairs, 30 groups
    python -m bench.group_lora --groups 60     # more groups (≈ 30 s per retrain on 2 cores)

The head-mode benchmark (bench.group_fidelity) retrains exactly; here every group is a LoRA
retraining from scratch with the audit's recipe and seed, so the "actual" change also carries the
non-convex training's own variation. One audit (methods loss, influence, group) gives the
first-order effects e_i and the interaction factor; groups of `--size` pairs are drawn as random
pairs, gradient-space neighbours, and copies of one flipped pair (a cluster of `--size` × 2 copies
is added to the training set); each is removed and the model retrained. Spearman of each
estimate with the actual change of validation loss, bootstrap 95% intervals.
Results: bench/results/group/lora.json and lora.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime

import numpy as np
import torch

from bench.lib.metrics import estimate_fidelity
from bench.lib.noise_data import DEFAULT_DATA_DIR, flip_mask, load_pairs, make_split
from bench.lib.paths import RESULTS
from bench.lib.report import bootstrap_text, write_json
from worker.influence.audit import run_audit
from worker.influence.config import EngineConfig
from worker.influence.data import flipped
from worker.influence.group import group_influence
from worker.influence.verify import Retrainer

OUT = RESULTS / "group"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="harmless-base")
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--n-val", type=int, default=100)
    parser.add_argument("--noise", type=float, default=0.2)
    parser.add_argument("--groups", type=int, default=30, help="groups in all, split over kinds")
    parser.add_argument("--size", type=int, default=8)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--damping", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--torch-threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f}s] {message}", flush=True)

    pairs = [
        p
        for p in load_pairs(args.dataset, DEFAULT_DATA_DIR)
        if p.chosen.strip() and p.rejected.strip()
    ]
    split = make_split(len(pairs), args.pairs, args.n_val, 0, args.seed)
    flips = flip_mask(args.pairs, args.noise, args.seed)
    train = [flipped(pairs[i]) if f else pairs[i] for i, f in zip(split.train, flips, strict=True)]
    seed_pair = int(np.flatnonzero(flips)[0])
    cluster = list(range(len(train), len(train) + 2 * args.size))
    train += [train[seed_pair]] * (2 * args.size)  # copies of one flipped pair
    val = [pairs[i] for i in split.val]
    config = EngineConfig(
        model=args.model,
        mode="lora",
        epochs=args.epochs,
        max_length=args.max_length,
        damping=args.damping,
        seed=args.seed,
        methods=["loss", "influence", "group"],
        default_method="group",
        group_candidates=len(train),
    )
    log(f"audit: {len(train)} training pairs ({len(cluster)} copies of row {seed_pair})")
    audit = run_audit(train, val, config, keep_state=True)
    state = audit.state
    assert state is not None and state.grads is not None and state.val_grads is not None
    gn = state.gauss_newton()
    audit_metrics = audit.metrics.model_dump()
    lam = audit_metrics["group"]["damping_absolute"]
    inverse = gn.factor(state.ridge + lam)
    n = len(train)
    group = group_influence(
        inverse.solve, state.grads, state.margins, state.val_grads, state.val_margins, np.arange(n)
    )
    log(f"audit done: val accuracy {audit_metrics['val_accuracy']:.3f}, p = {gn.dim}")

    retrainer = Retrainer.for_pairs(train, val, config)

    def val_loss(keep: np.ndarray) -> float:
        fit = retrainer.fit(keep, args.seed)
        return float(fit.loss)

    full = val_loss(np.ones(n, dtype=bool))
    log(f"full retrain: val loss {full:.4f} (audit {audit_metrics['val_loss']:.4f})")
    rng = np.random.default_rng([args.seed, 3])
    base = np.arange(len(train) - len(cluster))
    scale = -torch.sigmoid(-torch.as_tensor(state.margins))[:, None]
    g = state.grads.double() * scale
    g = g / torch.linalg.vector_norm(g, dim=1, keepdim=True).clamp_min(1e-300)
    per_kind = max(1, args.groups // 3)
    groups: list[tuple[str, np.ndarray]] = []
    for _ in range(per_kind):
        groups.append(("random", rng.choice(base, args.size, replace=False)))
        anchor = int(rng.choice(base))
        cosine = (g[base] @ g[anchor]).numpy()
        groups.append(("neighbours", base[np.argsort(-cosine, kind="stable")[: args.size]]))
        groups.append(("duplicates", rng.choice(cluster, args.size, replace=False)))
    rows: dict[str, dict[str, list[float]]] = {}
    for k, (kind, members) in enumerate(groups):
        keep = np.ones(n, dtype=bool)
        keep[members] = False
        actual = val_loss(keep) - full
        first, inter = group.estimate(members)
        bucket = rows.setdefault(kind, {"actual": [], "first": [], "interaction": []})
        bucket["actual"].append(actual)
        bucket["first"].append(first)
        bucket["interaction"].append(inter)
        log(
            f"group {k + 1}/{len(groups)} {kind}: actual {actual:+.4f} first {first:+.4f} "
            f"interaction {inter:+.4f}"
        )
    boot = np.random.default_rng(0)
    table = {}
    everything = {"actual": [], "first": [], "interaction": []}
    for kind, values in rows.items():
        table[kind] = estimate_fidelity(
            values["actual"], values["first"], values["interaction"], 2000, boot
        )
        for key in everything:
            everything[key] += values[key]
    table["all"] = estimate_fidelity(
        everything["actual"], everything["first"], everything["interaction"], 2000, boot
    )
    result = {
        "args": vars(args),
        "command": "python -m bench.group_lora " + " ".join(sys.argv[1:]),
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": time.perf_counter() - started,
        "n_train": n,
        "n_params": int(gn.dim),
        "val_accuracy": audit_metrics["val_accuracy"],
        "full_val_loss": full,
        "table": table,
        "points": rows,
    }
    write_json(OUT / "lora.json", result, indent=1)
    lines = [
        "# Group influence vs leave-group-out LoRA retraining (CPU)",
        "",
        f"`{result['command']}` — {result['finished']}, {result['seconds']:.0f} s. "
        f"{args.model} LoRA ({result['n_params']} trainable parameters), {args.dataset}, {n} "
        f"training pairs ({args.noise:.0%} flips, plus {len(cluster)} copies of one flipped "
        f"pair), {args.n_val} validation pairs, {args.epochs} epochs, max_length "
        f"{args.max_length}, damping {args.damping}; validation accuracy "
        f"{result['val_accuracy']:.3f}. Groups of {args.size}; every group a retraining from "
        "scratch with the audit's seed.",
        "",
        "| kind | groups | ρ first-order | ρ interaction-aware | gain | MAE first | "
        "MAE interaction |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, row in table.items():
        count = len(everything["actual"]) if kind == "all" else len(rows[kind]["actual"])
        lines.append(
            f"| {kind} | {count} | {bootstrap_text(row['spearman_first'])} | "
            f"{bootstrap_text(row['spearman_interaction'])} | "
            f"{bootstrap_text(row['spearman_gain'])} | {bootstrap_text(row['mae_first'], '.2e')} | "
            f"{bootstrap_text(row['mae_interaction'], '.2e')} |"
        )
    (OUT / "lora.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
