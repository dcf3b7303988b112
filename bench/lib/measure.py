"""Measuring the benchmarks: peak resident memory while a block runs, p50/p95 latencies."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable

import psutil


class PeakRss:
    """Samples this process's resident memory every 50 ms while running."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.base = self.process.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.base) / 2**20


def timed(call: Callable[[], object], repeat: int = 20) -> dict[str, float]:
    """p50 and p95 milliseconds of `repeat` calls, after one warm-up call."""
    call()  # warm the plan and the caches once
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    return {"p50_ms": 1000 * statistics.median(times), "p95_ms": 1000 * p95}
