"""The review benchmark's exports (issue 23, item 1): every pair in JSONL, CSV and Parquet through a
real `prefaudit serve` over a loopback socket, each format several times, the server's RSS before,
at its peak while each streams and after, and the machine's load beside each run.

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench23 \\
        python -m bench.lib.review_export --pairs 1000000 --repeat 3

reads a database the review benchmark built (bench/lib/review_data.py) and writes nothing to it
but a temporary API token (deleted at the end); bench/review_scale.py calls `run` after its own
measures. Results: bench/results/review_scale-exports.json and .md (other sizes get a suffix).
"""

from __future__ import annotations

import argparse
import os
import statistics
from datetime import timedelta
from typing import Any

from bench.lib import review_data
from bench.lib.paths import RESULTS
from bench.lib.report import write_json
from bench.lib.review_http import Client, http_exports, load
from bench.lib.stack import api_server

FORMATS = ("jsonl", "csv", "parquet")
TARGET_S = {"jsonl": 30.0, "csv": 45.0, "parquet": 30.0}
TARGET_RSS_MB = 100.0


def measure(
    base: str, process: Any, token: str, dataset_id: int, repeat: int, formats: tuple = FORMATS
) -> dict[str, Any]:
    """`repeat` rounds of the exports on one server: each run's figures, then per format the
    median seconds and the largest RSS growth, against the targets."""
    client = Client(base, token)
    rss_before = process.memory_info().rss
    runs: dict[str, list[dict]] = {fmt: [] for fmt in formats}
    for n in range(repeat):
        print(f"round {n + 1} of {repeat}", flush=True)
        for fmt, run in http_exports(client, process, dataset_id, formats).items():
            runs[fmt].append(run)
    out: dict[str, Any] = {
        "server_rss_mb": {
            "before": rss_before / 2**20,
            "after": process.memory_info().rss / 2**20,
        },
        "formats": {},
    }
    for fmt, done in runs.items():
        seconds = [r["seconds"] for r in done]
        growth = max(r["server_rss_growth_mb"] for r in done)
        sizes = {round(r["mib"], 3) for r in done}
        out["formats"][fmt] = {
            "runs": done,
            "median_s": statistics.median(seconds),
            "max_s": max(seconds),
            "mib": max(sizes),
            "same_size_every_run": len(sizes) == 1,
            "max_rss_growth_mb": growth,
            "target_s": TARGET_S[fmt],
            "met": statistics.median(seconds) <= TARGET_S[fmt] and growth <= TARGET_RSS_MB,
        }
    return out


def markdown(out: dict[str, Any]) -> str:
    """The results as a table: measured against the targets."""
    lines = [
        f"# Exports over HTTP, {out['pairs']:,} pairs",
        "",
        "A real `prefaudit serve` (uvicorn) on a loopback socket, an httpx client streaming every "
        f"pair (`exclude_flagged=false`), {out['repeat']} runs per format; {out['cpus']} cores "
        "shared with other jobs (load averages 1/5/15 min beside each run: the figures are "
        f"under that load). Server RSS: {out['server_rss_mb']['before']:.0f} MB before, "
        f"{out['server_rss_mb']['after']:.0f} MB after (the server loads pyarrow, ~30 MB, when "
        "it starts: that is in the 'before', not in any export's growth; the first Parquet "
        "export's growth is the allocators' arenas filling, the later ones' a few MB).",
        "",
        "| format | runs (s) | median (s) | target (s) | MiB | MiB/s | RSS growth max (MB) "
        "| load (1 min) | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for fmt, row in out["formats"].items():
        runs = ", ".join(f"{r['seconds']:.1f}" for r in row["runs"])
        rate = row["mib"] / row["median_s"]
        loads = ", ".join(f"{r['load'][0]:.1f}" for r in row["runs"])
        lines.append(
            f"| {fmt} | {runs} | {row['median_s']:.1f} | ≤ {row['target_s']:.0f} | "
            f"{row['mib']:.0f} | {rate:.0f} | {row['max_rss_growth_mb']:.0f} (≤ "
            f"{TARGET_RSS_MB:.0f}) | {loads} | {'✅' if row['met'] else '❌'} |"
        )
    return "\n".join(lines) + "\n"


def run(
    dataset_id: int, token: str, pairs: int, repeat: int = 3, formats: tuple = FORMATS
) -> dict[str, Any]:
    """Measure on a fresh server (DATABASE_URL set) and write the results files (a suffix
    names the formats when not all three are measured)."""
    out: dict[str, Any] = {"pairs": pairs, "repeat": repeat, "cpus": os.cpu_count()}
    out["load_start"] = load()
    with api_server({"PREFAUDIT_REAPER_INTERVAL_SECONDS": "0"}) as (base, process):
        out.update(measure(base, process, token, dataset_id, repeat, formats))
    out["load_end"] = load()
    stem = "review_scale-exports" + ("" if pairs == 1_000_000 else f"-{pairs}")
    stem += "" if formats == FORMATS else "-" + "-".join(formats)
    write_json(RESULTS / f"{stem}.json", out)
    (RESULTS / f"{stem}.md").write_text(markdown(out))
    print(markdown(out), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated")
    args = parser.parse_args()
    formats = tuple(f for f in FORMATS if f in args.formats.split(","))
    if "DATABASE_URL" not in os.environ:
        parser.error("set DATABASE_URL to the review benchmark's database")
    os.environ.setdefault("BROKER_URL", "memory://")
    os.environ.setdefault("PREFAUDIT_DATA_DIR", "/tmp/prefaudit-review-export")
    from sqlalchemy import delete, select

    from backend.db import get_sessionmaker
    from backend.models import ApiToken, Dataset, User
    from backend.services.users import issue_token

    sessions = get_sessionmaker()
    with sessions() as session:
        name = review_data.dataset_name(args.pairs)
        dataset = session.scalar(select(Dataset).where(Dataset.name == name))
        if dataset is None or dataset.n_pairs != args.pairs:
            parser.error(f"no complete dataset {name!r} in DATABASE_URL: build it first")
        dataset_id = dataset.id
        user = session.get(User, dataset.owner_id)
        if user is None:
            parser.error(f"dataset {name!r} has no owner to issue a token for")
        token = issue_token(session, user, "review-export", timedelta(hours=2))
        session.commit()
    try:
        run(dataset_id, token, args.pairs, args.repeat, formats)
    finally:
        with sessions() as session:
            session.execute(delete(ApiToken).where(ApiToken.prefix == token[:10]))
            session.commit()


if __name__ == "__main__":
    main()
