"""A pair's interactions in a `group` audit: the partners whose joint removal differs most from
the sum of removing each (κ), each named by its row in the uploaded file."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.errors import NotFound
from backend.models import Dataset, Pair, Score
from backend.models import Interaction as InteractionRow
from backend.schemas import Interaction, Interactions
from backend.services.query import ReviewError, scored_job


def interactions(session: Session, dataset: Dataset, job_id: int, pair_id: int) -> Interactions:
    """A pair's strongest interactions in a group audit, strongest |κ| first."""
    job = scored_job(session, dataset, job_id)
    pair = session.get(Pair, pair_id)
    if pair is None or pair.dataset_id != dataset.id:
        raise NotFound(f"pair {pair_id} is not in dataset {dataset.id}")
    if "group" not in ((job.config or {}).get("methods") or []):
        raise ReviewError(f"job {job.id} did not run the 'group' method: it has no interactions")
    rows = session.execute(
        select(
            InteractionRow.kappa,
            Pair.id,
            Pair.source_index,
            Pair.file_row,
            Pair.prompt,
            Score.group_order,
        )
        .join(Pair, Pair.id == InteractionRow.other_id)
        .outerjoin(Score, (Score.pair_id == Pair.id) & (Score.job_id == job.id))
        .where(InteractionRow.job_id == job.id, InteractionRow.pair_id == pair_id)
        .order_by(func.abs(InteractionRow.kappa).desc(), Pair.id)
    ).all()
    items = [
        Interaction(
            pair_id=other,
            index=index,
            row=row,
            prompt=prompt[:300],
            kappa=kappa,
            kind="redundant" if kappa > 0 else "complementary",
            group_order=order,
        )
        for kappa, other, index, row, prompt, order in rows
    ]
    return Interactions(pair_id=pair_id, job_id=job.id, items=items)
