"""The long schemathesis run (issue 10): every operation of the OpenAPI schema × up to N
generated requests against the real app on Postgres, authenticated; none may be a server error.
`make test` runs the same module with 25 examples per operation.

    python -m bench.fuzz [--examples 200]   # TEST_DATABASE_URL / TEST_BROKER_URL as for pytest

Prints and writes `bench/results/fuzz.json`: operations, examples per operation, how many
operations got a server error (or another failed check), the seconds it took.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from bench.lib.paths import REPO, RESULTS
from bench.lib.report import write_json

OUT = RESULTS / "fuzz.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200, help="requests per operation (max)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        started = time.perf_counter()
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "tests/api/test_schemathesis.py",
                f"--junitxml={report}",
            ],
            cwd=REPO,
            env={**os.environ, "SCHEMATHESIS_EXAMPLES": str(args.examples)},
        )
        seconds = time.perf_counter() - started
        cases = ElementTree.parse(report).getroot().iter("testcase")
        failed = [
            case.get("name", "")
            for case in cases
            if case.find("failure") is not None or case.find("error") is not None
        ]
        n_cases = sum(1 for _ in ElementTree.parse(report).getroot().iter("testcase"))
    result = {
        "operations": n_cases,
        "examples_per_operation": args.examples,
        "operations_failed": len(failed),
        "failed": failed,
        "seconds": round(seconds, 1),
        "pytest_exit_code": run.returncode,
    }
    write_json(OUT, result)
    print(
        f"schemathesis: {n_cases} operations × up to {args.examples} requests, "
        f"{len(failed)} with a server error or failed check, {seconds:.0f} s → {OUT}"
    )
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
