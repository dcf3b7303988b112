"""The review at a million pairs, as a reviewer meets it: a real `prefaudit serve` (uvicorn) on a
loopback socket, an HTTP client like the UI's (httpx, a token, one keep-alive connection).

    python -m bench.review_scale                           # every part, 1,000,000 pairs
    python -m bench.review_scale --only sorts,search       # some parts (results merged)
    python -m bench.review_scale --resume                  # the parts not in the results yet
    python -m bench.review_scale --pairs 100000            # a quicker look
    python -m bench.review_scale --rebuild                 # build the data again

DATABASE_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/bench_review, created if
missing and migrated to head; the data is built once, bench/lib/review_data.py, and reused).
The parts (`--only`, comma-separated; each writes the JSON and markdown as soon as it ends, with
the machine's load average sampled while it ran), 30 requests each after a first (cold) one,
p50/p95 at the client and the server's own time (its Server-Timing header) beside them:
- sorts: every sort the pairs list offers (row, length, every score column of the registry),
  the first page and 200 cursors deep, with EXPLAIN ANALYZE of the page's statements (captured
  from the real code) saying which index the rows come from and whether they are sorted;
- search: a word with 1 hit, one with ~400 and one with ~400,000, sorted by harm and by loss,
  first page and 200 cursors deep (or the last page);
- bulk: from no review state, a bulk flag of the 100,000 most harmful pairs (dry run, flag),
  its undo, and the flag again (left in place for the parts after it);
- filters: combined filters after that bulk flag (harm percentile range + length range +
  unreviewed; flagged; a word and a harm range), first page and 200 cursors deep; then the
  combined filter's first page right after each of 30 decisions on one of its pairs (the page
  the UI reads again after each: its total and review bitmap follow the action) and right after
  each decision's undo;
- totals: after the bulk flag, each total against the exact count, on a fresh server with the
  exact-count budget as configured and on one with it at 1 ms (estimates);
- exports: every pair in JSONL, CSV and Parquet over the socket, with the server's RSS growth.
filters and totals flag the 100,000 pairs first when no earlier bulk part left them flagged.
Results: bench/results/review_scale.json and .md (at 1,000,000 pairs; other sizes get a suffix).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import time
from collections.abc import Callable
from typing import Any

from bench.lib import review_data
from bench.lib.paths import REPO, RESULTS
from bench.lib.report import write_json
from bench.lib.review_http import (
    DEEP,
    PAGE,
    Client,
    LoadWatch,
    after_decisions,
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
PARTS = ("sorts", "search", "bulk", "filters", "totals", "exports")


def _pairs_path(dataset_id: int) -> str:
    return f"/datasets/{dataset_id}/pairs"


def _walk(client: Client, path: str, params: dict, pages: int) -> dict:
    """The params of the page `pages` cursors on (walked through the API), or of the last page."""
    current = dict(params)
    for _ in range(pages):
        body = client.get(path, **current)
        if not body["next_cursor"]:
            break
        current = {**params, "cursor": body["next_cursor"]}
    return current


def measure_sorts(
    client: Client, sessions: Any, built: Any, repeat: int, keys: list[str] | None = None
) -> dict[str, Any]:
    """Every sort key the list offers (or `keys`): first page and 200 cursors deep, with its
    plan."""
    from backend.services.query import SORT_KEYS

    path = _pairs_path(built.dataset_id)
    out: dict[str, Any] = {}
    for key in keys or SORT_KEYS:
        sort = key if key == "index" else f"-{key}"
        base = {"job_id": built.job_id, "sort": sort, "limit": PAGE}
        deep_cursor = cursor_at(sessions, built.job_id, sort, PAGE * DEEP)
        row: dict[str, Any] = {"load": load(), "commit": _commit()}
        row["plan"] = explain_page(
            sessions, built.dataset_id, {"job_id": built.job_id}, sort, deep_cursor
        )
        # A sort the database has no index for (a column whose migration lacks it) sorts the
        # job's rows on every page: a few requests show it.
        times = 3 if row["plan"]["sorts"] else repeat
        row["repeat"] = times
        row["first"] = timed(client, path, base, times)
        if deep_cursor is not None:
            deep = {**base, "cursor": deep_cursor}
            body = client.get(path, **deep)
            assert body["items"][0]["rank"] == PAGE * DEEP + 1, body["items"][0]["rank"]
            row["deep"] = timed(client, path, deep, times)
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


def _pages(client: Client, path: str, base: dict, repeat: int) -> dict[str, Any]:
    """First page and 200 cursors deep (or the last page) of a list: total and timings."""
    first = client.get(path, **base)
    row: dict[str, Any] = {"total": first["total"], "total_is_estimate": first["total_is_estimate"]}
    row["first"] = timed(client, path, base, repeat)
    if first["next_cursor"]:
        deep = _walk(client, path, base, DEEP)
        row["deep_rank"] = client.get(path, **deep)["items"][0]["rank"]
        row["deep"] = timed(client, path, deep, repeat)
    return row


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
            row.update(_pages(client, path, base, repeat))
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
FILTERS = {
    "combined (harm percentile 50-95, length 300-900, unreviewed)": COMBINED,
    "flagged": {"flagged": "true"},
    "common word, harm percentile 0-50, not flagged": {
        "q": review_data.COMMON_WORD,
        "percentile": "harm:0:50",
        "flagged": "false",
    },
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
            "server": client.last_timing,
            "ok": (error <= TARGETS["estimate_tolerance"])
            if body["total_is_estimate"]
            else error == 0,
        }
    print(f"  totals: {out}", flush=True)
    return out


def _bulk_body(built: Any) -> dict:
    share = 100 * (1 - min(BULK, built.train_ids // 9) / built.train_ids)
    return {
        "action": "flag",
        "filter": {"job_id": built.job_id, "percentiles": [{"column": "harm", "min": share}]},
    }


def _flag_in_place(sessions: Any, built: Any) -> bool:
    """Whether the dataset's latest review action not undone is the bench's bulk flag."""
    from sqlalchemy import select

    from backend.models import ReviewAction

    with sessions() as session:
        last = session.scalar(
            select(ReviewAction)
            .where(
                ReviewAction.dataset_id == built.dataset_id,
                ReviewAction.kind == "bulk",
                ReviewAction.undone_at.is_(None),
            )
            .order_by(ReviewAction.id.desc())
            .limit(1)
        )
        return last is not None and last.filter == _bulk_body(built)["filter"]


def ensure_flagged(client: Client, sessions: Any, built: Any) -> float | None:
    """The bulk flag in place for the filters and totals (its seconds when this had to do it)."""
    if _flag_in_place(sessions, built):
        return None
    review_data.clear_reviews(sessions, built.dataset_id)
    _, seconds = client.post(f"/datasets/{built.dataset_id}/review", _bulk_body(built))
    return seconds


def measure_bulk(client: Client, sessions: Any, built: Any) -> dict[str, Any]:
    """From no review state: dry run and flag of the 100,000 most harmful pairs, the undo, the
    flag again (left in place)."""
    review_data.clear_reviews(sessions, built.dataset_id)
    path = f"/datasets/{built.dataset_id}/review"
    body = _bulk_body(built)
    dry = []
    for _ in range(5):
        dry.append(client.post(path, {**body, "dry_run": True})[1])
    dry_server = client.last_timing
    flagged, flag_s = client.post(path, body)
    out: dict[str, Any] = {
        "matched": flagged["matched"],
        "changed": flagged["changed"],
        "dry_run_s": sorted(dry)[len(dry) // 2],
        "dry_run_max_s": max(dry),
        "dry_run_server": dry_server,
        "flag_s": flag_s,
        "flag_server": client.last_timing,
    }
    undone, out["undo_s"] = client.post(f"{path}/undo")
    out["undo_changed"], out["undo_server"] = undone["changed"], client.last_timing
    again, out["reflag_s"] = client.post(path, body)
    out["reflag_changed"], out["reflag_server"] = again["changed"], client.last_timing
    print(f"  bulk: {out}", flush=True)
    return out


def measure_filters(client: Client, sessions: Any, built: Any, repeat: int) -> dict[str, Any]:
    """Filters combined with the review states the bulk flag left, sorted by harm."""
    out: dict[str, Any] = {"setup_flag_s": ensure_flagged(client, sessions, built)}
    path = _pairs_path(built.dataset_id)
    for name, params in FILTERS.items():
        base = {"job_id": built.job_id, "sort": "-harm", "limit": PAGE, **params}
        out[name] = _pages(client, path, base, repeat)
        print(f"  filter {name}: {out[name]}", flush=True)
    # What a reviewer reads most: the list again after each decision (and after its undo).
    name = next(iter(FILTERS))
    base = {"job_id": built.job_id, "sort": "-harm", "limit": PAGE, **FILTERS[name]}
    decided, undone = after_decisions(client, built.dataset_id, base, repeat)
    shown = {k: out[name][k] for k in ("total", "total_is_estimate")}
    out[f"{name}, after a decision on one of its pairs"] = {**shown, "first": decided}
    out[f"{name}, after that decision's undo"] = {**shown, "first": undone}
    print(f"  after decisions: {decided}; after their undo: {undone}", flush=True)
    return out


def measure_all_totals(client: Client, sessions: Any, built: Any) -> dict[str, Any]:
    """The totals after the bulk flag on fresh servers (no cached count): the exact-count budget
    as configured, then at 1 ms (every total above 10,000 an estimate)."""
    out: dict[str, Any] = {"setup_flag_s": ensure_flagged(client, sessions, built)}
    truths = _truths(sessions, built, 50, 95)
    for name, env in (("configured", {}), ("estimated", {"PREFAUDIT_EXACT_COUNT_MS": "1"})):
        with api_server({**SERVER_ENV, **env}) as (base, _):
            out[name] = measure_totals(Client(base, client.token), built, truths)
    return out


def measure_exports(client: Client, process: Any, built: Any, n: int) -> dict[str, Any]:
    """Every pair in each format over the socket: bench/lib/review_export.py's measures (on a
    server of their own, once per format; that module writes its own results too), else one
    round on this part's server."""
    try:
        from bench.lib import review_export
    except ImportError:
        return http_exports(client, process, built.dataset_id, ("jsonl", "csv", "parquet"))
    done = review_export.run(built.dataset_id, client.token, n, repeat=1)
    return {
        fmt: {**row["runs"][0], "server_rss_growth_mb": row["max_rss_growth_mb"]}
        for fmt, row in done["formats"].items()
    }


SERVER_ENV = {"PREFAUDIT_REAPER_INTERVAL_SECONDS": "0"}


def _token(sessions: Any, user_id: int) -> str:
    from backend.models import User
    from backend.services.users import issue_token

    with sessions() as session:
        token = issue_token(session, session.get(User, user_id), "review-scale")
        session.commit()
    return token


def _commit() -> str:
    found = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    )
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=REPO).returncode != 0
    return found.stdout.strip() + ("+uncommitted" if dirty else "")


def _run_part(name: str, measure: Callable[[], Any], out: dict[str, Any], save: Callable) -> None:
    """One part, its load average sampled while it runs; the results written when it ends."""
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    start = time.perf_counter()
    with LoadWatch() as watch:
        result = measure()
    out[name] = result
    out.setdefault("parts", {})[name] = {
        "started": started,
        "seconds": round(time.perf_counter() - start, 1),
        "load_1min": watch.summary(),
        "commit": _commit(),
    }
    save()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--rebuild", action="store_true", help="build the data again")
    parser.add_argument("--only", default=",".join(PARTS), help=f"parts: {','.join(PARTS)}")
    parser.add_argument(
        "--resume", action="store_true", help="skip the parts the results file already holds"
    )
    parser.add_argument("--fresh", action="store_true", help="start a new results file")
    parser.add_argument(
        "--sorts",
        default="",
        help="only these sort keys (e.g. index,length), merged into the results' earlier sorts",
    )
    args = parser.parse_args()
    sort_keys = [k.strip() for k in args.sorts.split(",") if k.strip()] or None
    wanted = [p.strip() for p in args.only.split(",") if p.strip()]
    if unknown := sorted(set(wanted) - set(PARTS)):
        parser.error(f"unknown part {unknown[0]!r}; parts: {', '.join(PARTS)}")
    n = args.pairs
    stem = "review_scale" if n == 1_000_000 else f"review_scale-{n}"
    json_path, md_path = RESULTS / f"{stem}.json", RESULTS / f"{stem}.md"
    out: dict[str, Any] = {}
    if json_path.exists() and not args.fresh:
        out = json.loads(json_path.read_text())
        if out.get("pairs") != n or "parts" not in out:
            out = {}
    if args.resume:
        wanted = [p for p in wanted if p not in out.get("parts", {})]
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
    out.update(pairs=n, cpus=os.cpu_count(), repeat=args.repeat)
    built = review_data.build(n, args.rebuild)
    out["data"] = {"cached": built.cached, **built.build, "train_pairs": built.train_ids}

    def save() -> None:
        write_json(json_path, out)
        md_path.write_text(markdown(out, TARGETS))

    token = _token(sessions, built.user_id)
    with api_server(SERVER_ENV) as (base, process):
        client = Client(base, token)
        measures: dict[str, Callable[[], Any]] = {
            "sorts": lambda: {
                **(out.get("sorts", {}) if sort_keys else {}),
                **measure_sorts(client, sessions, built, args.repeat, sort_keys),
            },
            "search": lambda: measure_search(client, sessions, built, n, args.repeat),
            "bulk": lambda: measure_bulk(client, sessions, built),
            "filters": lambda: measure_filters(client, sessions, built, args.repeat),
            "totals": lambda: measure_all_totals(client, sessions, built),
            "exports": lambda: measure_exports(client, process, built, n),
        }
        for name in PARTS:
            if name in wanted:
                print(f"{name} (load {load()})", flush=True)
                _run_part(name, measures[name], out, save)
    print(markdown(out, TARGETS))


if __name__ == "__main__":
    main()
