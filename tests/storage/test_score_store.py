"""A job's scores as the review reads them: the bulk load (a job's own partition on Postgres,
binary COPY), the shard-at-a-time writers, a rerun, NULLs for missing values, and cleanup."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session, sessionmaker


@pytest.fixture(params=["postgres", "sqlite"])
def sessions(request, database, tmp_path) -> Iterator[sessionmaker]:
    from backend.db import get_sessionmaker

    if request.param == "postgres":
        yield get_sessionmaker()
        return
    from alembic import command

    from backend.db import alembic_config

    engine = create_engine(f"sqlite:///{tmp_path / 'scores.db'}")
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        config.attributes["configure_logger"] = False
        command.upgrade(config, "head")
    yield sessionmaker(bind=engine, expire_on_commit=False)


def _job(session: Session, n: int) -> tuple[int, list[int]]:
    """A dataset of n pairs and a running audit of it."""
    from backend.db import insert_rows
    from backend.models import Dataset, Job, Pair
    from backend.services.users import create_user

    user = create_user(session, f"scores-{uuid.uuid4().hex[:8]}", "correct-horse")
    dataset = Dataset(
        owner_id=user.id,
        name="d",
        filename="d.jsonl",
        format="jsonl",
        schema_kind="pcr",
        n_pairs=n,
        sha256="0" * 64,
        original_path="/nonexistent/d.jsonl",
    )
    session.add(dataset)
    session.flush()
    rows = [
        {
            "dataset_id": dataset.id,
            "source_index": i,
            "file_row": i + 1,
            "prompt": "p",
            "chosen": "c",
            "rejected": "r",
            "meta": {},
        }
        for i in range(n)
    ]
    insert_rows(session, Pair, rows)
    job = Job(dataset_id=dataset.id, owner_id=user.id, kind="audit", config={}, status="running")
    session.add(job)
    session.commit()
    ids = list(session.scalars(select(Pair.id).where(Pair.dataset_id == dataset.id)))
    return job.id, sorted(ids)


def _rows(session: Session, job_id: int) -> dict[int, tuple]:
    from backend.models import Score

    found = session.execute(
        select(Score.pair_id, Score.split, Score.harm, Score.loss).where(Score.job_id == job_id)
    ).all()
    return {pair: (split, harm, loss) for pair, split, harm, loss in found}


def test_a_whole_job_is_stored_exactly_with_missing_values_as_null(sessions) -> None:
    from backend.storage.scores import replace_scores

    rng = np.random.default_rng(0)
    n = 2_500  # more than one binary block's group pattern, fewer rows than a block
    with sessions() as session:
        job_id, ids = _job(session, n + 100)
        train, val = ids[:n], ids[n:]
        harm = rng.normal(size=n)
        loss = rng.gamma(2.0, size=n)
        harm[[3, 17]] = np.nan
        loss[[17, 40]] = np.inf
        loss[41] = -np.inf
        replace_scores(session, job_id, train, val, {"harm": harm, "loss": loss})
        session.commit()
        stored = _rows(session, job_id)
    assert len(stored) == n + 100
    assert all(stored[p] == ("val", None, None) for p in val)
    for k, pair in enumerate(train):
        split, h, lo = stored[pair]
        assert split == "train"
        assert h == (None if k in (3, 17) else pytest.approx(harm[k], abs=0, rel=1e-15))
        assert lo == (None if k in (17, 40, 41) else pytest.approx(loss[k], abs=0, rel=1e-15))


def test_a_rerun_replaces_the_rows_and_shards_add_to_them(sessions) -> None:
    from backend.storage.scores import ensure_partition, replace_scores
    from worker.jobs.store import upsert_scores

    with sessions() as session:
        job_id, ids = _job(session, 50)
        replace_scores(session, job_id, ids[:40], ids[40:], {"harm": np.arange(40.0)})
        session.commit()
        replace_scores(session, job_id, ids[:30], ids[30:], {"harm": -np.arange(30.0)})
        session.commit()
        stored = _rows(session, job_id)
        assert len(stored) == 50
        assert stored[ids[29]] == ("train", -29.0, None)
        assert stored[ids[35]][0] == "val"
        # A shard-at-a-time writer on a job with a partition, and on one without.
        ensure_partition(session, job_id)  # already there: nothing happens
        upsert_scores(session, job_id, np.array(ids[:2]), "train", {"harm": np.array([7.0, 8.0])})
        other, other_ids = _job(session, 5)
        upsert_scores(session, other, np.array(other_ids), "train", {"harm": np.ones(5)})
        session.commit()
        assert _rows(session, job_id)[ids[1]] == ("train", 8.0, None)
        assert len(_rows(session, job_id)) == 50
        assert len(_rows(session, other)) == 5


def test_on_postgres_each_job_has_its_own_partition_which_goes_with_it(database) -> None:
    from backend.db import get_sessionmaker
    from backend.models import Job
    from backend.services.scores import drop_partitions
    from backend.storage.scores import partition_name, replace_scores

    sessions = get_sessionmaker()
    with sessions() as session:
        job_id, ids = _job(session, 20)
        replace_scores(session, job_id, ids[:15], ids[15:], {"harm": np.ones(15)})
        session.commit()
        name = partition_name(job_id)
        parent = session.scalar(
            text(
                "SELECT p.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent WHERE c.relname = :n"
            ),
            {"n": name},
        )
        assert parent == "scores"
        # The planner knows the new partition's size at once (ANALYZE after the load).
        assert (
            session.scalar(text("SELECT reltuples FROM pg_class WHERE relname = :n"), {"n": name})
            == 20
        )
        # A row of a job without a partition fails loudly; no default partition catches it.
        with pytest.raises(Exception, match="no partition"):
            session.execute(
                text("INSERT INTO scores (job_id, pair_id, split) VALUES (:j, :p, 'val')"),
                {"j": job_id + 10_000, "p": ids[0]},
            )
        session.rollback()
        session.delete(session.get(Job, job_id))
        session.commit()
        assert drop_partitions(session, [job_id]) == 1
        assert session.scalar(text("SELECT to_regclass(:n)"), {"n": name}) is None
        assert drop_partitions(session) == 0  # nothing orphaned is left


def test_concurrent_shards_of_one_job_create_its_partition_once(database) -> None:
    from backend.db import get_sessionmaker
    from worker.jobs.store import upsert_scores

    sessions = get_sessionmaker()
    with sessions() as session:
        job_id, ids = _job(session, 40)
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def shard(k: int) -> None:
        try:
            with sessions() as session:
                start.wait()
                part = np.array(ids[k * 10 : (k + 1) * 10])
                upsert_scores(session, job_id, part, "train", {"harm": np.full(10, float(k))})
                session.commit()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=shard, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with sessions() as session:
        stored = _rows(session, job_id)
    assert sorted(stored) == ids and {v[1] for v in stored.values()} == {0.0, 1.0, 2.0, 3.0}
