"""Datasets and seeded cells of the detection benchmark (bench.detection).

Six sources, each read from `../shared/data/` (never copied into the repository):
- `helpful-base`, `harmless-base`, `helpful-rejection-sampled`: Anthropic HH-RLHF test files
  (the last from another distribution: rejection-sampled responses); planted flips.
- `llmbar`: LLMBar's objective pairs (a flipped pair is truly wrong; the adversarial rejected
  outputs are longer on purpose); planted flips.
- `vicuna80`: Vicuna-80 answers with three human votes. The label is one rater's vote (which rater
  is drawn per unit and seed), the truth the majority of the three: real disagreement, nothing
  planted. Units whose drawn vote is a tie, or whose three votes have no strict majority for one
  answer, are left out. Split by question, never by unit.
- `pandalm`: PandaLM's 999 human-annotated items (three annotators, 1 / 2 / 0 = tie), read like
  vicuna80: one annotator's vote is the label, the majority the truth (ties and items without a
  majority left out); split by instruction, a fifth of the instructions for validation.

A cell (dataset, flip rate, seed) draws its own split and flips from `default_rng([salt, seed])`
(salt = `SPLIT_SALT`), so no cell reuses hh-flip10's split (`default_rng(0)`). Validation pairs
keep their true labels: a clean held-out set, as in ANCHORS.md's task.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.ingest.reading import read_pairs
from bench.lib.cache import save_torch, texts_key
from bench.lib.paths import SHARED_DATA
from worker.influence.data import Pair

HH_SETS: tuple[str, ...] = ("helpful-base", "harmless-base", "helpful-rejection-sampled")
DATASETS: tuple[str, ...] = (*HH_SETS, "llmbar", "vicuna80", "pandalm")
PLANTED: frozenset[str] = frozenset({*HH_SETS, "llmbar"})
VOTED: frozenset[str] = frozenset({"vicuna80", "pandalm"})
"""Real disagreement: one rater's vote against the majority of three (nothing planted)."""
SPLIT_SALT = 9090
"""Mixed into every cell's generator so no split coincides with hh-flip10's or the noise study's."""

SIZES: dict[str, tuple[int, int]] = {
    "helpful-base": (1000, 300),
    "harmless-base": (1000, 300),
    "helpful-rejection-sampled": (1000, 300),
    "llmbar": (300, 119),
}
"""(train, validation) pairs per planted dataset; vicuna80 splits its 80 questions 64 / 16."""

CAP_SALT = 31
"""Mixed into a capped cell's generator (`Cell.capped`)."""
VICUNA_VAL_QUESTIONS = 16
PANDALM_VAL_SHARE = 0.2


@dataclass(frozen=True)
class Source:
    """Every candidate pair of a dataset, in file order, with what the cells need to label them."""

    name: str
    pairs: list[Pair]  # for vicuna80: (prompt, response_a, response_b)
    groups: np.ndarray | None = None  # question id per pair (vicuna80)
    votes: np.ndarray | None = None  # [n, 3] votes 1 (a better), 2 (b better), 3 (tie)


@dataclass(frozen=True)
class Cell:
    """One benchmark cell: which source pairs train and validate, their orientation, the truth.

    `train_index`/`val_index` index `Source.pairs`; `train_swap[i]` says whether training pair i is
    presented with chosen and rejected exchanged relative to the source pair; `mislabelled[i]`
    whether that presentation is wrong (a planted flip, or a rater who disagrees with the
    majority). Validation pairs are always presented in their true order (`val_swap`).
    """

    dataset: str
    flip_rate: float | None
    seed: int
    train_index: np.ndarray
    train_swap: np.ndarray
    mislabelled: np.ndarray
    val_index: np.ndarray
    val_swap: np.ndarray

    def train_pairs(self, source: Source) -> list[Pair]:
        return _present(source.pairs, self.train_index, self.train_swap)

    def val_pairs(self, source: Source) -> list[Pair]:
        return _present(source.pairs, self.val_index, self.val_swap)

    def capped(self, n_train: int, n_val: int) -> Cell:
        """The cell with at most `n_train` training and `n_val` validation pairs, a seeded random
        subset of each (the voted sets' indices are sorted by question: a prefix would not do);
        for LoRA cells on a CPU."""
        rng = np.random.default_rng([SPLIT_SALT, self.seed, CAP_SALT])
        train = _subset(rng, len(self.train_index), n_train)
        val = _subset(rng, len(self.val_index), n_val)
        return Cell(
            dataset=self.dataset,
            flip_rate=self.flip_rate,
            seed=self.seed,
            train_index=self.train_index[train],
            train_swap=self.train_swap[train],
            mislabelled=self.mislabelled[train],
            val_index=self.val_index[val],
            val_swap=self.val_swap[val],
        )


def _subset(rng: np.random.Generator, n: int, keep: int) -> np.ndarray:
    return np.arange(n) if keep >= n else np.sort(rng.choice(n, keep, replace=False))


def _present(pairs: list[Pair], index: np.ndarray, swap: np.ndarray) -> list[Pair]:
    out = []
    for i, s in zip(index, swap, strict=True):
        p = pairs[int(i)]
        out.append(Pair(p.prompt, p.rejected, p.chosen) if s else p)
    return out


def load_source(name: str, data_dir: Path = SHARED_DATA, limit: int | None = None) -> Source:
    """A dataset's candidate pairs (at most `limit`, for --quick runs)."""
    data_dir = Path(data_dir)
    if name in HH_SETS:
        path = data_dir / "hh-rlhf" / f"{name}-test.jsonl.gz"
        _require(path)
        parsed = read_pairs(path, allow_empty_responses=True)[:limit]
        return Source(name, [Pair(p.prompt, p.chosen, p.rejected) for p in parsed])
    if name == "llmbar":
        path = data_dir / "llmbar" / "llmbar.jsonl"
        _require(path)
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        rows = rows[:limit]
        return Source(name, [Pair(r["prompt"], r["chosen"], r["rejected"]) for r in rows])
    if name == "vicuna80":
        path = data_dir / "vicuna80-human" / "votes.jsonl.gz"
        _require(path)
        with gzip.open(path, "rt") as handle:
            rows = [json.loads(line) for line in handle if line.strip()]
        rows = [r for r in rows if len(r["votes"]) == 3][:limit]
        return Source(
            name,
            [Pair(r["prompt"], r["response_a"], r["response_b"]) for r in rows],
            groups=np.array([int(r["question_id"]) for r in rows]),
            votes=np.array([r["votes"] for r in rows], dtype=np.int64),
        )
    if name == "pandalm":
        return _pandalm_source(data_dir, limit)
    raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")


def _pandalm_source(data_dir: Path, limit: int | None) -> Source:
    """PandaLM's items as vicuna80's units: votes 1 / 2, a tie (0 in the file) as 3."""
    path = data_dir / "pandalm" / "testset-v1.json"
    _require(path)
    rows = json.loads(path.read_text())[:limit]
    prompts = [r["instruction"] + ("\n\n" + r["input"] if r.get("input") else "") for r in rows]
    groups: dict[str, int] = {}
    return Source(
        "pandalm",
        # A few responses are JSON booleans (the model answered "True"): kept as their text.
        [
            Pair(p, str(r["response1"]), str(r["response2"]))
            for p, r in zip(prompts, rows, strict=True)
        ],
        groups=np.array([groups.setdefault(r["instruction"], len(groups)) for r in rows]),
        votes=np.array(
            [[r[f"annotator{k}"] or 3 for k in (1, 2, 3)] for r in rows], dtype=np.int64
        ),
    )


def _require(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; pass --data-dir pointing at shared/data")


def make_cell(
    source: Source,
    flip_rate: float | None,
    seed: int,
    sizes: tuple[int, int] | None = None,
) -> Cell:
    """The seeded split and labels of one cell (see the module docstring)."""
    rng = np.random.default_rng([SPLIT_SALT, seed, int(round((flip_rate or 0) * 1000))])
    if source.name in VOTED:
        return _vicuna_cell(source, seed, rng)
    n_train, n_val = sizes or SIZES[source.name]
    n_total = len(source.pairs)
    if n_train + n_val > n_total:
        scale = n_total / (n_train + n_val)
        n_train, n_val = int(n_train * scale), int(n_val * scale)
    perm = rng.permutation(n_total)
    train_index, val_index = perm[:n_train], perm[n_train : n_train + n_val]
    flips = np.zeros(n_train, dtype=bool)
    flips[rng.choice(n_train, int(round((flip_rate or 0) * n_train)), replace=False)] = True
    return Cell(
        dataset=source.name,
        flip_rate=flip_rate,
        seed=seed,
        train_index=train_index,
        train_swap=flips,
        mislabelled=flips.copy(),
        val_index=val_index,
        val_swap=np.zeros(n_val, dtype=bool),
    )


def vicuna_truth(votes: np.ndarray) -> np.ndarray:
    """Per unit: 1 or 2 where at least two of three votes pick that answer, else 0 (undecided)."""
    ones, twos = (votes == 1).sum(axis=1), (votes == 2).sum(axis=1)
    return np.where(ones >= 2, 1, np.where(twos >= 2, 2, 0))


def _vicuna_cell(source: Source, seed: int, rng: np.random.Generator) -> Cell:
    assert source.groups is not None and source.votes is not None
    truth = vicuna_truth(source.votes)
    questions = np.unique(source.groups)
    n_val = VICUNA_VAL_QUESTIONS
    if source.name == "pandalm":
        n_val = int(round(PANDALM_VAL_SHARE * len(questions)))
    val_questions = rng.choice(questions, min(n_val, len(questions) // 2), False)
    is_val = np.isin(source.groups, val_questions)
    label = source.votes[np.arange(len(truth)), rng.integers(0, 3, len(truth))]
    train_index = np.flatnonzero(~is_val & (truth > 0) & (label != 3))
    val_index = np.flatnonzero(is_val & (truth > 0))
    train_label = label[train_index]
    return Cell(
        dataset=source.name,
        flip_rate=None,
        seed=seed,
        train_index=train_index,
        train_swap=train_label == 2,  # the rater preferred b: present b as chosen
        mislabelled=train_label != truth[train_index],
        val_index=val_index,
        val_swap=truth[val_index] == 2,
    )


def source_views(source: Source, config, cache_dir: Path):
    """Head-mode feature views of every source pair (chosen − rejected as stored), cached on disk.

    Returns (PairViews, truncation_rate). The backbone is frozen, so a cell's features are these
    rows, negated where the cell presents a pair swapped: extraction runs once per dataset, not
    once per cell. Keyed by dataset, model, max_length and a hash of the texts.
    """
    import torch  # torch: heavy, only when features are extracted

    from worker.influence.features import PairViews, backbone_features, pair_views, truncation_rate
    from worker.influence.model import encode, load_backbone, resolve_device

    key, name = texts_key(source.name, config.model, config.max_length, source.pairs)
    path = Path(cache_dir) / f"detection_views_{source.name}_{name}.pt"
    if path.exists():
        stored = torch.load(path, weights_only=True)
        return PairViews(stored["views"]), float(stored["truncation_rate"])
    backbone, tokenizer = load_backbone(config)
    enc = encode(tokenizer, source.pairs, config.max_length)
    device = resolve_device(config.device)
    pooled = backbone_features(backbone, enc, device, 2 * config.chunk_size(device.type))
    views = pair_views(pooled, source.pairs)
    rate = truncation_rate(enc, config.max_length)
    save_torch(path, {"views": views.views, "key": key, "truncation_rate": rate})
    return views, rate
