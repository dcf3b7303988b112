"""The ETA against the truth: real head-mode audits and verify jobs on the tiny model, run by a
real worker, their `eta_seconds` sampled through the API while they run and compared, once each
has finished, with the time that was really left (issue 22: within a factor of 2 after 20%).

Each kind runs three times: a first job on the fresh worker (its ETA stays unknown until its
last stage: nothing measured could say it), a recorded job that gives this deployment's stage
rates, then a timed one whose ETAs are checked."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from tests.factories import API, hh_records, jsonl_bytes, upload

FINISHED = ("succeeded", "failed", "cancelled")
FEW_SECONDS = 10.0
"""Under this the UI shows "a few seconds" (JobProgress.formatEta), not a number: that is right
while the job has under twice as long left."""


def _right(shown: float, left: float) -> bool:
    """Whether an ETA, as the UI shows it, is within a factor of 2 of the time really left."""
    if shown < FEW_SECONDS:
        return left < 2 * FEW_SECONDS
    return left / 2 <= shown <= 2 * left


def _sampled(client, headers: dict, job_id: int) -> tuple[dict, list[tuple[float, float, float]]]:
    """Poll the job until it finishes: (the final job, [(wall time, progress, eta_seconds)] of
    every sample taken while it ran; eta_seconds None where it showed "estimating")."""
    samples: list[tuple[float, float, float | None]] = []
    while True:
        job = client.get(f"{API}/jobs/{job_id}", headers=headers).json()
        if job["status"] in FINISHED:
            return job, samples
        if job["status"] == "running":
            samples.append((time.time(), job["progress"], job["eta_seconds"]))
        time.sleep(0.2)


def _true_left(job: dict, samples: list) -> list[tuple[float, float, float]]:
    """(progress, ETA shown, seconds really left) of every sample that showed an ETA."""
    assert job["status"] == "succeeded", job["error"]
    end = datetime.fromisoformat(job["finished_at"].replace("Z", "+00:00")).timestamp()
    return [(p, eta, end - t) for t, p, eta in samples if eta is not None]


def _report(name: str, rows: list[tuple[float, float, float]]) -> None:
    print(f"\n{name}: progress, ETA shown (s), true remaining (s), ratio")
    for progress, shown, left in rows:
        print(f"  {progress:6.1%}  {shown:7.1f}  {left:7.1f}  {shown / max(left, 1e-9):5.2f}")
    late = sorted(shown / left for p, shown, left in rows if p >= 0.2 and left >= 2 * FEW_SECONDS)
    if late:
        print(
            f"  after 20%, {FEW_SECONDS * 2:.0f}+ s left: {len(late)} samples, ETA / truth "
            f"min {late[0]:.2f}, median {late[len(late) // 2]:.2f}, max {late[-1]:.2f}"
        )


def _misses(name: str, rows: list[tuple[float, float, float]]) -> list[str]:
    """What is wrong with a timed job's ETAs (after 20% progress: at least 5 shown, each within
    a factor of 2 of the truth as the UI shows it), after printing them all."""
    _report(name, rows)
    late = [(p, shown, left) for p, shown, left in rows if p >= 0.2]
    if len(late) < 5:
        return [f"{name}: only {len(late)} ETAs shown after 20% progress"]
    wrong = [
        (round(p, 3), shown, round(left, 1)) for p, shown, left in late if not _right(shown, left)
    ]
    return (
        [f"{name}: {len(wrong)} of {len(late)} ETAs off by more than 2×: {wrong}"] if wrong else []
    )


def _launch(client, headers: dict, dataset_id: int, body: dict) -> int:
    response = client.post(f"{API}/datasets/{dataset_id}/jobs", headers=headers, json=body)
    assert response.status_code == 202, response.text
    return response.json()["id"]


SIZES = {"first": 80, "recorded": 500, "timed": 500}
"""The first jobs run on a fresh worker (one-time costs: their timing is marked cold), the
recorded ones give this deployment's stage rates, the timed ones are checked against them. The
timed jobs have the recorded size: the head fit does not scale with the pairs (on this machine,
21–36 s for 200 and 400 pairs alike), so a size other than the recorded one tests the per-pair
scaling, not the measurement; 500 pairs make the jobs long enough (~30 s) for ETAs in seconds
to be meaningful."""


# Timed against real jobs: a speed check, so it runs with `make test-long`, not in `make test`.
@pytest.mark.long
def test_eta_within_a_factor_of_two_of_the_truth(client, make_user, celery_worker_process) -> None:
    headers = make_user()["headers"]
    audit_body = {"model": "tiny", "mode": "head", "methods": ["loss", "influence", "length"]}
    audits, verifies = {}, {}
    for name, n in SIZES.items():
        dataset = upload(client, headers, jsonl_bytes(hh_records(n)), f"hh-{n}.jsonl").json()
        audit_id = _launch(client, headers, dataset["id"], audit_body)
        audits[name] = _sampled(client, headers, audit_id)
        body = {"kind": "verify", "audit_job_id": audit_id, "seeds": 3}
        verifies[name] = _sampled(client, headers, _launch(client, headers, dataset["id"], body))

    # The first job of its kind has no recorded rates: no ETA until its last stage (an ETA from
    # the features alone would leave out the rest of the job).
    for job, samples in (audits["first"], verifies["first"]):
        assert job["status"] == "succeeded", job["error"]
        early = [eta for _, p, eta in samples if p < 0.5]
        assert early and all(eta is None for eta in early), samples
    for name in ("first", "recorded"):
        _report(f"{name} head audit ({SIZES[name]} pairs)", _true_left(*audits[name]))
        _report(f"{name} verify ({SIZES[name]} pairs)", _true_left(*verifies[name]))
    misses = _misses(f"timed head audit ({SIZES['timed']} pairs)", _true_left(*audits["timed"]))
    misses += _misses(
        f"timed verify ({SIZES['timed']} pairs, 3 seeds)", _true_left(*verifies["timed"])
    )
    assert not misses, misses


def _timing(history: dict[str, float] | None) -> dict:
    from backend.storage import eta

    return eta.new_timing(
        key="features/head/tiny/cpu",
        order=["features", "head"],
        steady=["features"],
        units={"features": 100.0, "head": 100.0},
        history=history,
    )


def test_eta_from_the_stage_rate_and_the_recorded_rates_of_later_stages() -> None:
    from backend.storage import eta

    # No job of the key has finished: no ETA before the last stage, whatever was measured.
    timing = _timing(None)
    for t, f in ((0.0, 0.0), (1.0, 0.1), (5.0, 0.5)):
        eta.record(timing, "features", f, t)
    assert eta.eta_seconds(timing, 5.0) is None
    # Recorded rates: 0.1 s per pair of features, 0.2 s per pair of head. This job's features go
    # at their own measured rate (0.4 of the stage in 4 s: 5 s left, 10 s in all, as recorded:
    # pace 1), so the head adds its recorded 20 s.
    timing = _timing({"features": 0.1, "head": 0.2})
    for t, f in ((0.0, 0.0), (1.0, 0.1), (5.0, 0.5)):
        eta.record(timing, "features", f, t)
    assert eta.eta_seconds(timing, 5.0) == 25.0
    # Seconds later with no new measurement the figure counts down.
    assert eta.eta_seconds(timing, 7.0) == 23.0
    # The head stage has no rate of its own: its recorded time, scaled by this job's pace (its
    # features took 20 s, twice the recorded 10 s), counts down from its start.
    timing = _timing({"features": 0.1, "head": 0.2})
    eta.record(timing, "features", 0.0, 0.0)
    eta.record(timing, "features", 0.1, 1.0)
    eta.record(timing, "features", 1.0, 20.0)
    eta.record(timing, "head", 0.0, 20.0)
    assert eta.eta_seconds(timing, 30.0) == 2 * 20.0 - 10.0


def test_recorded_rates_prefer_warm_jobs(client, make_user) -> None:
    """A job its worker ran first paid one-time costs; warm jobs of the key say the rate."""
    from backend.db import session_scope
    from backend.models import Job, User, utcnow
    from backend.storage import eta

    user = make_user()
    dataset = upload(client, user["headers"], jsonl_bytes(hh_records(20)), "hh-20.jsonl").json()
    key = f"features/head/tiny/test-{dataset['id']}"

    def finished(seconds: float, cold: bool) -> dict:
        timing = _timing(None) | {"key": key}
        eta.record(timing, "features", 0.0, 0.0)
        eta.record(timing, "head", 0.0, seconds)
        return eta.finish(timing, seconds * 1.5) | {"cold": cold}

    with session_scope() as session:
        owner_id = session.query(User.id).filter(User.username == user["username"]).scalar()
        for seconds, cold in ((90.0, True), (10.0, False), (12.0, False)):
            session.add(
                Job(
                    dataset_id=dataset["id"],
                    owner_id=owner_id,
                    kind="audit",
                    config={},
                    status="succeeded",
                    timing=finished(seconds, cold),
                    finished_at=utcnow(),
                )
            )
        session.flush()
        rates = eta.stage_rates(session, "audit", key)
    assert rates is not None
    # The warm jobs' median: features 11 s and head 5.5 s over 100 pairs; the cold job's 90 s
    # is left out.
    assert rates["features"] == pytest.approx(0.11) and rates["head"] == pytest.approx(0.055)
