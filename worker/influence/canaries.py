"""The job's own evidence for its default ranking: canaries, their detection figures, the choice.

Why canaries. No global default ranking is right everywhere (issue 20): where the reward model
learns, the loss (or influence) finds wrong pairs best; where it learns nothing, only a model-free
signal such as length can. Each job can measure which of its rankings finds errors *on its own
data with its own model*: before training it holds aside a few dozen training pairs and puts each
back with chosen and rejected exchanged. Such a *canary* is a pair of the dataset's own
distribution that is (almost surely) presented wrong, trained on exactly like every other pair.
After scoring, every ranking the job computed is asked how well it puts the canaries first among
the training pairs (AUROC of canaries against the rest, and how many land in its top 10%).

Design choices, and why:
- The original is held out, not kept beside its canary: a canary next to its own correctly
  labelled twin would be a duplicate that the model and every gradient score see cancel (the twin
  pulls the other way), which real errors never have. Held out, the canary is one wrong pair like
  any other. The held-aside originals are not trained on, so the job stores them like validation
  pairs of the dataset (listed, unscored); the canaries' scores are dropped before anything is
  stored: no canary reaches the user's results or export (the export reads the dataset's pairs,
  which never change).
- How many: 5% of the training pairs, at least `MIN_CANARIES` (an AUROC from fewer has a standard
  error above ~0.07) and at most `MAX_CANARIES` (more costs training pairs and buys little
  precision: the standard error falls as 1/√k); never more than `MAX_SHARE` of the training pairs,
  so jobs under 200 pairs plant none and keep the requested default.
- A canary drawn from a pair that was already wrong in the user's data becomes right: canary
  AUROC therefore understates a little, like real errors among the "clean" negatives do (the
  detection benchmark measures this error: bench/RESULTS.md).
- The choice shrinks toward a prior order (`choose`): the loss is kept unless another ranking's
  canary AUROC beats it by more than that ranking's own standard error; with a validation
  accuracy whose 95% interval includes chance (`trust.validation_trust`), no model ranking is
  evidence and the length heuristic (no model; direction from the validation pairs) is used.
- "The model learned" needs the canaries to agree (`CONFIRM_Z`): a model ranking is used only
  where its canary AUROC's 95% interval lies above chance; otherwise the validation figures alone
  are too weak a sign that the model's rankings find errors (harmless-base's head-mode cells
  passed the validation test with accuracy 0.63 [0.53, 0.72] while the loss ranked the planted
  flips at AUROC 0.51: bench/results/detection-canaries/), and the job shrinks to the model-free
  signal. Same 95% standard as the validation test; no threshold was tuned.
- `default_method` = `AUTO` lets the job choose; a method's name (`length` too) is honoured and
  the canary figures are still reported.

Torch-free; the job runner (worker/jobs/) plants the canaries and applies the choice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from worker.influence.data import Pair
from worker.influence.methods import AUTO, METHODS, default_method, harm_column

CANARY_FRACTION = 0.05
MIN_CANARIES = 20
MAX_CANARIES = 64
MAX_SHARE = 0.1
"""At most this share of the training pairs become canaries (else none are planted)."""
TOP_FRACTION = 0.1
PRIOR = "loss"
"""The ranking kept unless another beats it on the canaries by more than its standard error."""
MODEL_FREE = "length"
"""The ranking used where the model learned nothing: it needs no model."""
CONFIRM_Z = 1.96
"""A model ranking is used only where its canary AUROC − CONFIRM_Z·SE > 0.5 (a 95% interval above
chance, the standard the validation test applies to the accuracy)."""
CANARY_SALT = 0xC4A7
"""Mixed into the job's seed, so canaries never coincide with the validation split's draw."""


def explicit_default(configured: str) -> str | None:
    """The default a job named itself, or None where it left `default_method` at `AUTO`: then the
    canaries and the validation figures decide."""
    return None if configured == AUTO else configured


def canary_count(n_train: int) -> int:
    """How many canaries a job with `n_train` training pairs plants (0: too few pairs)."""
    k = min(MAX_CANARIES, max(MIN_CANARIES, round(CANARY_FRACTION * n_train)))
    return k if k <= MAX_SHARE * n_train else 0


def select_canaries(n_train: int, seed: int) -> np.ndarray:
    """Sorted positions (into the training pairs) of the job's canaries, drawn from its seed."""
    k = canary_count(n_train)
    rng = np.random.default_rng([CANARY_SALT, int(seed)])
    return np.sort(rng.choice(n_train, k, replace=False)).astype(np.int64)


def canary_mask(n_train: int, positions: np.ndarray) -> np.ndarray:
    mask = np.zeros(n_train, dtype=bool)
    mask[np.asarray(positions, dtype=np.int64)] = True
    return mask


def plant(pairs: Sequence[Pair], positions: np.ndarray) -> list[Pair]:
    """The training pairs with each canary position's chosen and rejected exchanged."""
    mask = canary_mask(len(pairs), positions)
    return [
        Pair(p.prompt, p.rejected, p.chosen) if m else p for p, m in zip(pairs, mask, strict=True)
    ]


@dataclass(frozen=True)
class Evidence:
    """One ranking's figures on the canaries."""

    method: str
    auroc: float
    se: float
    """Hanley–McNeil standard error of the AUROC."""
    hits: int
    """Canaries in the ranking's top `TOP_FRACTION` of the training pairs."""
    canaries: int
    top: int
    """How many pairs the top `TOP_FRACTION` holds."""

    def as_dict(self) -> dict:
        return {
            "auroc": self.auroc,
            "auroc_se": self.se,
            "top10_hits": self.hits,
            "top10_size": self.top,
        }

    def sentence(self) -> str:
        return (
            f"on {self.canaries} canaries this ranking put {self.hits} in its top 10% "
            f"(canary AUROC {self.auroc:.3f} ± {self.se:.3f})"
        )


def auroc_se(scores: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(AUROC of the masked rows against the rest, ties counted half; Hanley–McNeil 1982 SE)."""
    n1, n0 = int(mask.sum()), int(mask.size - mask.sum())
    ranks = rankdata(scores)
    a = float((ranks[mask].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0)
    return a, math.sqrt(max(var, 0.0))


def evaluate(
    scores: Mapping[str, np.ndarray], methods: Sequence[str], positions: np.ndarray
) -> dict[str, Evidence]:
    """Each computed method's harm column against the canaries (methods whose column is missing,
    partial or not finite everywhere are left out)."""
    out: dict[str, Evidence] = {}
    if len(positions) == 0:
        return out
    for method in methods:
        column = scores.get(harm_column(method))
        if column is None or any(c.partial for c in METHODS[method].owns):
            continue
        values = np.asarray(column, dtype=np.float64)
        if not np.all(np.isfinite(values)):
            continue
        mask = canary_mask(len(values), positions)
        a, se = auroc_se(values, mask)
        top = max(1, int(round(TOP_FRACTION * len(values))))
        order = np.argsort(-values, kind="stable")[:top]
        out[method] = Evidence(method, a, se, int(mask[order].sum()), int(mask.sum()), top)
    return out


def choose(
    evidence: Mapping[str, Evidence],
    computed: Sequence[str],
    trust: Mapping,
    asked: str | None = None,
) -> tuple[str, str]:
    """(method whose harm becomes `harm`, the reason in one or two sentences): `decide` without
    its rule."""
    chosen, reason, _ = decide(evidence, computed, trust, asked)
    return chosen, reason


def decide(
    evidence: Mapping[str, Evidence],
    computed: Sequence[str],
    trust: Mapping,
    asked: str | None = None,
) -> tuple[str, str, str]:
    """(method whose harm becomes `harm`, the reason, the rule: 'asked', 'learned' or
    'model_free').

    `computed`: the methods with a harm column, in the job's order; `trust`: the validation
    verdict (`trust.validation_trust`); `asked`: a default the user named explicitly (honoured),
    or None to let the evidence decide."""
    if asked is not None:
        chosen = default_method(computed, asked)
        found = evidence.get(chosen)
        tail = f"; {found.sentence()}." if found else "."
        return chosen, f"{chosen} was asked for as the default{tail}", "asked"
    if not trust.get("is_evidence"):
        acc, (low, high) = trust.get("val_accuracy"), trust.get("val_accuracy_ci95") or (0, 1)
        head = (
            f"The model learned nothing shown: validation accuracy {acc:.3f} on "
            f"{trust.get('n_val')} pairs, 95% interval [{low:.3f}, {high:.3f}] includes chance"
            if acc is not None and (low <= 0.5 <= high)
            else "The model learned nothing shown (validation loss is at ln 2)"
        )
        return _model_free(head, evidence, computed)
    if not evidence:
        chosen = default_method(computed, PRIOR)
        return (
            chosen,
            (
                "Too few training pairs for canaries "
                f"(needs {math.ceil(MIN_CANARIES / MAX_SHARE)}); "
                f"{chosen} is kept by the prior order."
            ),
            "learned",
        )
    chosen, reason = _by_canaries(evidence)
    found = evidence[chosen]
    if chosen != MODEL_FREE and found.auroc - CONFIRM_Z * found.se <= 0.5:
        low = found.auroc - CONFIRM_Z * found.se
        head = (
            f"The validation pairs show learning, but on the canaries the model's best-supported "
            f"ranking ({chosen}, AUROC {found.auroc:.3f}, 95% interval from {low:.3f}) is not "
            f"shown to find wrong pairs above chance"
        )
        return _model_free(head, evidence, computed)
    return chosen, reason, "learned"


def _model_free(
    head: str, evidence: Mapping[str, Evidence], computed: Sequence[str]
) -> tuple[str, str, str]:
    """The length heuristic where the model's rankings are not evidence (`head` says why)."""
    if MODEL_FREE in computed:
        found = evidence.get(MODEL_FREE)
        tail = f"; {found.sentence()}." if found else "."
        return (
            MODEL_FREE,
            (
                f"{head}, so no ranking by the model is evidence: using the length heuristic, "
                f"which needs no model (direction from the validation pairs){tail}"
            ),
            "model_free",
        )
    chosen = default_method(computed, PRIOR)
    return chosen, f"{head}; no model-free ranking was computed, so {chosen} is kept.", "model_free"


def _by_canaries(evidence: Mapping[str, Evidence]) -> tuple[str, str]:
    """The prior (the loss) unless another ranking beats it on the canaries by more than its
    standard error."""
    prior = evidence.get(PRIOR)
    best = max(evidence.values(), key=lambda e: e.auroc)
    if prior is None:
        return best.method, f"{best.method} ranks the canaries best: {best.sentence()}."
    if best.method != PRIOR and best.auroc - prior.auroc > best.se:
        return best.method, (
            f"{best.method} beat the loss on the canaries by {best.auroc - prior.auroc:.3f} "
            f"AUROC, more than its standard error ({best.se:.3f}): {best.sentence()}."
        )
    runner = (
        ""
        if best.method == PRIOR
        else (f" (best other: {best.method} at {best.auroc:.3f}, within its standard error)")
    )
    return PRIOR, (
        f"The model beats chance on validation and no ranking beat the loss on the canaries by "
        f"more than its standard error{runner}: {prior.sentence()}."
    )


def apply(
    scores: Mapping[str, np.ndarray],
    methods: Sequence[str],
    positions: np.ndarray,
    trust: Mapping,
    asked: str | None = None,
) -> tuple[dict[str, np.ndarray], dict]:
    """Evaluate, choose, set `harm` to the chosen column and drop the canaries' rows.

    Returns (the columns of the non-canary training pairs only, the `default_choice` metrics)."""
    computed = [m for m in methods if harm_column(m) in scores]
    evidence = evaluate(scores, computed, positions)
    chosen, reason, rule = decide(evidence, computed, trust, asked)
    n_rows = len(next(iter(scores.values())))  # any column: no "loss" unless a method reads it
    keep = ~canary_mask(n_rows, positions)
    out = {name: np.asarray(values)[keep] for name, values in scores.items()}
    out["harm"] = out[harm_column(chosen)].copy()
    return out, describe(chosen, reason, rule, evidence, len(positions))


def describe(
    chosen: str,
    reason: str,
    rule: str,
    evidence: Mapping[str, Evidence],
    canaries: int,
) -> dict:
    """The `default_choice` metrics (worker.influence.results.DefaultChoice)."""
    found = evidence.get(chosen)
    return {
        "method": chosen,
        "reason": reason,
        "rule": rule,
        "canaries": canaries,
        "held_aside": canaries,
        "rankings": {m: e.as_dict() for m, e in evidence.items()},
        "expected_auroc": found.auroc if found else None,
        "expected_auroc_se": found.se if found else None,
        "expected_top10_hits": found.hits if found else None,
        "expected": found.sentence() if found else None,
    }
