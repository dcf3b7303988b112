"""The review benchmark's markdown: every measure beside its target and whether it is met, the
server's own time beside the client's, and the load average while each part ran."""

from __future__ import annotations

from typing import Any


def _mark(ok: bool) -> str:
    return "✅" if ok else "❌"


def _page(label: str, t: dict, target: float) -> str:
    server = "–"
    if "server_app_p50_ms" in t:
        server = (
            f"p50 {t['server_app_p50_ms']:.1f} / p95 {t['server_app_p95_ms']:.1f} ms "
            f"(db p50 {t['server_db_p50_ms']:.1f}, cpu p50 {t.get('server_cpu_p50_ms', 0):.1f})"
        )
    return (
        f"| {label} | p50 {t['p50_ms']:.1f} / p95 {t['p95_ms']:.1f} ms "
        f"(first {t['first_ms']:.0f} ms) | {server} | p95 ≤ {target:.0f} ms "
        f"| {_mark(t['p95_ms'] <= target)} | {_mark(t.get('server_app_p95_ms', 1e9) <= target)} |"
    )


def _plan(plan: dict) -> str:
    indexes = ", ".join(plan["indexes"]) or "no index"
    return f"{indexes}{'; **sorts**' if plan['sorts'] else ''}; {plan['ms']:.1f} ms"


def _sort_lines(sorts: dict, target: float, commits: set[str]) -> list[str]:
    lines = []
    for sort, row in sorts.items():
        note = " (sorts in the database: 3 requests)" if row["plan"]["sorts"] else ""
        if len(commits) > 1:
            note += f" (code {row.get('commit', '?')})"
        lines.append(_page(f"sort `{sort}`, first page{note}", row["first"], target))
        if "deep" in row:
            lines.append(_page(f"sort `{sort}`, 200 cursors deep{note}", row["deep"], target))
    return lines


def _list_lines(rows: dict, target: float, label: Any) -> list[str]:
    lines = []
    for name, row in rows.items():
        if not isinstance(row, dict) or "first" not in row:
            continue
        lines.append(_page(f"{label(name, row)}, first page", row["first"], target))
        if "deep" in row:
            lines.append(
                _page(f"{label(name, row)}, rank {row['deep_rank']:,}", row["deep"], target)
            )
    return lines


def _search_label(name: str, row: dict) -> str:
    return f"search {name} ('{row['word']}', {row['hits']:,} hits)"


def _filter_label(name: str, row: dict) -> str:
    shown = f"{row['total']:,}{'~' if row['total_is_estimate'] else ''}"
    return f"filter: {name} (total {shown})"


def _server(s: dict | None) -> str:
    return f"{s['app']:.0f} ms (db {s['db']:.0f})" if s and "app" in s else "–"


def _bulk_lines(b: dict, targets: dict) -> list[str]:
    dry, flag = targets["bulk_dry_run_s"], targets["bulk_flag_s"]
    return [
        f"| bulk flag dry run ({b['matched']:,} pairs; median of 5) | {b['dry_run_s']:.2f} s "
        f"(max {b['dry_run_max_s']:.2f}) | {_server(b.get('dry_run_server'))} | ≤ {dry} s "
        f"| {_mark(b['dry_run_s'] <= dry)} | |",
        f"| bulk flag ({b['changed']:,} pairs, none reviewed before) | {b['flag_s']:.2f} s "
        f"| {_server(b.get('flag_server'))} | ≤ {flag} s | {_mark(b['flag_s'] <= flag)} | |",
        f"| its undo ({b['undo_changed']:,} pairs) | {b['undo_s']:.2f} s "
        f"| {_server(b.get('undo_server'))} | – | | |",
        f"| the flag again ({b['reflag_changed']:,} pairs, now unreviewed rows) "
        f"| {b['reflag_s']:.2f} s | {_server(b.get('reflag_server'))} | ≤ {flag} s "
        f"| {_mark(b['reflag_s'] <= flag)} | |",
    ]


def _totals_lines(totals: dict, tolerance: float, how: str) -> list[str]:
    lines = []
    for name, t in totals.items():
        shown = f"{t['total']:,}{'~' if t['estimate'] else ''}"
        want = f"within {tolerance:.0%}" if t["estimate"] else "exact"
        lines.append(
            f"| total '{name}' after the bulk flag ({how}) | {shown} vs {t['truth']:,} "
            f"({t['error']:.1%} off; first request {t['first_ms']:.0f} ms) "
            f"| {_server(t.get('server'))} | {want} | {_mark(t['ok'])} | |"
        )
    return lines


def _export_lines(exports: dict, targets: dict) -> list[str]:
    lines = []
    for fmt, e in exports.items():
        if not isinstance(e, dict) or "seconds" not in e:
            continue
        limit = targets["export_s"][fmt]
        ok = e["seconds"] <= limit and e["server_rss_growth_mb"] <= targets["export_rss_mb"]
        lines.append(
            f"| {fmt.upper()} export of every pair over HTTP | {e['seconds']:.1f} s "
            f"({e['mib']:.0f} MiB, {e['mib_per_s']:.0f} MiB/s), server RSS "
            f"+{e['server_rss_growth_mb']:.0f} MB | – | ≤ {limit:.0f} s, ≤ "
            f"{targets['export_rss_mb']:.0f} MB | {_mark(ok)} | |"
        )
    return lines


def _part_lines(out: dict, targets: dict) -> dict[str, list[str]]:
    target = targets["page_p95_ms"]
    tolerance = targets["estimate_tolerance"]
    lines: dict[str, list[str]] = {}
    if "sorts" in out:
        commits = {row.get("commit", "?") for row in out["sorts"].values()}
        lines["sorts"] = _sort_lines(out["sorts"], target, commits)
    if "search" in out:
        lines["search"] = _list_lines(out["search"], target, _search_label)
    if "bulk" in out:
        lines["bulk"] = _bulk_lines(out["bulk"], targets)
    if "filters" in out:
        lines["filters"] = _list_lines(out["filters"], target, _filter_label)
    if "totals" in out:
        lines["totals"] = [
            *_totals_lines(out["totals"]["configured"], tolerance, "budget as configured"),
            *_totals_lines(out["totals"]["estimated"], tolerance, "exact-count budget 1 ms"),
        ]
    if "exports" in out:
        lines["exports"] = _export_lines(out["exports"], targets)
    return lines


def markdown(out: dict[str, Any], targets: dict[str, Any]) -> str:
    n = out["pairs"]
    parts = out.get("parts", {})
    lines = [
        f"# The review at {n:,} pairs through a real server (`python -m bench.review_scale"
        f"{'' if n == 1_000_000 else f' --pairs {n}'}`)",
        "",
        f"Postgres and `prefaudit serve` on this machine ({out['cpus']} cores shared with other "
        "jobs); an httpx client over loopback; pages of 50, "
        f"{out.get('repeat', 30)} requests each after a first (cold) one. **client**: what the "
        "client measured; **server**: the server's own time for the request (its Server-Timing "
        "header: from the request reaching the app to the response's headers; of that the "
        "database's, and the server process's CPU time, which is the request's own work as the "
        "client sends one request at a time). On a loaded machine both the client's and the "
        "server's wall times include waiting for a core, so neither p95 is the quiet-machine "
        "figure; the last two columns say whether each meets the target.",
        "",
        "| part | started (UTC) | seconds | load average (1 min) while it ran: min / mean / max "
        "| code |",
        "|---|---|---|---|---|",
    ]
    for name, p in parts.items():
        load = p["load_1min"]
        lines.append(
            f"| {name} | {p['started']} | {p['seconds']:.0f} | {load['min']} / {load['mean']} / "
            f"{load['max']} | {p['commit']} |"
        )
    lines += [
        "",
        "| measure | client | server | target | client met | server met |",
        "|---|---|---|---|---|---|",
    ]
    for part_lines in _part_lines(out, targets).values():
        lines += part_lines
    plans = [(f"`{s}`", r["plan"]) for s, r in out.get("sorts", {}).items()]
    plans += [(f"search {s}", r["plan"]) for s, r in out.get("search", {}).items()]
    if plans:
        lines += [
            "",
            "Database time of each page (EXPLAIN ANALYZE of the statements the API ran, captured "
            "from the real code; sorts 200 cursors deep, searches first page):",
            "",
            "| page | indexes read; sorts?; execution |",
            "|---|---|",
            *(f"| {label} | {_plan(plan)} |" for label, plan in plans),
        ]
    return "\n".join(lines) + "\n"
