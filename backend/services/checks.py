"""Exact checks run on request: a dataset's prompts against an evaluation set (n-gram
contamination), tagging the overlapping pairs (`backend.ingest.checks`, `backend.storage.tags`)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.ingest.checks import evaluation_ngrams, ngram_overlap
from backend.models import Dataset, Pair
from backend.schemas import ContaminationResult
from backend.storage.tags import replace_tags

_BATCH = 2000


def _prompts(session: Session, dataset_id: int) -> list[tuple[int, str]]:
    rows = session.execute(
        select(Pair.id, Pair.prompt)
        .where(Pair.dataset_id == dataset_id)
        .execution_options(yield_per=_BATCH)
    )
    return [(pair_id, prompt) for pair_id, prompt in rows]


def check_contamination(
    session: Session, dataset: Dataset, evaluation: Dataset, n: int
) -> ContaminationResult:
    """Tag the dataset's pairs whose prompt shares an n-gram with an evaluation prompt (value:
    the share of the prompt's n-grams that do), replacing its earlier `contamination` tags."""
    grams = evaluation_ngrams((p for _, p in _prompts(session, evaluation.id)), n)
    found: list[tuple[int, float | None]] = []
    pairs = _prompts(session, dataset.id)
    for pair_id, prompt in pairs:
        share = ngram_overlap(prompt, grams, n)
        if share > 0:
            found.append((pair_id, share))
    replace_tags(session, dataset.id, "contamination", found)
    session.commit()
    return ContaminationResult(
        dataset_id=dataset.id,
        eval_dataset_id=evaluation.id,
        n=n,
        n_pairs=len(pairs),
        n_eval_ngrams=len(grams),
        tagged=len(found),
    )
