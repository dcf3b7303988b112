"""The review at a million pairs, as a reviewer meets it: a real `prefaudit serve` (uvicorn) on a
loopback socket, an HTTP client like the UI's (httpx, a token, one keep-alive connection).

    python -m bench.review_scale                  # 1,000,000 pairs (data built once, ~1 hour)
    python -m bench.review_scale --pairs 100000   # a quicker look
    python -m bench.review_scale --rebuild        # build the data again

DATABASE_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/bench_review, created if
missing and migrated to head; the data is built once, bench/lib/review_data.py, and reused).
What it measures, with 30 requests each after a first (cold) one, p50/p95:
- every sort the pairs list offers (row, length, every score column of the registry), the first
  page and 200 cursors deep, with EXPLAIN ANALYZE of the page's statements (captured from the
  real code) saying which index the rows come from and whether they are sorted;
- a text search for a word with 1 hit, one with ~400 and one with ~400,000, sorted by harm and
  by loss, first page and 200 cursors deep (or the last page);
- a bulk flag of the 100,000 most harmful pairs (dry run, flag, undo), then a combined filter
  (harm percentile range + length range + unreviewed) and the totals against the exact counts,
  with the server's exact-count budget as configured and with it at 1 ms (estimates);
- exports of every pair in JSONL, CSV and Parquet over the socket, with the server's RSS growth.
The machine's load average is recorded beside each part (2 cores shared with other jobs).
Results: bench/results/review_scale.json and .md (at 1,000,000 pairs; other sizes get a suffix).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

from bench.lib import review_data
from bench.lib.paths import RESULTS
from bench.lib.report import write_json
from bench.lib.review_http import (
    DEEP,
    PAGE,
    Client,
    cursor_at,
    explain_page,
    http_exports,
    load,
    timed,
)
from bench.lib.review_report import markdown
from bench.lib.stack import api_server, create_database

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_review"
PAGE_P95_MS = 50.0
BULK = 100_000
TARGETS = {
    "page_p95_ms": PAGE_P95_MS,
    "export_s": {"jsonl": 30.0, "csv": 45.0, "parquet": 30.0},
    "export_rss_mb": 100.0,
    "bulk_flag_s": 5.0,
    "bulk_dry_run_s": 0.5,
    "estimate_tolerance": 0.2,
}


def _pairs_path(dataset_id: int) -> str:
    return f"/datasets/{dataset_id}/pairs"


def _getter(client: Client, path: str, params: dict) -> Callable[[], dict]:
    return lambda: client.get(path, **params)


def _walk(client: Client, path: str, params: dict, pages: int) -> dict:
    """The params of the page `pages` cursors on (walked through the API), or of the last page."""
    current = dict(params)
    for _ in range(pages):
        body = client.get(path, **current)
        if not body["next_cursor"]:
            break
        current = {**params, "cursor": body["next_cursor"]}
    return current


def measure_sorts(client: Client, sessions: Any, built: Any, repeat: int) -> dict[str, Any]:
    """Every sort key the list offers: first page and 200 cursors deep, with its plan."""
    from backend.services.query import SORT_KEYS

    path = _pairs_path(built.dataset_id)
    out: dict[str, Any] = {}
    for key in SORT_KEYS:
        sort = key if key == "index" else f"-{key}"
        base = {"job_id": built.job_id, "sort": sort, "limit": PAGE}
        deep_cursor = cursor_at(sessions, built.job_id, sort, PAGE * DEEP)
        row: dict[str, Any] = {"load": load()}
        row["plan"] = explain_page(
            sessions, built.dataset_id, {"job_id": built.job_id}, sort, deep_cursor
        )
        # A sort the database has no index for (a column whose migration lacks it) sorts the
        # job's rows on every page: a few requests show it.
        times = 3 if row["plan"]["sorts"] else repeat
        row["repeat"] = times
        row["first"] = timed(_getter(client, path, base), times)
        if deep_cursor is not None:
            deep = {**base, "cursor": deep_cursor}
            body = client.get(path, **deep)
            assert body["items"][0]["rank"] == PAGE * DEEP + 1, body["items"][0]["rank"]
            row["deep"] = timed(_getter(client, path, deep), times)
        out[sort] = row
        print(f"  sort {sort}: {row}", flush=True)
    return out


def _hits(sessions: Any, built: Any, word: str) -> int:
    """Training pairs matching `word` (the plain query)."""
    from sqlalchemy import text

    with sessions() as session:
        return int(
            session.scalar(
                text(
                    "SELECT count(*) FROM scores s WHERE s.job_id = :j AND s.split = 'train' "
                    "AND s.pair_id IN (SELECT pair_id FROM pair_search WHERE dataset_id = :d "
                    "AND tsv @@ plainto_tsquery('simple', :q))"
                ),
                {"j": built.job_id, "d": built.dataset_id, "q": word},
            )
            or 0
        )


def measure_search(
    client: Client, sessions: Any, built: Any, n: int, repeat: int
) -> dict[str, Any]:
    """Rare, medium and common words, sorted by harm and by loss, first page and deep."""
    path = _pairs_path(built.dataset_id)
    words = {
        "rare": str(review_data.rare_index(n)),
        "medium": review_data.MEDIUM_WORD,
        "common": review_data.COMMON_WORD,
    }
    out: dict[str, Any] = {}
    for kind, word in words.items():
        hits = _hits(sessions, built, word)
        for sort in ("-harm", "-loss"):
            base = {"job_id": built.job_id, "sort": sort, "limit": PAGE, "q": word}
            row: dict[str, Any] = {"word": word, "hits": hits, "load": load()}
            first = client.get(path, **base)
            row["total"], row["total_is_estimate"] = first["total"], first["total_is_estimate"]
            row["first"] = timed(_getter(client, path, base), repeat)
            if first["next_cursor"]:
                deep = _walk(client, path, base, DEEP)
                row["deep_rank"] = client.get(path, **deep)["items"][0]["rank"]
                row["deep"] = timed(_getter(client, path, deep), repeat)
            row["plan"] = explain_page(
                sessions, built.dataset_id, {"job_id": built.job_id, "q": word}, sort, None
            )
            out[f"{kind} {sort}"] = row
            print(f"  search {kind} {sort}: {row}", flush=True)
    return out


def _truths(sessions: Any, built: Any, lo_pct: float, hi_pct: float) -> dict[str, int]:
    """Exact counts of the totals the bench checks, in SQL."""
    from sqlalchemy import text

    from backend.models import Job
    from backend.storage.stats import ensure_stats, value_at

    with sessions() as session:
        stat = ensure_stats(session, session.get(Job, built.job_id))["harm"]
        lo, hi = value_at(stat, lo_pct), value_at(stat, hi_pct)
        train = (
            "FROM scores s JOIN pairs p ON p.id = s.pair_id LEFT JOIN flags f ON f.pair_id = p.id "
            "WHERE s.job_id = :j AND s.split = 'train' "
        )
        counts = {
            "flagged": f"{train} AND f.state = 'flagged'",
            "not flagged": f"{train} AND (f.id IS NULL OR f.state <> 'flagged')",
            "combined": f"{train} AND s.harm >= :lo AND s.harm <= :hi AND s.harm IS NOT NULL "
            "AND p.prompt_chars + p.chosen_chars + p.rejected_chars BETWEEN 300 AND 900 "
            "AND (f.id IS NULL OR f.state = 'unreviewed')",
        }
        params = {"j": built.job_id, "lo": lo, "hi": hi}
        return {
            k: int(session.scalar(text(f"SELECT count(*) {sql}"), params) or 0)
            for k, sql in counts.items()
        }


COMBINED = {"percentile": "harm:50:95", "length": "total:300:900", "state": "unreviewed"}
TOTALS = {
    "flagged": {"flagged": "true"},
    "not flagged": {"flagged": "false"},
    "combined": COMBINED,
}


def measure_totals(client: Client, built: Any, truths: dict[str, int]) -> dict[str, Any]:
    """Each checked total as the list reports it (first request, uncached) against the truth."""
    path = _pairs_path(built.dataset_id)
    out: dict[str, Any] = {}
    for name, params in TOTALS.items():
        start = time.perf_counter()
        body = client.get(path, job_id=built.job_id, sort="-harm", limit=1, **params)
        seconds = time.perf_counter() - start
        truth = truths[name]
        error = abs(body["total"] - truth) / max(truth, 1)
        out[name] = {
            "total": body["total"],
            "estimate": body["total_is_estimate"],
            "truth": truth,
            "error": error,
            "first_ms": 1000 * seconds,
            "ok": (error <= TARGETS["estimate_tolerance"])
            if body["total_is_estimate"]
            else error == 0,
        }
    print(f"  totals: {out}", flush=True)
    return out


def measure_bulk(
    client: Client, built: Any, n_train: int, repeat: int, with_pages: bool = True
) -> dict[str, Any]:
    """Dry run and flag of the 100,000 most harmful pairs, then the combined filter's pages."""
    path = f"/datasets/{built.dataset_id}/review"
    share = 100 * (1 - min(BULK, n_train // 9) / n_train)
    body = {
        "action": "flag",
        "filter": {"job_id": built.job_id, "percentiles": [{"column": "harm", "min": share}]},
    }
    dry = [client.post(path, {**body, "dry_run": True})[1] for _ in range(5)]
    flagged, flag_s = client.post(path, body)
    out: dict[str, Any] = {
        "load": load(),
        "matched": flagged["matched"],
        "changed": flagged["changed"],
        "dry_run_s": sorted(dry)[len(dry) // 2],
        "dry_run_max_s": max(dry),
        "flag_s": flag_s,
    }
    print(f"  bulk: {out}", flush=True)
    if not with_pages:
        return out
    pages = _pairs_path(built.dataset_id)
    base = {"job_id": built.job_id, "sort": "-harm", "limit": PAGE, **COMBINED}
    out["combined_first"] = timed(lambda: client.get(pages, **base), repeat)
    deep = _walk(client, pages, base, DEEP)
    out["combined_deep_rank"] = client.get(pages, **deep)["items"][0]["rank"]
    out["combined_deep"] = timed(lambda: client.get(pages, **deep), repeat)
    print(f"  combined filter: {out}", flush=True)
    return out


def _token(sessions: Any, user_id: int) -> str:
    from backend.models import User
    from backend.services.users import issue_token

    with sessions() as session:
        token = issue_token(session, session.get(User, user_id), "review-scale")
        session.commit()
    return token


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--rebuild", action="store_true", help="build the data again")
    parser.add_argument("--skip-exports", action="store_true")
    parser.add_argument(
        "--skip-pages",
        action="store_true",
        help="only the bulk flag, the totals after it and the exports (results get a suffix)",
    )
    args = parser.parse_args()
    n = args.pairs
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    os.environ.update(
        DATABASE_URL=url,
        PREFAUDIT_DATA_DIR=os.environ.get("PREFAUDIT_DATA_DIR", "/tmp/prefaudit-review-scale"),
        PREFAUDIT_REAPER_INTERVAL_SECONDS="0",
    )
    os.environ.setdefault("BROKER_URL", "memory://")
    create_database(url)
    from alembic import command

    from backend.db import alembic_config, get_sessionmaker

    command.upgrade(alembic_config(), "head")
    sessions = get_sessionmaker()
    out: dict[str, Any] = {"pairs": n, "cpus": os.cpu_count(), "load_start": load()}
    built = review_data.build(n, args.rebuild)
    out["data"] = {"cached": built.cached, **built.build, "train_pairs": built.train_ids}
    token = _token(sessions, built.user_id)
    server_env = {"PREFAUDIT_REAPER_INTERVAL_SECONDS": "0"}
    with api_server(server_env) as (base, process):
        client = Client(base, token)
        if not args.skip_pages:
            out["sorts"] = measure_sorts(client, sessions, built, args.repeat)
            out["search"] = measure_search(client, sessions, built, n, args.repeat)
        out["bulk"] = measure_bulk(
            client, built, built.train_ids, args.repeat, with_pages=not args.skip_pages
        )
        truths = _truths(sessions, built, 50, 95)
        out["totals"] = measure_totals(client, built, truths)
        if not args.skip_exports:
            out["exports"] = http_exports(
                client, process, built.dataset_id, ("jsonl", "csv", "parquet")
            )
    # A server whose exact counts never fit their budget: every total above 10,000 estimated.
    with api_server({**server_env, "PREFAUDIT_EXACT_COUNT_MS": "1"}) as (base, _):
        client = Client(base, token)
        out["totals_estimated"] = measure_totals(client, built, truths)
        undone, undo_s = client.post(f"/datasets/{built.dataset_id}/review/undo")
        out["bulk"]["undo_s"], out["bulk"]["undo_changed"] = undo_s, undone["changed"]
    out["load_end"] = load()
    stem = "review_scale" if n == 1_000_000 else f"review_scale-{n}"
    if args.skip_pages:
        stem += "-totals-exports"
    write_json(RESULTS / f"{stem}.json", out)
    (RESULTS / f"{stem}.md").write_text(markdown(out, TARGETS))
    print(markdown(out, TARGETS))


if __name__ == "__main__":
    main()
