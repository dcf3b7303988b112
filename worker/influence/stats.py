"""Small-sample statistics for retraining experiments: per-arm summaries and paired differences.

Paired design: a[i] and b[i] come from the same seed i (same data draw, same initialisation), so the
seed-to-seed variation common to both cancels in d_i = a_i − b_i, and the interval is Student's t
on the n differences, mean(d) ± t_{(1+c)/2, n−1} · sd(d)/√n.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as scipy_stats


def _as_finite(values: Sequence[float], name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} holds non-finite values: {array.tolist()}")
    return array


def summarize(values: Sequence[float]) -> dict:
    """{"n", "mean", "std" (sample, ddof=1; None when n < 2), "values"}; mean is None when n = 0."""
    array = _as_finite(values, "values")
    n = int(array.size)
    return {
        "n": n,
        "mean": float(array.mean()) if n else None,
        "std": float(array.std(ddof=1)) if n >= 2 else None,
        "values": array.tolist(),
    }


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict:
    """Mean of d = a − b with its Student-t confidence interval (n − 1 degrees of freedom).

    `a[i]` and `b[i]` must be measured with the same seed i. Returns {"n", "mean", "std"
    (sample, ddof=1), "ci_low", "ci_high", "confidence"}; with n < 2 std and the interval are None.
    When every difference is equal the interval collapses to that value (deterministic runs).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1) (got {confidence})")
    first, second = _as_finite(a, "a"), _as_finite(b, "b")
    if first.size != second.size:
        raise ValueError(
            f"paired samples differ in length ({first.size} vs {second.size}): a[i] and b[i] must "
            "come from the same seed i"
        )
    d = first - second
    n = int(d.size)
    result: dict = {
        "n": n,
        "mean": float(d.mean()) if n else None,
        "std": None,
        "ci_low": None,
        "ci_high": None,
        "confidence": confidence,
    }
    if n >= 2:
        std = float(d.std(ddof=1))
        half = float(scipy_stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
        result.update(std=std, ci_low=float(d.mean()) - half, ci_high=float(d.mean()) + half)
    return result


def excludes_zero(difference: dict) -> bool:
    """Whether a `paired_difference` interval lies strictly on one side of zero."""
    low, high = difference.get("ci_low"), difference.get("ci_high")
    if low is None or high is None:
        return False
    return low > 0 or high < 0
