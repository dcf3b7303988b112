"""The review at a million pairs, on Postgres on this machine (issue 12's bench).

    python -m bench.review_scale                 # 1,000,000 pairs (about 10 minutes)
    python -m bench.review_scale --pairs 100000  # a quicker look

DATABASE_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/bench_review, created if
missing, its schema dropped and rebuilt). What it measures, each through the real code:
- ingest: `backend.services.ingest.ingest` of a generated JSONL file (HH-RLHF helpful-base test
  texts cycled, each pair made unique by its number), COPY on Postgres: pairs/s and RSS growth;
- scores: the worker's score writer (`worker.jobs.store.save_scores`) of one audit's scores
  for every pair (COPY), then the score statistics the review reads: rows/s;
- the pairs page through the HTTP API (FastAPI TestClient, in process), 20 requests each, p50 and
  p95: sort by harm and by gradient similarity at the first page, page 10,000 and the last page
  (cursors as the API hands them out at that depth), and with a text search or a score range;
- a filtered count, the histogram, a dry run and a bulk flag of a 100k-pair filter and its undo;
- a JSONL export of every pair (the streaming generator the export route returns, bytes
  counted, not kept): seconds and peak RSS growth; and a 10k-pair dataset's export with none and
  with 500,000 flags of another dataset in the table (the ratio);
- the export over HTTP, as a user downloads it: a real `prefaudit serve` (uvicorn) on a loopback
  socket, every pair in JSONL, CSV and Parquet, streamed by a client that counts the bytes:
  seconds, MiB/s and the server's peak RSS growth.
Results: bench/results/review/scale-<n>.json and a table in scale-<n>.md.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.lib.hh import transcripts
from bench.lib.measure import PeakRss, timed
from bench.lib.paths import HH_HELPFUL_TEST
from bench.lib.paths import RESULTS as RESULTS_ROOT
from bench.lib.report import write_json
from bench.lib.stack import api_server, reset_database

RESULTS = RESULTS_ROOT / "review"
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_review"


def _write_pairs(path: Path, n: int) -> None:
    base = []
    for prompt, chosen, rejected in transcripts(HH_HELPFUL_TEST):
        if chosen.strip() and rejected.strip():
            base.append((prompt[-400:], chosen[:400], rejected[:400]))
    with path.open("w") as out:
        for i in range(n):
            prompt, chosen, rejected = base[i % len(base)]
            out.write(
                json.dumps(
                    {
                        "prompt": f"{prompt} [{i}]",
                        "chosen": chosen,
                        "rejected": rejected,
                        "source": "odd" if i % 2 else "even",
                    }
                )
                + "\n"
            )


def http_exports(dataset_id: int, token: str, formats: tuple[str, ...]) -> dict[str, Any]:
    """Each format's full export through a real server over a socket: seconds, MiB, MiB/s and
    the server process's peak RSS growth while it streams."""
    env = {"PREFAUDIT_REAPER_INTERVAL_SECONDS": "0"}
    with api_server(env) as (base, process):
        out: dict[str, Any] = {}
        for fmt in formats:
            url = f"{base}/datasets/{dataset_id}/export?format={fmt}&exclude_flagged=false"
            request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
            rss = process.memory_info().rss
            peak = rss
            size = 0
            start = time.perf_counter()
            with urllib.request.urlopen(request, timeout=600) as response:
                while block := response.read(1 << 20):
                    size += len(block)
                    peak = max(peak, process.memory_info().rss)
            seconds = time.perf_counter() - start
            out[fmt] = {
                "seconds": seconds,
                "mib": size / 2**20,
                "mib_per_s": size / 2**20 / seconds,
                "server_rss_growth_mb": (peak - rss) / 2**20,
            }
            print(f"  HTTP export {fmt}: {out[fmt]}", flush=True)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument(
        "--exports-only",
        action="store_true",
        help="after the ingest, measure only the exports over HTTP (no scores, pages or bulk)",
    )
    args = parser.parse_args()
    n = args.pairs
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    os.environ["DATABASE_URL"] = url
    data_dir = Path(tempfile.mkdtemp(prefix="prefaudit-review-bench-"))
    os.environ["PREFAUDIT_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("BROKER_URL", "memory://")
    os.environ["PREFAUDIT_REAPER_INTERVAL_SECONDS"] = "0"
    reset_database(url)

    # Imported only now: the backend's settings read the environment set above when first imported.
    import numpy as np
    from alembic import command
    from fastapi.testclient import TestClient
    from sqlalchemy import func, select, text

    from backend.db import alembic_config, get_sessionmaker
    from backend.main import create_app
    from backend.models import Dataset, Job, Pair, Score
    from backend.services import export, search
    from backend.services.ingest import ingest
    from backend.services.query import Cursor
    from backend.services.users import create_user, issue_token
    from backend.settings import get_settings
    from worker.jobs.store import save_scores

    command.upgrade(alembic_config(), "head")
    sessions = get_sessionmaker()
    settings = get_settings()
    out: dict[str, Any] = {"pairs": n, "database": "postgres (this machine)"}

    source = data_dir / "pairs.jsonl"
    _write_pairs(source, n)
    with sessions() as session:
        user = create_user(session, "bench", "bench-password")
        token = issue_token(session, user, "bench")
        session.commit()
        print(f"ingesting {n:,} pairs ({source.stat().st_size / 2**20:.0f} MiB)", flush=True)
        with source.open("rb") as stream, PeakRss() as rss:
            start = time.perf_counter()
            dataset, _ = ingest(session, settings, user, "big", "pairs.jsonl", stream, "reject")
            seconds = time.perf_counter() - start
        out["ingest"] = {
            "seconds": seconds,
            "pairs_per_s": n / seconds,
            "rss_growth_mb": rss.growth_mb,
        }
        print(f"  {out['ingest']}", flush=True)
        dataset_id = dataset.id
        if args.exports_only:
            out["export_http"] = http_exports(dataset_id, token, ("jsonl", "csv", "parquet"))
            write_json(RESULTS / f"export-http-{n}.json", out)
            return
        start = time.perf_counter()  # what the upload's background task does after the response
        indexed = search.build(session, dataset_id)
        out["search_index"] = {"pairs": indexed, "seconds": time.perf_counter() - start}
        print(f"  search index {out['search_index']}", flush=True)
        ids = list(
            session.scalars(
                select(Pair.id).where(Pair.dataset_id == dataset_id).order_by(Pair.source_index)
            )
        )
        job = Job(
            dataset_id=dataset_id,
            owner_id=user.id,
            kind="audit",
            config={"model": "tiny", "methods": ["loss", "gradient_similarity"]},
            status="running",
        )
        session.add(job)
        session.commit()
        job_id = job.id

    rng = np.random.default_rng(0)
    n_val = n // 10
    train_ids, val_ids = ids[n_val:], ids[:n_val]
    scores = {
        "harm": rng.normal(size=len(train_ids)),
        "loss": rng.gamma(2.0, 0.4, size=len(train_ids)),
        "harm_gradient_similarity": rng.normal(size=len(train_ids)),
        "harm_length": rng.normal(size=len(train_ids)),
    }
    print("saving scores", flush=True)
    start = time.perf_counter()
    save_scores(sessions, job_id, train_ids, val_ids, scores, {"kind": "audit"})
    seconds = time.perf_counter() - start
    out["scores"] = {"rows": n, "seconds": seconds, "rows_per_s": n / seconds}
    print(f"  {out['scores']}", flush=True)
    with sessions() as session:
        session.execute(text("ANALYZE"))
        session.commit()

    client = TestClient(create_app())
    headers = {"Authorization": f"Bearer {token}"}
    base = f"/api/v1/datasets/{dataset_id}/pairs"

    def get(path: str, **params: Any) -> dict:
        response = client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text[:300]
        return response.json()

    def cursor_at(sort: str, rank: int, where: str = "") -> str:
        """The cursor the API hands out after `rank` rows of this sort (read once by offset)."""
        column = sort.lstrip("-")
        order = "DESC" if sort.startswith("-") else "ASC"
        with sessions() as session:
            value, pair_id = session.execute(
                text(
                    f"SELECT {column}, pair_id FROM scores WHERE job_id = :j AND split = 'train' "
                    f"AND {column} IS NOT NULL {where} ORDER BY {column} {order}, pair_id {order} "
                    "OFFSET :o LIMIT 1"
                ),
                {"j": job_id, "o": rank - 1},
            ).one()
        return Cursor(sort, float(value), int(pair_id), rank).encode()

    n_train = len(train_ids)
    pages: dict[str, Any] = {}
    for sort in ("-harm", "-harm_gradient_similarity"):
        for label, rank in (("first", 0), ("page 10,000", 50 * 9_999), ("last", n_train - 50)):
            if rank >= n_train:
                continue
            params: dict[str, Any] = {"job_id": job_id, "sort": sort, "limit": 50}
            if rank:
                params["cursor"] = cursor_at(sort, rank)
            body = get(base, **params)
            assert len(body["items"]) == 50 and body["items"][0]["rank"] == rank + 1
            pages[f"sort {sort}, {label}"] = timed(lambda p=params: get(base, **p), args.repeat)
            print(f"  {sort} {label}: {pages[f'sort {sort}, {label}']}", flush=True)
    word = "recipe"
    searched = get(base, job_id=job_id, sort="-harm", q=word, limit=50)
    hits = f"{searched['total']:,}{'~' if searched['total_is_estimate'] else ''}"
    pages[f"search {word!r} ({hits} hits), sort -harm, first"] = timed(
        lambda: get(base, job_id=job_id, sort="-harm", q=word, limit=50), args.repeat
    )
    lo, hi = float(np.quantile(scores["harm"], 0.5)), float(np.quantile(scores["harm"], 0.8))
    ranged = {
        "job_id": job_id,
        "sort": "-harm_gradient_similarity",
        "limit": 50,
        "score": f"harm:{lo}:{hi}",
    }
    body = get(base, **ranged)
    within = f"{body['total']:,}{'~' if body['total_is_estimate'] else ''}"
    pages[f"harm range (30%: {within}), sort -grad. sim., first"] = timed(
        lambda: get(base, **ranged), args.repeat
    )
    deep = dict(ranged)
    for _ in range(3):  # a few keyset steps in, as a reviewer paging on
        deep["cursor"] = get(base, **deep)["next_cursor"]
    pages["harm range, sort -grad. sim., page 4"] = timed(lambda: get(base, **deep), args.repeat)
    for key, value in pages.items():
        print(f"  {key}: {value}", flush=True)
    out["pages"] = pages

    narrow = {"job_id": job_id, "score": "harm:2.5:", "limit": 1}  # ~0.6% of pairs: an exact count
    out["count"] = {
        "filtered, exact (harm ≥ 2.5)": {
            "total": get(base, **narrow)["total"],
            **timed(lambda: get(base, **narrow), args.repeat),
        },
        "filtered, estimate above 10k (harm range)": {
            "total": get(base, **{**ranged, "limit": 1})["total"],
            **timed(lambda: get(base, **{**ranged, "limit": 1}), args.repeat),
        },
    }
    out["histogram"] = timed(
        lambda: client.get(f"/api/v1/jobs/{job_id}/histogram", headers=headers).raise_for_status(),
        args.repeat,
    )
    print(f"  count {out['count']}\n  histogram {out['histogram']}", flush=True)

    def top_share(k: int) -> dict:
        """A filter on the k most harmful training pairs (a percentile range)."""
        share = 100 * (1 - min(k, n_train) / n_train)
        return {"job_id": job_id, "percentiles": [{"column": "harm", "min": share}]}

    top = top_share(100_000)
    review = f"/api/v1/datasets/{dataset_id}/review"

    def post(path: str, body: dict | None = None) -> tuple[dict, float]:
        start = time.perf_counter()
        response = client.post(path, json=body, headers=headers)
        assert response.status_code == 200, response.text[:300]
        return response.json(), time.perf_counter() - start

    preview, preview_s = post(review, {"action": "flag", "filter": top, "dry_run": True})
    flagged, flag_s = post(review, {"action": "flag", "filter": top})
    undone, undo_s = post(f"{review}/undo")
    out["bulk"] = {
        "matched": flagged["matched"],
        "changed": flagged["changed"],
        "dry_run_s": preview_s,
        "flag_s": flag_s,
        "undo_s": undo_s,
        "undo_changed": undone["changed"],
    }
    print(f"  bulk {out['bulk']}", flush=True)

    with sessions() as session:
        dataset_row = session.get(Dataset, dataset_id)
        print("exporting JSONL", flush=True)
        with PeakRss() as rss:
            start = time.perf_counter()
            size = sum(
                len(chunk) for chunk in export.stream_export(session, dataset_row, "jsonl", True)
            )
            seconds = time.perf_counter() - start
        out["export_jsonl"] = {
            "seconds": seconds,
            "mib": size / 2**20,
            "rss_growth_mb": rss.growth_mb,
        }
        print(f"  {out['export_jsonl']}", flush=True)

    # A small dataset's export, with no flags in the table, then with 500,000 of another dataset.
    small_n = 10_000
    with sessions() as session:
        small = session.execute(
            text(
                "INSERT INTO datasets (owner_id, name, filename, format, schema_kind, n_pairs, "
                "n_skipped, sha256, original_path, created_at) SELECT owner_id, 'small', "
                "'small.jsonl', format, schema_kind, :k, 0, sha256, original_path, now() FROM "
                "datasets WHERE id = :d RETURNING id"
            ),
            {"k": small_n, "d": dataset_id},
        ).scalar_one()
        session.execute(
            text(
                "INSERT INTO pairs (dataset_id, source_index, file_row, prompt, chosen, rejected, "
                "metadata, prompt_chars, chosen_chars, rejected_chars) SELECT :s, source_index, "
                "file_row, prompt, chosen, rejected, metadata, prompt_chars, chosen_chars, "
                "rejected_chars FROM pairs "
                "WHERE dataset_id = :d AND source_index < :k"
            ),
            {"s": small, "d": dataset_id, "k": small_n},
        )
        session.commit()
        small_row = session.get(Dataset, small)

        def export_small() -> None:
            for _ in export.stream_export(session, small_row, "jsonl", True):
                pass

        without = timed(export_small, 5)
    post(review, {"action": "flag", "filter": top_share(500_000)})
    with sessions() as session:
        small_row = session.get(Dataset, small)
        n_flags = session.scalar(text("SELECT count(*) FROM flags WHERE state = 'flagged'"))

        def export_small_again() -> None:
            for _ in export.stream_export(session, small_row, "jsonl", True):
                pass

        with_flags = timed(export_small_again, 5)
    out["export_with_flags_elsewhere"] = {
        "pairs": small_n,
        "flags_elsewhere": n_flags,
        "without_ms": without["p50_ms"],
        "with_ms": with_flags["p50_ms"],
        "ratio": with_flags["p50_ms"] / without["p50_ms"],
    }
    print(f"  {out['export_with_flags_elsewhere']}", flush=True)
    with sessions() as session:
        out["score_rows"] = session.scalar(select(func.count()).select_from(Score))
    out["export_http"] = http_exports(dataset_id, token, ("jsonl", "csv", "parquet"))

    stem = f"scale-{n}"
    write_json(RESULTS / f"{stem}.json", out)
    (RESULTS / f"{stem}.md").write_text(_markdown(out))
    print(_markdown(out))


def _markdown(out: dict[str, Any]) -> str:
    n = out["pairs"]
    lines = [
        f"# The review at {n:,} pairs (Postgres on this machine, `python -m bench.review_scale"
        f"{'' if n == 1_000_000 else f' --pairs {n}'}`)",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| ingest (COPY) | {out['ingest']['pairs_per_s']:,.0f} pairs/s, "
        f"{out['ingest']['seconds']:.0f} s, RSS +{out['ingest']['rss_growth_mb']:.0f} MB "
        "| ≥ 20,000 pairs/s |",
        f"| search index, built after the upload | {out['search_index']['seconds']:.0f} s "
        f"({out['search_index']['pairs'] / out['search_index']['seconds']:,.0f} pairs/s) | – |",
        f"| scores saved (+ statistics) | {out['scores']['rows_per_s']:,.0f} rows/s "
        "| ≥ 50,000 rows/s |",
    ]
    for key, value in out["pages"].items():
        lines.append(
            f"| page: {key} | p50 {value['p50_ms']:.1f} ms, p95 {value['p95_ms']:.1f} ms "
            "| p95 ≤ 50 ms |"
        )
    for key, value in out["count"].items():
        lines.append(
            f"| count: {key}, total {value['total']:,} | p95 {value['p95_ms']:.1f} ms | ≤ 200 ms |"
        )
    h = out["histogram"]
    lines.append(f"| histogram | p95 {h['p95_ms']:.1f} ms | ≤ 200 ms |")
    b = out["bulk"]
    lines.append(
        f"| bulk flag of a {b['matched']:,}-pair filter | preview {b['dry_run_s']:.2f} s, flag "
        f"{b['flag_s']:.2f} s, undo {b['undo_s']:.2f} s | ≤ 5 s |"
    )
    e = out["export_jsonl"]
    lines.append(
        f"| JSONL export of {n:,} pairs | {e['seconds']:.1f} s ({e['mib']:.0f} MiB), RSS "
        f"+{e['rss_growth_mb']:.0f} MB | ≤ 40 s, ≤ 100 MB |"
    )
    for fmt, e in out.get("export_http", {}).items():
        target = {"jsonl": "≤ 30 s", "csv": "≤ 45 s", "parquet": "≤ 30 s"}[fmt]
        lines.append(
            f"| {fmt.upper()} export of {n:,} pairs over HTTP (a real server, loopback) | "
            f"{e['seconds']:.1f} s ({e['mib']:.0f} MiB, {e['mib_per_s']:.0f} MiB/s), server RSS "
            f"+{e['server_rss_growth_mb']:.0f} MB | {target}, ≤ 100 MB |"
        )
    f = out["export_with_flags_elsewhere"]
    lines.append(
        f"| export of {f['pairs']:,} pairs, {f['flags_elsewhere']:,} flags elsewhere vs none | "
        f"{f['with_ms']:.0f} ms vs {f['without_ms']:.0f} ms (×{f['ratio']:.2f}) | ≈ ×1 |"
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
