"""The review benchmark's markdown: every measure beside its target and whether it is met."""

from __future__ import annotations

from typing import Any


def _mark(ok: bool) -> str:
    return "✅" if ok else "❌"


def _page(label: str, t: dict, target: float) -> str:
    ok = t["p95_ms"] <= target
    return (
        f"| {label} | p50 {t['p50_ms']:.1f} / p95 {t['p95_ms']:.1f} ms "
        f"(first {t['first_ms']:.0f} ms) | p95 ≤ {target:.0f} ms | {_mark(ok)} |"
    )


def _plan(plan: dict) -> str:
    indexes = ", ".join(plan["indexes"]) or "no index"
    return f"{indexes}{'; sorts' if plan['sorts'] else ''}; {plan['ms']:.1f} ms"


def _sort_lines(out: dict, target: float) -> list[str]:
    lines = []
    for sort, row in out["sorts"].items():
        note = " (no index in this database: 3 requests)" if row["plan"]["sorts"] else ""
        lines.append(_page(f"sort `{sort}`, first page{note}", row["first"], target))
        if "deep" in row:
            lines.append(_page(f"sort `{sort}`, 200 cursors deep{note}", row["deep"], target))
    return lines


def _search_lines(out: dict, target: float) -> list[str]:
    lines = []
    for name, row in out["search"].items():
        label = f"search {name} ('{row['word']}', {row['hits']:,} hits)"
        lines.append(_page(f"{label}, first page", row["first"], target))
        if "deep" in row:
            lines.append(_page(f"{label}, rank {row['deep_rank']:,}", row["deep"], target))
    return lines


def _totals_lines(totals: dict, tolerance: float, how: str) -> list[str]:
    lines = []
    for name, t in totals.items():
        shown = f"{t['total']:,}{'~' if t['estimate'] else ''}"
        want = f"within {tolerance:.0%}" if t["estimate"] else "exact"
        lines.append(
            f"| total '{name}' after the bulk flag ({how}) | {shown} vs {t['truth']:,} "
            f"({t['error']:.1%} off; first request {t['first_ms']:.0f} ms) | {want} "
            f"| {_mark(t['ok'])} |"
        )
    return lines


def _bulk_lines(b: dict, targets: dict) -> list[str]:
    lines = [
        f"| bulk flag dry run ({b['matched']:,} pairs) | {b['dry_run_s']:.2f} s (max "
        f"{b['dry_run_max_s']:.2f}) | ≤ {targets['bulk_dry_run_s']} s "
        f"| {_mark(b['dry_run_s'] <= targets['bulk_dry_run_s'])} |",
        f"| bulk flag ({b['changed']:,} pairs) | {b['flag_s']:.2f} s "
        f"| ≤ {targets['bulk_flag_s']} s "
        f"| {_mark(b['flag_s'] <= targets['bulk_flag_s'])} |",
    ]
    if "undo_s" in b:
        lines.append(f"| undo of the bulk flag | {b['undo_s']:.2f} s | – | |")
    target = targets["page_p95_ms"]
    if "combined_first" not in b:
        return lines
    lines.append(
        _page("combined filter after the bulk flag, first page", b["combined_first"], target)
    )
    lines.append(
        _page(
            f"combined filter after the bulk flag, rank {b['combined_deep_rank']:,}",
            b["combined_deep"],
            target,
        )
    )
    return lines


def _export_lines(out: dict, targets: dict) -> list[str]:
    lines = []
    for fmt, e in out.get("exports", {}).items():
        limit = targets["export_s"][fmt]
        ok = e["seconds"] <= limit and e["server_rss_growth_mb"] <= targets["export_rss_mb"]
        lines.append(
            f"| {fmt.upper()} export of every pair over HTTP | {e['seconds']:.1f} s "
            f"({e['mib']:.0f} MiB, {e['mib_per_s']:.0f} MiB/s), server RSS "
            f"+{e['server_rss_growth_mb']:.0f} MB | ≤ {limit:.0f} s, ≤ "
            f"{targets['export_rss_mb']:.0f} MB | {_mark(ok)} |"
        )
    return lines


def markdown(out: dict[str, Any], targets: dict[str, Any]) -> str:
    n = out["pairs"]
    target = targets["page_p95_ms"]
    lines = [
        f"# The review at {n:,} pairs through a real server (`python -m bench.review_scale"
        f"{'' if n == 1_000_000 else f' --pairs {n}'}`)",
        "",
        f"Postgres and `prefaudit serve` on this machine ({out['cpus']} cores shared with other "
        f"jobs: load average {out['load_start']} at the start, {out['load_end']} at the end); an "
        "httpx client over loopback; pages of 50, 30 requests each after a first (cold) one.",
        "",
        "| measure | measured | target | met |",
        "|---|---|---|---|",
        *(_sort_lines(out, target) if "sorts" in out else []),
        *(_search_lines(out, target) if "search" in out else []),
        *_bulk_lines(out["bulk"], targets),
        *_totals_lines(out["totals"], targets["estimate_tolerance"], "budget as configured"),
        *_totals_lines(
            out["totals_estimated"], targets["estimate_tolerance"], "exact-count budget 1 ms"
        ),
        *_export_lines(out, targets),
        "",
        "Plans of the pages 200 cursors deep (EXPLAIN ANALYZE of the statements the API ran):",
        "",
        "| sort | index read; sorts? ; time |",
        "|---|---|",
        *(f"| `{s}` | {_plan(r['plan'])} |" for s, r in out.get("sorts", {}).items()),
        *(f"| search {s} | {_plan(r['plan'])} |" for s, r in out.get("search", {}).items()),
    ]
    return "\n".join(lines) + "\n"
