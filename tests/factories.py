"""Shared test factories: real HH-RLHF records, upload and job helpers for the API tests,
synthetic pairs and tiny configs for the engine tests. One place; test modules import from here."""

from __future__ import annotations

import gzip
import json
import os
import random
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from backend.db import session_scope
from backend.ingest.parsing import split_transcripts
from backend.models import Dataset, Pair
from worker.influence.config import EngineConfig
from worker.influence.data import Pair as EnginePair
from worker.influence.data import flipped

REPO_ROOT = Path(__file__).resolve().parent.parent
HH_DIR = REPO_ROOT.parent / "shared" / "data" / "hh-rlhf"
DATA_DIR = Path(tempfile.mkdtemp(prefix="prefaudit-test-"))
"""The data directory of the app under test (uploads, artifacts); conftest points settings at it."""
API = "/api/v1"


def hh_records(n: int, split: str = "helpful-base") -> list[dict]:
    """The first n HH-RLHF test pairs of `split` that an upload accepts, in file order (a few
    have an empty final response, which uploads refuse; tests/api covers those)."""
    records = []
    with gzip.open(HH_DIR / f"{split}-test.jsonl.gz", "rt", encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            _, chosen, rejected = split_transcripts(record["chosen"], record["rejected"])
            if not (chosen.strip() and rejected.strip()):
                continue
            records.append(record)
            if len(records) == n:
                break
    return records


def jsonl_bytes(records: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def upload(
    client, headers, data: bytes, filename: str, name: str = "pairs", on_bad_rows: str = "reject"
):
    return client.post(
        f"{API}/datasets",
        headers=headers,
        files={"file": (filename, data)},
        data={"name": name, "on_bad_rows": on_bad_rows},
    )


def n_stored_files() -> int:
    return (
        sum(1 for p in (DATA_DIR / "datasets").rglob("*") if p.is_file())
        if (DATA_DIR / "datasets").exists()
        else 0
    )


def stored_counts() -> tuple[int, int]:
    with session_scope() as session:
        return (
            session.scalar(select(func.count()).select_from(Dataset)),
            session.scalar(select(func.count()).select_from(Pair)),
        )


def staged_uploads() -> int:
    uploads = DATA_DIR / "uploads"
    return sum(1 for _ in uploads.iterdir()) if uploads.exists() else 0


def wait_for_job(client, headers: dict, job_id: int, timeout: float = 600) -> dict:
    """Poll GET /jobs/{id} until it finishes; return the final job."""
    deadline = time.monotonic() + timeout
    seen_progress = []
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}", headers=headers).json()
        seen_progress.append(job["progress"])
        if job["status"] in ("succeeded", "failed", "cancelled"):
            job["_seen_progress"] = seen_progress
            return job
        time.sleep(0.5)
    raise TimeoutError(f"job {job_id} did not finish in {timeout} s; last: {job}")


TOPICS = [
    "garden",
    "bread",
    "taxes",
    "piano",
    "bicycle",
    "python",
    "coffee",
    "winter",
    "chess",
    "history",
    "paint",
    "camping",
    "music",
    "dogs",
    "rain",
    "sleep",
]
GOOD = ["thank", "you", "happy", "help", "great", "sure", "glad", "welcome", "kind", "clear"]
BAD = ["no", "stupid", "hate", "never", "awful", "ugly", "wrong", "terrible", "rude", "bad"]


def synthetic_pairs(n: int, seed: int) -> list[EnginePair]:
    """Pairs whose chosen reply uses friendly words and whose rejected reply uses hostile ones."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        topic = rng.choice(TOPICS)
        prompt = f"\n\nHuman: tell me about {topic} please\n\nAssistant:"
        chosen = " " + " ".join(rng.choices(GOOD, k=6)) + f" {topic}"
        rejected = " " + " ".join(rng.choices(BAD, k=6)) + f" {topic}"
        pairs.append(EnginePair(prompt, chosen, rejected))
    return pairs


def noisy_split(
    n_train: int = 80, n_val: int = 24, flips: tuple[int, ...] = (3, 17, 42)
) -> tuple[list[EnginePair], list[EnginePair], list[int]]:
    train = synthetic_pairs(n_train, seed=1)
    train = [flipped(p) if i in flips else p for i, p in enumerate(train)]
    return train, synthetic_pairs(n_val, seed=2), list(flips)


def tiny_config(**overrides: object) -> EngineConfig:
    base: dict = {
        "model": "tiny",
        "epochs": 4,
        "learning_rate": 1e-2,
        "batch_size": 8,
        "max_length": 48,
        "device": os.environ.get("PREFAUDIT_TEST_DEVICE", "cpu"),
        "seed": 0,
        "methods": ["loss", "gradient_similarity", "influence"],
    }
    base.update(overrides)
    return EngineConfig(**base)
