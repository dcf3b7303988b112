"""Detection metrics against a flip mask, removal masks, the seed-paired aggregation of cells,
Student-t intervals over seeds and bootstrap intervals of a group estimate's fidelity.

All scores are `harm` oriented (higher = more harmful, SCIENCE.md); ties break by row order.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
from scipy import stats
from scipy.stats import rankdata, spearmanr

from worker.influence.stats import paired_difference, summarize


def auroc(harm: np.ndarray, flips: np.ndarray) -> float | None:
    """P(a flipped pair outranks a clean one), ties counted half (Mann–Whitney U / n₁n₀)."""
    positives = int(flips.sum())
    negatives = int(flips.size - positives)
    if positives == 0 or negatives == 0:
        return None
    ranks = rankdata(harm)
    return float((ranks[flips].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def top_mask(harm: np.ndarray, k: int) -> np.ndarray:
    """The k most harmful rows (stable: earlier rows win ties)."""
    mask = np.zeros(harm.size, dtype=bool)
    mask[np.argsort(-harm, kind="stable")[:k]] = True
    return mask


def bottom_mask(harm: np.ndarray, k: int) -> np.ndarray:
    """The k most helpful rows (lowest harm)."""
    mask = np.zeros(harm.size, dtype=bool)
    mask[np.argsort(harm, kind="stable")[:k]] = True
    return mask


def detection(harm: np.ndarray, flips: np.ndarray, top_fraction: float = 0.1) -> dict:
    """AUROC, precision@k (k = number of flips) and the recall and precision of the top 10%."""
    n_flips = int(flips.sum())
    if n_flips == 0:
        return {"auroc": None, "precision_at_k": None, "recall_top": None, "precision_top": None}
    k_top = max(1, int(round(top_fraction * harm.size)))
    top = top_mask(harm, k_top)
    return {
        "auroc": auroc(harm, flips),
        "precision_at_k": float(flips[top_mask(harm, n_flips)].mean()),
        "recall_top": float(flips[top].sum() / n_flips),
        "precision_top": float(flips[top].mean()),
    }


def rank_average(*harms: np.ndarray) -> np.ndarray:
    """Mean of the rows' ranks under each score (higher = more harmful)."""
    return np.mean([rankdata(h) for h in harms], axis=0)


GROUP_KEYS: tuple[str, ...] = ("setup", "dataset", "n_train", "recipe", "noise")


def aggregate(cells: list[dict]) -> list[dict]:
    """Group cells by (setup, dataset, n_train, recipe, noise) and pair them by seed.

    Per method: detection summaries, retrained test accuracy after removing its top fraction
    (harmful) and its bottom fraction (helpful), and paired differences against training on all
    pairs, random removal and the loss ranking, each with its 95% Student-t interval over seeds.
    """
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for cell in cells:
        groups[tuple(cell["spec"][k] for k in GROUP_KEYS)].append(cell)
    rows = []
    for key, members in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0]))):
        members.sort(key=lambda c: c["spec"]["seed"])
        row: dict = dict(zip(GROUP_KEYS, key, strict=True))
        row["seeds"] = [c["spec"]["seed"] for c in members]
        row["n_seeds"] = len(members)

        def accuracies(path: tuple[str, ...], cells: list[dict] = members) -> list[float] | None:
            out = []
            for cell in cells:
                node = cell["retrain"]
                for part in path:
                    node = node.get(part) if isinstance(node, dict) else None
                if node is None:
                    return None
                out.append(node["accuracy"])
            return out

        full = accuracies(("full",))
        assert full is not None
        row["full_accuracy"] = summarize(full)
        row["val_accuracy"] = summarize([c["val_accuracy"] for c in members])
        row["weight_decay"] = summarize([c["config"]["weight_decay"] for c in members])
        oracle = accuracies(("oracle",))
        if oracle is not None:
            row["oracle_accuracy"] = summarize(oracle)
            row["oracle_minus_full"] = paired_difference(oracle, full)
        random = accuracies(("harmful", "random"))
        loss = accuracies(("harmful", "loss"))
        methods = {}
        for method in members[0]["retrain"]["harmful"]:
            harmful = accuracies(("harmful", method))
            entry: dict = {}
            if harmful is not None:
                entry["harmful_accuracy"] = summarize(harmful)
                entry["harmful_minus_full"] = paired_difference(harmful, full)
                if random is not None:
                    entry["harmful_minus_random"] = paired_difference(harmful, random)
                if loss is not None:
                    entry["harmful_minus_loss"] = paired_difference(harmful, loss)
                if oracle is not None:
                    entry["harmful_minus_oracle"] = paired_difference(harmful, oracle)
            helpful = accuracies(("helpful", method))
            if helpful is not None:
                entry["helpful_accuracy"] = summarize(helpful)
                entry["helpful_minus_full"] = paired_difference(helpful, full)
                if random is not None:
                    entry["helpful_minus_random"] = paired_difference(helpful, random)
            for metric in ("auroc", "precision_at_k", "recall_top", "precision_top"):
                values = [c["detection"].get(method, {}).get(metric) for c in members]
                if all(v is not None for v in values):
                    entry[metric] = summarize(values)
                    if metric == "auroc" and method != "loss":
                        loss_auc = [c["detection"]["loss"]["auroc"] for c in members]
                        entry["auroc_minus_loss"] = paired_difference(values, loss_auc)
            methods[method] = entry
        row["methods"] = methods
        rows.append(row)
    return rows


REGIME_KEYS: tuple[str, ...] = ("setup", "dataset", "n_train", "recipe")


def noise_cost(cells: list[dict]) -> list[dict]:
    """What label noise costs: test accuracy at noise p minus at 0%, paired by seed.

    Within a seed the split is the same at every noise level and the flips are nested, so the
    difference isolates the flips. Also the oracle at p minus all pairs at 0%: whether removing the
    flips recovers the clean model (it trains on fewer pairs).
    """
    regimes: dict[tuple, dict[float, dict[int, dict]]] = defaultdict(lambda: defaultdict(dict))
    for cell in cells:
        spec = cell["spec"]
        regimes[tuple(spec[k] for k in REGIME_KEYS)][spec["noise"]][spec["seed"]] = cell
    rows = []
    for key, by_noise in sorted(regimes.items(), key=lambda kv: tuple(map(str, kv[0]))):
        clean = by_noise.get(0.0)
        if not clean:
            continue
        for noise in sorted(n for n in by_noise if n > 0):
            seeds = sorted(set(by_noise[noise]) & set(clean))
            if not seeds:
                continue
            base = [clean[s]["retrain"]["full"]["accuracy"] for s in seeds]
            noisy = [by_noise[noise][s]["retrain"]["full"]["accuracy"] for s in seeds]
            oracle = [by_noise[noise][s]["retrain"]["oracle"]["accuracy"] for s in seeds]
            rows.append(
                {
                    **dict(zip(REGIME_KEYS, key, strict=True)),
                    "noise": noise,
                    "seeds": seeds,
                    "clean_accuracy": summarize(base),
                    "noisy_minus_clean": paired_difference(noisy, base),
                    "oracle_minus_clean": paired_difference(oracle, base),
                }
            )
    return rows


def t_interval(values: list[float]) -> dict:
    """Mean and Student-t 95% interval over seeds (NaNs left out)."""
    a = np.asarray([v for v in values if not math.isnan(v)], dtype=np.float64)
    n = int(a.size)
    if n == 0:
        return {"n": 0, "mean": None, "ci_low": None, "ci_high": None}
    mean = float(a.mean())
    if n < 2:
        return {"n": n, "mean": mean, "ci_low": None, "ci_high": None}
    half = float(stats.t.ppf(0.975, n - 1)) * float(a.std(ddof=1)) / math.sqrt(n)
    return {"n": n, "mean": mean, "ci_low": mean - half, "ci_high": mean + half}


def summary_interval(summary: dict | None) -> dict | None:
    """Mean and 95% t-interval of a `summarize` dict (for plotting one arm's spread)."""
    if not summary or summary.get("mean") is None:
        return None
    values = summary["values"]
    return paired_difference(values, [0.0] * len(values))


def estimate_fidelity(actual, first, inter, reps: int, rng: np.random.Generator) -> dict:
    """Spearman and MAE of both estimates, with bootstrap 95% intervals and paired differences."""
    actual, first, inter = map(np.asarray, (actual, first, inter))

    def fidelity(idx):
        a, f, i = actual[idx], first[idx], inter[idx]
        rf, ri = spearmanr(a, f).statistic, spearmanr(a, i).statistic
        mf, mi = np.abs(a - f).mean(), np.abs(a - i).mean()
        return np.array([rf, ri, ri - rf, mf, mi, mi - mf])

    point = fidelity(np.arange(len(actual)))
    boot = np.array([fidelity(rng.integers(0, len(actual), len(actual))) for _ in range(reps)])
    low, high = np.nanpercentile(boot, [2.5, 97.5], axis=0)
    names = (
        "spearman_first",
        "spearman_interaction",
        "spearman_gain",
        "mae_first",
        "mae_interaction",
        "mae_change",
    )
    return {
        name: {"value": float(point[k]), "ci_low": float(low[k]), "ci_high": float(high[k])}
        for k, name in enumerate(names)
    }
