"""Can this ranking be trusted? Validation evidence and an estimate of how many pairs are wrong.

1. `validation_trust`: validation accuracy with its 95% Wilson interval and validation loss against
   ln 2 (the loss of a model that knows nothing). When the interval includes 0.5 or the loss is
   within 1% of ln 2, the reward model has not shown it knows more than chance, so no ranking it
   produces is evidence that a pair is wrong.
2. `mislabelled_estimate`: how many pairs are presented in the wrong order, from cross-fitted
   margins Δ_i, under the model "the true order is drawn from P(order | x) = σ(T·Δ_i), then
   flipped with probability ρ": the presented orders have likelihood
   Π_i [(1 − ρ) σ(TΔ_i) + ρ σ(−TΔ_i)]. ρ and T are fitted by maximum likelihood; ρ gets a 95%
   profile-likelihood interval. Pair i's flip posterior is
   q_i = ρ σ(−TΔ_i) / (ρ σ(−TΔ_i) + (1 − ρ) σ(TΔ_i)), and the expected precision at the top k of
   a ranking is the mean q over those k pairs. A confident-learning count (Northcutt et al. 2021;
   symmetric threshold t = mean σ(Δ_i)) is reported beside it: on the benchmark it overestimates
   badly when the model is weak. The benchmark checks both against planted and real mislabels.
"""

from __future__ import annotations

import math

import numpy as np

from worker.influence.curvature import sigmoid

LN2 = math.log(2.0)
Z95 = 1.959963984540054
LOSS_MARGIN = 0.01
"""Validation loss within this fraction of ln 2 counts as 'knows nothing'."""
TEMPERATURES: tuple[float, ...] = tuple(float(t) for t in np.geomspace(0.05, 20.0, 49))


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (sound at small n and near 0 or 1)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def validation_trust(val_margins: np.ndarray) -> dict:
    """{n_val, val_accuracy, val_accuracy_ci95, val_loss, ln2, is_evidence, message}."""
    m = np.asarray(val_margins, dtype=np.float64)
    n = int(m.size)
    correct = int((m > 0).sum())
    accuracy = correct / n if n else float("nan")
    low, high = wilson_interval(correct, n)
    loss = float(np.logaddexp(0.0, -m).mean()) if n else float("nan")
    reasons = []
    if low <= 0.5 <= high:
        reasons.append(
            f"validation accuracy {accuracy:.3f} on {n} pairs has a 95% interval "
            f"[{low:.3f}, {high:.3f}] that includes 0.5"
        )
    if not loss < LN2 * (1 - LOSS_MARGIN):
        reasons.append(f"validation loss {loss:.4f} is within 1% of ln 2 = {LN2:.4f} (or above)")
    evidence = not reasons
    if evidence:
        message = (
            f"The reward model beats chance on {n} held-out pairs (accuracy {accuracy:.3f}, 95% "
            f"interval [{low:.3f}, {high:.3f}]; loss {loss:.4f} < ln 2): its ranking is evidence."
        )
    else:
        message = (
            "The ranking is not evidence: "
            + "; ".join(reasons)
            + ". The reward model has not shown it knows more than chance, so a high score does "
            "not mean a pair is wrong. Give more pairs, a larger validation split or a "
            "stronger model."
        )
    return {
        "n_val": n,
        "val_accuracy": accuracy,
        "val_accuracy_ci95": [low, high],
        "val_loss": loss,
        "ln2": LN2,
        "is_evidence": evidence,
        "message": message,
    }


def flip_posterior(margins: np.ndarray, rate: float, temperature: float) -> np.ndarray:
    """q_i = P(pair i is presented in the wrong order | Δ_i) under the flip model above."""
    m = np.asarray(margins, dtype=np.float64) * temperature
    wrong, right = rate * sigmoid(-m), (1 - rate) * sigmoid(m)
    return wrong / np.maximum(wrong + right, 1e-300)


RATES: np.ndarray = np.round(np.arange(0.0, 0.5, 0.01), 2)
"""Mislabel rates the profile likelihood is evaluated at."""
CHI2_95 = 3.841458820694124
"""95% quantile of χ² with one degree of freedom (the profile-likelihood interval)."""


def profile_likelihood(margins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every ρ in RATES: max over T of Σ log[(1 − ρ) σ(TΔ_i) + ρ σ(−TΔ_i)], and that T."""
    m = np.asarray(margins, dtype=np.float64)
    rho = RATES[:, None]
    # One temperature at a time: memory |RATES| × n, not |TEMPERATURES| × |RATES| × n (gigabytes
    # at 10⁵ pairs).
    loglik = np.empty((len(TEMPERATURES), len(RATES)))  # [T, ρ]
    for k, temperature in enumerate(TEMPERATURES):
        right = sigmoid(temperature * m)[None, :]
        loglik[k] = np.log((1 - rho) * right + rho * (1 - right) + 1e-300).sum(axis=-1)
    best = loglik.argmax(axis=0)
    return loglik.max(axis=0), np.asarray(TEMPERATURES)[best]


def mislabelled_estimate(
    margins: np.ndarray,
    harm: np.ndarray | None = None,
    top_fractions: tuple[float, ...] = (0.05, 0.1, 0.2),
    source: str = "out_of_fold",
) -> dict:
    """How many pairs are probably presented in the wrong order, and what precision to expect.

    The rate ρ is the maximum-likelihood value of the flip model above (profiled over T), with
    its 95% profile-likelihood interval: a weak model's margins cannot tell a noisy dataset from
    a hard one, and the interval says so by being wide. The confident-learning count
    (`confident_learning_count`) is reported beside it for comparison.
    `margins` should come from models that did not train on the pair (cross-fitted): in-sample
    margins are overconfident and the estimate is then biased low (`source` says which).
    `harm` is the ranking whose top-k precision is predicted (the job's default harm).
    """
    m = np.asarray(margins, dtype=np.float64)
    n = int(m.size)
    out: dict = {"source": source, "n": n}
    if n == 0:
        out.update(estimated_fraction=None, estimated_count=None, message="no training pairs")
        return out
    p = sigmoid(m)
    threshold = float(p.mean())
    if threshold > 0.5:
        right, wrong = int((p >= threshold).sum()), int((1 - p >= threshold).sum())
        out["confident_learning_count"] = int(round(n * wrong / max(1, right + wrong)))
    profile, temperatures = profile_likelihood(m)
    best = int(profile.argmax())
    inside = RATES[2 * (profile[best] - profile) <= CHI2_95]
    rate, temperature = float(RATES[best]), float(temperatures[best])
    low, high = float(inside.min()), float(inside.max())
    out.update(
        estimated_fraction=rate,
        estimated_count=int(round(rate * n)),
        fraction_ci95=[low, high],
        count_ci95=[int(round(low * n)), int(round(high * n))],
        temperature=temperature,
    )
    q = flip_posterior(m, rate, temperature)
    out["posterior_count"] = float(q.sum())
    if harm is not None:
        order = np.argsort(-np.asarray(harm, dtype=np.float64), kind="stable")
        out["expected_precision_at_top"] = {
            str(f): float(q[order[: max(1, int(round(f * n)))]].mean()) for f in top_fractions
        }
    margins_from = "cross-fitted" if source == "out_of_fold" else source
    out["precise"] = high - low <= 0.1
    out["message"] = (
        f"about {out['estimated_count']} of {n} training pairs ({100 * rate:.0f}%) are probably "
        f"presented in the wrong order (95% interval {out['count_ci95'][0]}–"
        f"{out['count_ci95'][1]}; maximum likelihood from {margins_from} margins)"
        + (
            ""
            if out["precise"]
            else ": the reward model is too weak to pin this down, so treat it as a range"
        )
    )
    return out
