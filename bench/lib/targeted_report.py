"""Summary, markdown and plot of the targeted benchmark (bench.targeted)."""

from __future__ import annotations

from pathlib import Path

from bench.lib.metrics import t_interval
from bench.lib.targeted_biases import BIASES
from bench.lib.targeted_cell import RANDOM

BASELINES = ("loss", RANDOM)


def _paired(cells: list[dict], get, name: str, base: str) -> dict:
    return t_interval([get(c, name) - get(c, base) for c in cells if get(c, base) is not None])


def _auroc(c: dict, name: str) -> float | None:
    return c["methods"].get(name, {}).get("auroc")


def _change(c: dict, name: str) -> float | None:
    return c["retrain"]["methods"].get(name, {}).get("change")


def summarise_group(cells: list[dict]) -> dict:
    """One (mode, bias) group: intervals over seeds and paired differences."""
    names = list(cells[0]["methods"])
    out: dict = {
        "n_cells": len(cells),
        "seeds": sorted(c["seed"] for c in cells),
        "sizes": {k: cells[0][k] for k in ("n_train", "n_target", "n_test", "n_val")},
        "n_flips": t_interval([c["n_flips"] for c in cells]),
        "methods": {},
    }
    for key in ("val_accuracy", "target_accuracy"):
        out[key] = t_interval([c[key] for c in cells])
    for name in names:
        out["methods"][name] = {
            metric: t_interval([c["methods"][name][metric] for c in cells])
            for metric in ("auroc", "precision_at_k")
        }
        out["methods"][name]["auroc_minus_loss"] = _paired(cells, _auroc, name, "loss")
    retrained = [c for c in cells if "retrain" in c]
    if retrained:
        arm: dict = {
            "n_cells": len(retrained),
            "full_accuracy": t_interval([c["retrain"]["full_accuracy"] for c in retrained]),
            "methods": {},
        }
        for name in retrained[0]["retrain"]["methods"]:
            arm["methods"][name] = {
                "accuracy": t_interval(
                    [c["retrain"]["methods"][name]["accuracy"] for c in retrained]
                ),
                "change": t_interval([_change(c, name) for c in retrained]),
                "flips_removed": t_interval(
                    [c["retrain"]["methods"][name]["flips_removed"] for c in retrained]
                ),
                **{f"change_minus_{b}": _paired(retrained, _change, name, b) for b in BASELINES},
            }
        out["retrain"] = arm
    return out


def summarise(cells: list[dict]) -> dict:
    groups: dict[str, list[dict]] = {}
    for c in cells:
        groups.setdefault(f"{c['mode']}/{c['bias']}", []).append(c)
    return {key: summarise_group(group) for key, group in sorted(groups.items())}


def fmt(d: dict | None) -> str:
    if not d or d.get("mean") is None:
        return "–"
    if d["ci_low"] is None:
        return f"{d['mean']:.3f} (n=1)"
    return f"{d['mean']:.3f} [{d['ci_low']:.3f}, {d['ci_high']:.3f}]"


def _verdict(group: dict) -> list[str]:
    """Does a target-aware ranking beat the loss by ≥ 0.10 AUROC with its interval above 0, and
    does removing its top k help the target more than loss or random? Said as measured."""
    aware = [n for n in group["methods"] if "(target)" in n]
    best = max(aware, key=lambda n: group["methods"][n]["auroc"]["mean"] or -1.0)
    diff = group["methods"][best]["auroc_minus_loss"]
    ok = (diff["mean"] or 0.0) >= 0.10 and (diff["ci_low"] or 0.0) > 0.0
    lines = [
        f"Best target-aware ranking: {best}, AUROC − loss {fmt(diff)}: "
        + ("meets" if ok else "does NOT meet")
        + " the bar (≥ 0.10, interval above 0)."
    ]
    arm = group.get("retrain")
    if arm and best in arm["methods"]:
        m = arm["methods"][best]
        wins = [
            b
            for b in BASELINES
            if (m[f"change_minus_{b}"]["ci_low"] or 0.0) > 0.0 and b in arm["methods"]
        ]
        lines.append(
            f"Retraining without its top k: target-test accuracy change {fmt(m['change'])}; "
            f"minus loss's {fmt(m['change_minus_loss'])}, minus random's "
            f"{fmt(m['change_minus_random'])}: interval above 0 against "
            + (", ".join(wins) if wins else "neither")
            + "."
        )
    return lines


def markdown(result: dict) -> str:
    lines = [
        "# Targeted audits: planted biases found against a target set",
        "",
        f"Command: `{result['command']}`. Data: HH-RLHF {result['dataset']} "
        f"({result['n_pairs']} pairs), model {result['model']}, max_length "
        f"{result['max_length']}. Sizes per cell: {result['sizes']}. Each cell is a seed with a "
        "fresh split (bench/lib/targeted_cell.py): the target set T and the held-out target test "
        "set are clean pairs showing the unbiased behaviour; a share of the training pairs that "
        "show it is flipped (the planted bias). AUROC and precision at k (k = the planted flips) "
        "against the flip mask; mean and 95% Student-t interval over seeds; `− loss` is the "
        "paired difference per seed. The retraining arm removes each ranking's top k, refits with "
        "the same recipe, and reports the held-out target-test accuracy minus the full fit's.",
        "",
    ]
    for key, g in result["summary"].items():
        mode, bias = key.split("/")
        b = BIASES[bias]
        lines += [
            f"## {bias} bias, {mode} mode ({g['n_cells']} seeds: {g['seeds']})",
            "",
            f"Planted: {b.planted} chosen; T shows {b.target}. Per cell {g['sizes']}, "
            f"{fmt(g['n_flips'])} flips. Validation accuracy {fmt(g['val_accuracy'])}, "
            f"accuracy on T {fmt(g['target_accuracy'])}.",
            "",
            "| ranking | AUROC | precision at k | AUROC − loss (paired) |",
            "|---|---|---|---|",
        ]
        for name, m in g["methods"].items():
            lines.append(
                f"| {name} | {fmt(m['auroc'])} | {fmt(m['precision_at_k'])} | "
                f"{fmt(m['auroc_minus_loss'])} |"
            )
        arm = g.get("retrain")
        if arm:
            lines += [
                "",
                f"Retraining ({arm['n_cells']} seeds): target-test accuracy of the full fit "
                f"{fmt(arm['full_accuracy'])}.",
                "",
                "| removed top k by | flips removed | target-test accuracy change | − loss's "
                "(paired) | − random's (paired) |",
                "|---|---|---|---|---|",
            ]
            for name, m in arm["methods"].items():
                lines.append(
                    f"| {name} | {fmt(m['flips_removed'])} | {fmt(m['change'])} | "
                    f"{fmt(m['change_minus_loss'])} | {fmt(m['change_minus_random'])} |"
                )
        lines += ["", *_verdict(g), ""]
    lines += result.get("notes", [])
    return "\n".join(lines) + "\n"


def plot(summary: dict, path: Path) -> None:
    """AUROC per bias × ranking with intervals (left), retraining's target-test change (right,
    where the cells retrained). One colour per ranking in both panels, one legend below them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(summary)

    def source(key: str, part: str) -> dict:
        return summary[key] if part == "methods" else summary[key].get("retrain") or {}

    parts = [("methods", "AUROC against the planted flips")]
    if any(source(k, "retrain").get("methods") for k in keys):
        parts.append(("retrain", "target-test accuracy change after removing the top k"))
    everyone: list[str] = []
    for part, _ in parts:
        for key in keys:
            everyone += [n for n in source(key, part).get("methods", {}) if n not in everyone]
    palette = plt.get_cmap("tab10")
    colour = {name: palette(i % 10) for i, name in enumerate(everyone)}
    width_in = 7 * len(parts)
    fig, axes = plt.subplots(
        1, len(parts), figsize=(width_in, 0.9 + 2.2 * len(keys)), squeeze=False
    )
    for ax, (part, label) in zip(axes[0], parts, strict=True):
        names = [n for n in everyone if any(n in source(k, part).get("methods", {}) for k in keys)]
        width = 0.8 / max(len(names), 1)
        for j, name in enumerate(names):
            xs, ys, lo, hi = [], [], [], []
            for i, key in enumerate(keys):
                m = source(key, part).get("methods", {}).get(name)
                d = m and (m["auroc"] if part == "methods" else m["change"])
                if not d or d["mean"] is None:
                    continue
                xs.append(i + (j - len(names) / 2) * width)
                ys.append(d["mean"])
                lo.append(d["mean"] - (d["ci_low"] if d["ci_low"] is not None else d["mean"]))
                hi.append((d["ci_high"] if d["ci_high"] is not None else d["mean"]) - d["mean"])
            ax.barh(xs, ys, height=width, xerr=[lo, hi], label=name, capsize=2, color=colour[name])
        ax.axvline(0.5 if part == "methods" else 0.0, color="grey", lw=0.8, ls="--")
        ax.set_yticks(range(len(keys)), keys)
        ax.invert_yaxis()
        ax.set_xlabel(label + " (95% t-interval)")
    # One legend below the panels (inside, it hid the last bias's bars).
    handles = [plt.Rectangle((0, 0), 1, 1, color=colour[n]) for n in everyone]
    fig.legend(handles, everyone, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
