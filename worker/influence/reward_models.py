"""Several outside reward models on the audited pairs: each model's margin, and their vote.

A reward model here is any `AutoModelForSequenceClassification` with one output (a local
directory, a hub id, or a model an earlier audit saved with `save_model`). Nothing is trained:
each model scores prompt+chosen and prompt+rejected exactly as `mode="pretrained"` loads it
(left truncation at the job's `max_length`), and its margin is

    m_k(i) = r_k(prompt_i + chosen_i) − r_k(prompt_i + rejected_i)      (k = 1..K models)

Over the K margins of a pair (Secrets of RLHF II ranks HH pairs by the mean and spread of ten
reward models' margins; PrefCleanBench removes what several judges contest):

    rm_mean           = mean_k m_k
    rm_spread         = std_k m_k (population std, ddof = 0; 0 for one model)
    rm_votes_against  = #{k : m_k < 0}, the models that prefer the rejected answer
    rm_ambiguous      = 1 when the models split — 0 < votes_against < K — or when
                        |rm_mean| < AMBIGUOUS_RATIO · rm_spread (they agree in sign but the
                        spread swamps the mean: one model's large margin carries the vote); else 0

With two models and ddof = 0, two margins of one sign always have |mean| ≥ spread, so there
ambiguous is exactly "the two models disagree". With one model nothing is ambiguous.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from worker.influence.config import EngineConfig
from worker.influence.data import Pair
from worker.influence.model import Encoded, encode, load_backbone
from worker.influence.reward_columns import REWARD_MODEL_SLOTS
from worker.influence.train import ShouldCancel, check_cancel

MAX_REWARD_MODELS = REWARD_MODEL_SLOTS
"""How many reward models an audit may name: one margin slot each (raising it is the registry's
slot count and a migration adding the columns)."""

MARGIN_COLUMNS: tuple[str, ...] = tuple(f"rm_margin_{k}" for k in range(1, MAX_REWARD_MODELS + 1))
"""The per-model margin columns (the registry's slots), slot k holding the job's k-th model."""

AMBIGUOUS_RATIO = 1.0
"""A pair whose models agree in sign is still ambiguous when |mean| < this × spread."""

VOTE_COLUMNS: tuple[str, ...] = ("rm_mean", "rm_spread", "rm_votes_against", "rm_ambiguous")
"""The columns computed over the models' margins."""


def model_key(source: str, max_length: int) -> str:
    """A short stable key of (model, max_length): the name its cached margins are stored under."""
    digest = hashlib.sha256(f"{source}\n{max_length}".encode()).hexdigest()
    return digest[:16]


def load_reward_model(source: str) -> tuple[torch.nn.Module, Any]:
    """(model, tokenizer) of a reward model named as `EngineConfig.model` takes it: a local
    directory or a hub id (presets work too). Left truncation, right padding, fp32, eval mode.
    Raises ValueError for a missing directory, RuntimeError when it cannot be loaded."""
    model, tokenizer = load_backbone(EngineConfig(model=source))
    return model.eval(), tokenizer


def rewards_margins(
    model: torch.nn.Module,
    enc: Encoded,
    device: torch.device,
    batch_size: int = 32,
    progress: Callable[[float], None] | None = None,
    should_cancel: ShouldCancel | None = None,
) -> np.ndarray:
    """m(i) = r(chosen_i) − r(rejected_i) [n] under `model`, in length-sorted batches of pairs
    (both sides in one forward of 2B sequences), float64."""
    model.to(device)
    n = len(enc)
    out = np.empty(n, dtype=np.float64)
    order = np.argsort(enc.lengths(), kind="stable")
    with torch.no_grad():
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size].tolist()
            ids, mask = enc.batch(index, device)
            b, _, length = ids.shape
            logits = model(
                input_ids=ids.reshape(2 * b, length), attention_mask=mask.reshape(2 * b, length)
            ).logits
            rewards = logits[:, 0].double().reshape(b, 2)
            out[index] = (rewards[:, 0] - rewards[:, 1]).cpu().numpy()
            check_cancel(should_cancel)
            if progress is not None:
                progress(min(1.0, (start + batch_size) / max(1, n)))
    return out


def score_pairs(
    source: str,
    pairs: Sequence[Pair],
    max_length: int,
    device: torch.device,
    batch_size: int = 32,
) -> np.ndarray:
    """One reward model's margins [n] on `pairs` (loads the model; for tests and benchmarks)."""
    model, tokenizer = load_reward_model(source)
    return rewards_margins(model, encode(tokenizer, pairs, max_length), device, batch_size)


def vote(margins: np.ndarray) -> dict[str, np.ndarray]:
    """The reward-model columns from the margins [K, n] of K models (K ≤ MAX_REWARD_MODELS):
    rm_margin_1..K, rm_mean, rm_spread, rm_votes_against, rm_ambiguous (see the module)."""
    m = np.asarray(margins, dtype=np.float64)
    if m.ndim != 2 or not 1 <= m.shape[0] <= MAX_REWARD_MODELS:
        raise ValueError(f"margins must be [K, n] with 1 ≤ K ≤ {MAX_REWARD_MODELS}; got {m.shape}")
    k = m.shape[0]
    mean = m.mean(axis=0)
    spread = m.std(axis=0)
    against = (m < 0).sum(axis=0)
    split = (against > 0) & (against < k)
    ambiguous = split | (np.abs(mean) < AMBIGUOUS_RATIO * spread)
    columns = {MARGIN_COLUMNS[j]: m[j] for j in range(k)}
    columns.update(
        rm_mean=mean,
        rm_spread=spread,
        rm_votes_against=against.astype(np.float64),
        rm_ambiguous=ambiguous.astype(np.float64),
    )
    return columns


def summary(sources: Sequence[str], margins: np.ndarray) -> dict[str, Any]:
    """The job's record of its reward models: each model's slot, agreement with the labels and
    mean margin, the models' pairwise margin correlations, the vote's counts."""
    m = np.asarray(margins, dtype=np.float64)
    columns = vote(m)
    k, n = m.shape
    corr = np.corrcoef(m) if k > 1 and n > 1 else np.ones((k, k))
    against = columns["rm_votes_against"]
    return {
        "models": [
            {
                "slot": MARGIN_COLUMNS[j],
                "model": source,
                "agreement": float((m[j] > 0).mean()) if n else 0.0,
                "mean_margin": float(m[j].mean()) if n else 0.0,
            }
            for j, source in enumerate(sources)
        ],
        "n_pairs": int(n),
        "ambiguous": int(columns["rm_ambiguous"].sum()),
        "all_against": int((against == k).sum()),
        "mean_negative": int((columns["rm_mean"] < 0).sum()),
        "votes_against": [int((against == v).sum()) for v in range(k + 1)],
        "margin_correlation": np.nan_to_num(corr, nan=0.0).round(4).tolist(),
        "ambiguous_ratio": AMBIGUOUS_RATIO,
    }
