"""The review benchmark's data: a dataset of n pairs with words of known frequency, its search
index and one audit's scores in every registry column, built once per database and reused.

Texts are HH-RLHF helpful-base test transcripts, cycled; each pair's prompt ends in its number
(`[i]`), so the number of pair `rare_index(n)` is a word with one hit. Two made-up words are
appended at known rates: MEDIUM_WORD to one pair in 2,500 (400 at 1M), COMMON_WORD to 2 pairs in
5 (400,000 at 1M).

The pairs are written by one COPY (the upload path's own speed is measured elsewhere, and its
per-pair checks are not what this benchmark is about); the search index and the scores go
through the real code (the search-index build, the worker's score writer). A second run on the
same database finds the dataset by name (with its index and scores complete) and reuses it as it
is (review states included: the benchmark's bulk part clears them), so a benchmark can be rerun,
or resumed, in minutes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.lib.hh import transcripts
from bench.lib.paths import HH_HELPFUL_TEST

MEDIUM_WORD = "zanzibarite"
MEDIUM_EVERY = 2_500
COMMON_WORD = "quokkalike"
COMMON_OF_5 = (1, 3)
DATA_VERSION = 1


def rare_index(n: int) -> int:
    """The pair whose number is the one-hit word."""
    return int(n * 0.987654)


def dataset_name(n: int) -> str:
    return f"review-scale-{n}-v{DATA_VERSION}"


@dataclass
class Built:
    dataset_id: int
    job_id: int
    user_id: int
    train_ids: int
    cached: bool
    build: dict[str, Any]


def _texts() -> list[tuple[str, str, str]]:
    base = []
    for prompt, chosen, rejected in transcripts(HH_HELPFUL_TEST):
        if chosen.strip() and rejected.strip():
            base.append((prompt[-400:], chosen[:400], rejected[:400]))
    return base


def _copy_line(*fields: object) -> str:
    """One row of COPY's text format."""
    out = []
    for field in fields:
        value = str(field)
        value = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
        out.append(value.replace("\r", "\\r"))
    return "\t".join(out) + "\n"


def copy_pairs(session: Any, dataset_id: int, n: int) -> None:
    """The dataset's n pairs in one COPY: texts cycled, each prompt ending in its number and the
    made-up words at their rates."""
    base = _texts()
    raw = session.connection().connection.driver_connection
    columns = (
        "dataset_id, source_index, file_row, prompt, chosen, rejected, metadata, prompt_chars, "
        "chosen_chars, rejected_chars"
    )
    with raw.cursor() as cursor, cursor.copy(f"COPY pairs ({columns}) FROM STDIN") as copy:
        lines: list[str] = []
        for i in range(n):
            prompt, chosen, rejected = base[i % len(base)]
            words = [f"[{i}]"]
            if i % MEDIUM_EVERY == 1234 % MEDIUM_EVERY:
                words.append(MEDIUM_WORD)
            if i % 5 in COMMON_OF_5:
                words.append(COMMON_WORD)
            prompt = f"{prompt} {' '.join(words)}"
            meta = json.dumps({"source": "odd" if i % 2 else "even"})
            lines.append(
                _copy_line(
                    dataset_id,
                    i,
                    i + 1,
                    prompt,
                    chosen,
                    rejected,
                    meta,
                    len(prompt),
                    len(chosen),
                    len(rejected),
                )
            )
            if len(lines) >= 10_000:
                copy.write("".join(lines))
                lines = []
        copy.write("".join(lines))


def score_arrays(n_train: int, columns: tuple[str, ...], partial: frozenset[str]) -> dict:
    """Random scores for every column; the partial ones (group's) set for 1% of pairs only."""
    rng = np.random.default_rng(0)
    out: dict[str, np.ndarray] = {}
    for column in columns:
        values = rng.normal(size=n_train)
        if column in partial:
            values[rng.random(n_train) > 0.01] = np.nan
        out[column] = values
    return out


def _find(session: Any, n: int) -> tuple[int, int, int, int] | None:
    """(dataset, job, user, training rows) of a complete earlier build, else None."""
    from sqlalchemy import func, select

    from backend.models import Dataset, Job, Score

    dataset = session.scalar(select(Dataset).where(Dataset.name == dataset_name(n)))
    if dataset is None or not dataset.search_ready or dataset.n_pairs != n:
        return None
    job = session.scalar(select(Job).where(Job.dataset_id == dataset.id, Job.status == "succeeded"))
    if job is None or job.config != JOB_CONFIG:
        return dataset.id, 0, dataset.owner_id, 0  # the pairs and index are there, not the job
    rows = session.scalar(select(func.count()).where(Score.job_id == job.id))
    if rows != n:
        return None
    train = session.scalar(
        select(func.count()).where(Score.job_id == job.id, Score.split == "train")
    )
    return dataset.id, job.id, dataset.owner_id, int(train or 0)


def clear_reviews(sessions: Any, dataset_id: int) -> None:
    """An earlier run's review states and actions go: the bulk part starts unreviewed."""
    from sqlalchemy import text

    from backend.db import get_engine

    with sessions() as session:
        session.execute(text("DELETE FROM flags WHERE dataset_id = :d"), {"d": dataset_id})
        session.execute(text("DELETE FROM review_actions WHERE dataset_id = :d"), {"d": dataset_id})
        session.commit()
    # Without autovacuum the deleted rows stay in the indexes: a later bulk action would read
    # them all (100,000 dead index entries) to find that the pairs have no review row.
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE flags"))


def build(n: int, rebuild: bool = False) -> Built:
    """The benchmark's dataset in DATABASE_URL (already set, migrated to head)."""
    from sqlalchemy import select, text

    from backend.db import get_sessionmaker
    from backend.models import Dataset, User
    from backend.services import search
    from backend.services.users import create_user

    sessions = get_sessionmaker()
    with sessions() as session:
        found = None if rebuild else _find(session, n)
        if found is not None and found[1] == 0:
            redone: dict[str, Any] = {}
            job_id, n_train = score_job(found[0], found[2], n, redone)
            return Built(found[0], job_id, found[2], n_train, False, redone)
        if found is not None:
            print(f"reusing the {n:,}-pair dataset {found[0]} and job {found[1]}", flush=True)
            return Built(found[0], found[1], found[2], found[3], True, {})
    timings: dict[str, Any] = {}
    with sessions() as session:
        user = session.scalar(select(User).where(User.username == "bench"))
        if user is None:
            user = create_user(session, "bench", "bench-password")
            session.commit()
        user_id = user.id
        dataset = Dataset(
            owner_id=user_id,
            name=dataset_name(n),
            filename="pairs.jsonl",
            format="jsonl",
            schema_kind="prompt_chosen_rejected",
            n_pairs=n,
            sha256="0" * 64,
            original_path="",
            search_ready=False,
        )
        session.add(dataset)
        session.flush()
        dataset_id = dataset.id
        print(f"writing {n:,} pairs", flush=True)
        start = time.perf_counter()
        copy_pairs(session, dataset_id, n)
        session.commit()
        session.execute(text("ANALYZE pairs"))
        session.commit()
        timings["pairs_s"] = time.perf_counter() - start
        print(f"  pairs {timings['pairs_s']:.0f} s; building the search index", flush=True)
        start = time.perf_counter()
        search.build(session, dataset_id)
        timings["search_index_s"] = time.perf_counter() - start
        print(f"  search index {timings['search_index_s']:.0f} s", flush=True)
    job_id, n_train = score_job(dataset_id, user_id, n, timings)
    return Built(dataset_id, job_id, user_id, n_train, False, timings)


JOB_CONFIG = {"model": "tiny", "methods": ["loss", "gradient_similarity"], "bench": "seeded-split"}


def score_job(dataset_id: int, user_id: int, n: int, timings: dict) -> tuple[int, int]:
    """A succeeded audit of the dataset with random scores in every column (the dataset's other
    jobs removed first); its id and training pairs."""
    from sqlalchemy import select, text

    from backend.db import get_sessionmaker
    from backend.models import Job, Pair
    from worker.influence.data import split_validation
    from worker.influence.methods import PARTIAL_COLUMNS, SCORE_COLUMNS
    from worker.influence.results import AuditMetrics
    from worker.jobs.store import save_scores

    sessions = get_sessionmaker()
    with sessions() as session:
        for old in session.scalars(select(Job.id).where(Job.dataset_id == dataset_id)).all():
            session.execute(text(f"DROP TABLE IF EXISTS scores_job_{int(old)}"))
            session.execute(text("DELETE FROM jobs WHERE id = :j"), {"j": old})
        session.commit()
        ids = list(
            session.scalars(
                select(Pair.id).where(Pair.dataset_id == dataset_id).order_by(Pair.source_index)
            )
        )
        job = Job(
            dataset_id=dataset_id,
            owner_id=user_id,
            kind="audit",
            config=JOB_CONFIG,
            status="running",
        )
        session.add(job)
        session.commit()
        job_id = job.id
    # Validation pairs drawn as the jobs draw them (a seeded 10%, spread over the file).
    train_at, val_at = split_validation(n, 0.1, 0)
    train_ids, val_ids = [ids[i] for i in train_at], [ids[i] for i in val_at]
    scores = score_arrays(len(train_ids), SCORE_COLUMNS, PARTIAL_COLUMNS)
    print(f"saving {len(SCORE_COLUMNS)} score columns", flush=True)
    start = time.perf_counter()
    save_scores(sessions, job_id, train_ids, val_ids, scores, AuditMetrics(kind="audit"))
    timings["scores_s"] = time.perf_counter() - start
    print(f"  scores {timings['scores_s']:.0f} s", flush=True)
    with sessions() as session:
        session.execute(text("ANALYZE"))
        session.commit()
    return job_id, len(train_ids)
