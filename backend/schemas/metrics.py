"""A job's stored metrics, typed by kind: the engine's models (worker/influence/results.py), which
the worker writes and the API reads."""

from __future__ import annotations

from worker.influence.results import (
    ArmMetrics,
    ArmSummary,
    AuditMetrics,
    BenchmarkRow,
    CrossFitSummary,
    DifferenceMetrics,
    GroupEstimate,
    GroupMetrics,
    InfluenceSolve,
    JobMetrics,
    MethodBenchmark,
    MislabelledEstimate,
    PairedDifference,
    ProjectionSummary,
    TrainingEpoch,
    TruncationRate,
    TrustVerdict,
    VerifyArms,
    VerifyDifferences,
    VerifyMetrics,
    VerifyRun,
    read_metrics,
)

__all__ = [
    "ArmMetrics",
    "ArmSummary",
    "AuditMetrics",
    "BenchmarkRow",
    "CrossFitSummary",
    "DifferenceMetrics",
    "GroupEstimate",
    "GroupMetrics",
    "InfluenceSolve",
    "JobMetrics",
    "MethodBenchmark",
    "MislabelledEstimate",
    "PairedDifference",
    "ProjectionSummary",
    "TrainingEpoch",
    "TruncationRate",
    "TrustVerdict",
    "VerifyArms",
    "VerifyDifferences",
    "VerifyMetrics",
    "VerifyRun",
    "read_metrics",
]
