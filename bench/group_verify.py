"""Greedy vs top-K vs random pruning at the same budget, through the API and a real worker.

    python -m bench.group_verify                       # harmless-base, 1,000 pairs, 20% flips
    python -m bench.group_verify --pairs 300 --seeds 3 # smaller

For each variant (plain flips; duplicated flips: every flipped pair present 3–5 times) it uploads
the noisy training pairs (metadata `planted_flip` and `origin`), a clean validation set and a clean
test set of harmless-base, runs a head-mode MiniLM audit with the `group` method, flags the greedy
budget through `POST /datasets/{id}/flags` (rule "greedy"), reads the first-order top-K of the same
size from the pairs list, counts the distinct flipped pairs each removes, and runs a verify job
(rule "greedy": greedy, top-K and random arms, paired by seed) evaluated on the clean test set.
Needs Postgres and Redis as bench.scale does. Results: bench/results/group/verify-*.json and .md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime

import numpy as np

from bench.lib.noise_data import DEFAULT_DATA_DIR, flip_mask, load_pairs, make_split
from bench.lib.paths import RESULTS
from bench.lib.report import interval_text, write_json
from bench.lib.stack import Session, Workers, run_job

OUT = RESULTS / "group"


def _records(args: argparse.Namespace, duplicated: bool) -> tuple[list, list, list]:
    # The upload refuses empty responses (two HH-RLHF pairs have one): leave those out here.
    pairs = [
        p
        for p in load_pairs(args.dataset, DEFAULT_DATA_DIR)
        if p.prompt.strip() and p.chosen.strip() and p.rejected.strip()
    ]
    split = make_split(len(pairs), args.pairs, args.n_val, args.n_test, args.split_seed)
    flips = flip_mask(args.pairs, args.noise, args.split_seed)
    rng = np.random.default_rng([args.split_seed, 5])
    train = []
    for k, (i, flip) in enumerate(zip(split.train, flips, strict=True)):
        pair = pairs[i]
        chosen, rejected = (pair.rejected, pair.chosen) if flip else (pair.chosen, pair.rejected)
        record = {
            "prompt": pair.prompt,
            "chosen": chosen,
            "rejected": rejected,
            "planted_flip": bool(flip),
            "origin": k,
        }
        copies = int(rng.integers(3, 6)) if (duplicated and flip) else 1
        train.extend(dict(record) for _ in range(copies))

    def clean(index):
        return [
            {"prompt": pairs[i].prompt, "chosen": pairs[i].chosen, "rejected": pairs[i].rejected}
            for i in index
        ]

    return train, clean(split.val), clean(split.test)


def _upload(session: Session, name: str, records: list) -> int:
    return session.upload(name, ("\n".join(json.dumps(r) for r in records) + "\n").encode())


def _pairs(session: Session, dataset_id: int, **params) -> list[dict]:
    response = session.client.get(
        f"/api/v1/datasets/{dataset_id}/pairs", headers=session.headers, params=params
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


def _distinct_flips(items: list[dict]) -> dict:
    bad = [p for p in items if p["metadata"].get("planted_flip")]
    return {
        "removed": len(items),
        "flipped_rows": len(bad),
        "distinct_flips": len({p["metadata"]["origin"] for p in bad}),
    }


def variant(session: Session, args: argparse.Namespace, duplicated: bool) -> dict:
    label = "duplicated" if duplicated else "plain"
    train, val, test = _records(args, duplicated)
    stamp = int(time.time())
    train_id = _upload(session, f"{args.dataset}-{label}-{stamp}", train)
    val_id = _upload(session, f"{args.dataset}-val-{stamp}-{label}", val)
    test_id = _upload(session, f"{args.dataset}-test-{stamp}-{label}", test)
    body = {
        "model": args.model,
        "mode": "head",
        "max_length": args.max_length,
        "methods": ["loss", "influence", "group"],
        "default_method": "group",
        "prune_budget": args.budget,
        "val_dataset_id": val_id,
    }
    started = time.perf_counter()
    audit = run_job(session.client, session.headers, train_id, body, args.timeout)
    audit_seconds = time.perf_counter() - started
    budget = audit["metrics"]["group"]["budget"]
    flagged = session.client.post(
        f"/api/v1/datasets/{train_id}/flags",
        headers=session.headers,
        json={"job_id": audit["id"], "rule": "greedy"},
    )
    assert flagged.status_code == 200, flagged.text
    greedy = _pairs(session, train_id, flagged=True, limit=budget + 1)
    assert len(greedy) == budget
    top_k = _pairs(session, train_id, job_id=audit["id"], sort="-harm_influence", limit=budget)
    counts = {"greedy": _distinct_flips(greedy), "top_k": _distinct_flips(top_k)}
    started = time.perf_counter()
    verify = run_job(
        session.client,
        session.headers,
        train_id,
        {
            "kind": "verify",
            "audit_job_id": audit["id"],
            "rule": "greedy",
            "seeds": args.seeds,
            "test_dataset_id": test_id,
        },
        args.timeout,
    )
    metrics = verify["metrics"]
    return {
        "variant": label,
        "n_train_rows": len(train),
        "n_flipped_rows": sum(r["planted_flip"] for r in train),
        "n_distinct_flips": len({r["origin"] for r in train if r["planted_flip"]}),
        "audit_job_id": audit["id"],
        "audit_seconds": audit_seconds,
        "verify_seconds": time.perf_counter() - started,
        "budget": budget,
        "group_metrics": audit["metrics"]["group"],
        "val_accuracy": audit["metrics"].get("val_accuracy"),
        "counts": counts,
        "verify": {
            key: metrics[key]
            for key in ("differences", "evaluation_paired", "arms", "summary", "overlap", "rule")
        },
    }


def _ci(d: dict | None) -> str:
    return interval_text(d, 100)


def markdown(result: dict) -> str:
    a = result["args"]
    lines = [
        "# Greedy vs top-K vs random pruning through the API (verify jobs)",
        "",
        f"`{result['command']}` — {result['finished']}. {a['dataset']}, {a['pairs']} training "
        f"pairs with {a['noise']:.0%} planted flips, clean validation ({a['n_val']}) and test "
        f"({a['n_test']}) sets, {a['model']} head mode, budget {a['budget']}, seeds "
        f"0–{a['seeds'] - 1}. Accuracy differences in points on the test set: over seeds, then "
        "over test pairs (head fits are deterministic, so only the random arm varies by seed).",
        "",
        "| variant | rows | budget | distinct flips removed: greedy / top-K | greedy − top-K | "
        "greedy − random | top-K − random | greedy − all | greedy − top-K (test pairs) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["variants"]:
        d, e = row["verify"]["differences"], row["verify"]["evaluation_paired"]
        lines.append(
            f"| {row['variant']} | {row['n_train_rows']} | {row['budget']} | "
            f"{row['counts']['greedy']['distinct_flips']} / "
            f"{row['counts']['top_k']['distinct_flips']} | "
            f"{_ci(d['pruned_minus_top_k']['accuracy'])} | "
            f"{_ci(d['pruned_minus_random']['accuracy'])} | "
            f"{_ci(d['top_k_minus_random']['accuracy'])} | "
            f"{_ci(d['pruned_minus_full']['accuracy'])} | "
            f"{_ci(e['pruned_minus_top_k']['accuracy'])} |"
        )
    summaries = [f"- {row['variant']}: {row['verify']['summary']}" for row in result["variants"]]
    lines += ["", *summaries]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="harmless-base")
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--n-val", type=int, default=200)
    parser.add_argument("--n-test", type=int, default=500)
    parser.add_argument("--noise", type=float, default=0.2)
    parser.add_argument("--budget", type=float, default=0.1)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--variants", nargs="+", default=["plain", "duplicated"])
    args = parser.parse_args()
    session = Session()
    workers = Workers(1, session.env, args.threads)
    result: dict = {
        "args": vars(args),
        "command": "python -m bench.group_verify " + " ".join(sys.argv[1:]),
        "variants": [],
    }
    try:
        workers.wait_ready()
        for name in args.variants:
            row = variant(session, args, name == "duplicated")
            result["variants"].append(row)
            print(json.dumps({k: row[k] for k in ("variant", "budget", "counts")}), flush=True)
    finally:
        workers.stop()
    result["worker_peak_rss_mb"] = workers.peak_mb
    result["finished"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    stem = f"verify-{args.dataset}-{args.pairs}"
    write_json(OUT / f"{stem}.json", result, indent=1)
    (OUT / f"{stem}.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
