"""Stage progress, timing and peak memory of an audit, forwarded to the caller's callback."""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable

import torch

from worker.influence.train import Progress


def peak_memory_mb(device: torch.device) -> dict[str, float]:
    """The process's peak resident set, and on CUDA the most memory allocated, in MiB."""
    peak = {"cpu_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.type == "cuda":
        peak["cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return peak


class Reporter:
    """Forwards stage progress to the caller, times each stage and records its peak memory.

    On CUDA a stage's peak is the most memory allocated during it; on the CPU it is the process's
    peak resident set so far (the OS keeps no per-stage high-water mark), so it only grows.
    """

    def __init__(self, progress: Progress | None, device: torch.device | None = None) -> None:
        self.progress = progress
        self.device = device
        self.seconds: dict[str, float] = {}
        self.peak_memory_mb: dict[str, dict[str, float]] = {}
        self._started: dict[str, float] = {}

    def start(self, stage: str) -> None:
        self._started[stage] = time.perf_counter()
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self.update(stage, 0.0, None)

    def done(self, stage: str) -> None:
        self.seconds[stage] = time.perf_counter() - self._started.get(stage, time.perf_counter())
        if self.device is not None:
            self.peak_memory_mb[stage] = peak_memory_mb(self.device)
        self.update(stage, 1.0, None)

    def overall_peak_memory_mb(self) -> dict[str, float]:
        """The largest peak of any stage, per kind of memory."""
        peak: dict[str, float] = {}
        for stage in self.peak_memory_mb.values():
            for kind, value in stage.items():
                peak[kind] = max(peak.get(kind, 0.0), value)
        return peak

    def update(self, stage: str, fraction: float, message: str | None) -> None:
        if self.progress is not None:
            self.progress(stage, float(min(1.0, max(0.0, fraction))), message)

    def fraction(self, stage: str) -> Callable:
        """A progress callback for one stage taking (fraction[, message])."""

        def call(fraction: float, message: str | None = None) -> None:
            if not math.isnan(fraction):
                self.update(stage, fraction, message)

        return call
