"""Can this ranking be trusted? Validation evidence and an estimate of how many pairs are wrong.

1. `validation_trust`: validation accuracy with its 95% Wilson interval and validation loss against
   ln 2 (the loss of a model that knows nothing). When the interval includes 0.5 or the loss is
   within 1% of ln 2, the reward model has not shown it knows more than chance, so no ranking it
   produces is evidence that a pair is wrong.
2. `mislabelled_estimate`: a confident-learning style count (Northcutt et al. 2021) from
   cross-fitted margins. A pair is presented in one order; p_i = σ(Δ_i) is the probability the
   out-of-fold model gives that order. By the symmetry of a pair's two orders, both "classes" share
   the threshold t = mean_i p_i; pairs with p_i ≥ t are confidently right, pairs with 1 − p_i ≥ t
   confidently wrong, and the wrong fraction is their ratio (the calibrated confident joint).
   Given that fraction ρ, the flip posterior of each pair under the model "labels are drawn from
   P(order | x) = σ(T·Δ) and then flipped with probability ρ" is
   q_i = ρ σ(−TΔ_i) / (ρ σ(−TΔ_i) + (1 − ρ) σ(TΔ_i)), with the temperature T fitted by maximum
   likelihood of the presented orders; the expected precision at the top k of a ranking is the mean
   q over those k pairs. The benchmark checks both against planted and real mislabels.
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


def fit_temperature(margins: np.ndarray, rate: float) -> float:
    """T maximising Σ log[(1 − ρ) σ(TΔ_i) + ρ σ(−TΔ_i)], the likelihood of the presented orders."""
    m = np.asarray(margins, dtype=np.float64)

    def loglik(t: float) -> float:
        return float(np.log((1 - rate) * sigmoid(t * m) + rate * sigmoid(-t * m) + 1e-300).sum())

    return max(TEMPERATURES, key=loglik)


def mislabelled_estimate(
    margins: np.ndarray,
    harm: np.ndarray | None = None,
    top_fractions: tuple[float, ...] = (0.05, 0.1, 0.2),
    source: str = "out_of_fold",
) -> dict:
    """How many pairs are probably presented in the wrong order, and what precision to expect.

    `margins` should come from models that did not train on the pair (cross-fitted): in-sample
    margins are overconfident and the estimate is then biased low (`source` says which).
    `harm` is the ranking whose top-k precision is predicted (the job's default harm).
    """
    m = np.asarray(margins, dtype=np.float64)
    n = int(m.size)
    p = sigmoid(m)
    threshold = float(p.mean()) if n else 0.5
    out: dict = {"source": source, "n": n, "threshold": threshold}
    if n == 0 or threshold <= 0.5:
        out.update(
            estimated_fraction=None,
            estimated_count=None,
            message="the cross-fitted model does not prefer the labelled order on average, "
            "so no mislabel count can be estimated",
        )
        return out
    confident_right = int((p >= threshold).sum())
    confident_wrong = int((1 - p >= threshold).sum())
    rate = confident_wrong / max(1, confident_right + confident_wrong)
    out.update(
        estimated_fraction=rate,
        estimated_count=int(round(rate * n)),
        confident_right=confident_right,
        confident_wrong=confident_wrong,
    )
    if 0 < rate < 0.5:
        temperature = fit_temperature(m, rate)
        q = flip_posterior(m, rate, temperature)
        out["temperature"] = temperature
        out["posterior_count"] = float(q.sum())
        if harm is not None:
            order = np.argsort(-np.asarray(harm, dtype=np.float64), kind="stable")
            expected = {}
            for fraction in top_fractions:
                k = max(1, int(round(fraction * n)))
                expected[str(fraction)] = float(q[order[:k]].mean())
            out["expected_precision_at_top"] = expected
    out["message"] = (
        f"about {out['estimated_count']} of {n} training pairs ({100 * rate:.1f}%) are probably "
        "presented in the wrong order (confident-learning estimate from "
        + ("cross-fitted margins" if source == "out_of_fold" else f"{source} margins")
        + ")"
    )
    return out
