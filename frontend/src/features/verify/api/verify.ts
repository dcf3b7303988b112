import { useMutation, useQuery } from "@tanstack/react-query";
import { api, type Schemas } from "../../../api/client";
import { unwrap } from "../../../api/errors";
import { schemaDefault } from "../../../api/schemaDefaults";

export type Job = Schemas["JobPublic"];
export type VerifyCreate = Schemas["VerifyCreate"];

/** Training sets of a verification, per seed: all pairs, the pruned set, a random removal. */
export const ARMS = ["full", "pruned", "random"] as const;
export type Arm = (typeof ARMS)[number];
export const METRICS = ["accuracy", "loss"] as const;
export type Metric = (typeof METRICS)[number];
export const DIFFERENCES = ["pruned_minus_full", "pruned_minus_random"] as const;
export type DifferenceKey = (typeof DIFFERENCES)[number];

/** One metric of one arm over the seeds; `std` is null below 2 seeds. */
export interface ArmSummary {
  n: number;
  mean: number | null;
  std: number | null;
  values: number[];
}

/** Paired difference over seeds (or evaluation pairs) with its Student-t interval; null below n = 2. */
export interface Difference {
  n: number;
  mean: number | null;
  std: number | null;
  ci_low: number | null;
  ci_high: number | null;
  confidence: number;
}

export interface VerifyRun {
  seed: number;
  arm: Arm;
  n_train: number;
  accuracy: number;
  loss: number;
  seconds: number;
}

/** `metrics` of a succeeded verify job (worker/influence/verify.py and worker/pipeline.py). */
export interface VerifyMetrics {
  runs: VerifyRun[];
  arms: Partial<Record<Arm, Record<Metric, ArmSummary>>>;
  differences: Partial<Record<DifferenceKey, Record<Metric, Difference>>>;
  /** The same differences paired over evaluation pairs instead of seeds (absent in older results). */
  evaluation_paired?: Partial<Record<DifferenceKey, Record<Metric, Difference>>>;
  n_removed: number;
  n_train: number;
  n_eval: number;
  seeds: number[];
  summary: string;
  audit_job_id?: number;
  rule?: string;
  evaluated_on?: string;
}

/** The job's metrics as a verification result, or null when they do not look like one. */
export function verifyMetrics(job: Pick<Job, "kind" | "metrics">): VerifyMetrics | null {
  const metrics = job.metrics;
  if (job.kind !== "verify" || !metrics) return null;
  const looksRight =
    Array.isArray(metrics.runs) &&
    typeof metrics.arms === "object" &&
    metrics.arms !== null &&
    typeof metrics.differences === "object" &&
    metrics.differences !== null &&
    typeof metrics.summary === "string";
  return looksRight ? (metrics as unknown as VerifyMetrics) : null;
}

export const VERIFY_DEFAULTS = {
  fraction: schemaDefault("VerifyCreate", "fraction", 0.1),
  seeds: schemaDefault("VerifyCreate", "seeds", 3),
  method: schemaDefault("VerifyCreate", "method", "harm"),
};

export const verifyKeys = {
  harmColumns: (datasetId: number, auditJobId: number) =>
    ["verify", datasetId, "harm-columns", auditJobId] as const,
};

/**
 * The harm columns (`harm`, `harm_<method>`) the audit computed, read off one scored pair: a
 * column the audit did not compute is null there.
 */
export function useHarmColumns(datasetId: number, auditJobId: number) {
  return useQuery({
    queryKey: verifyKeys.harmColumns(datasetId, auditJobId),
    queryFn: async () => {
      const page = unwrap(
        await api.GET("/api/v1/datasets/{dataset_id}/pairs", {
          params: { path: { dataset_id: datasetId }, query: { job_id: auditJobId, limit: 1 } },
        }),
      );
      const scores = page.items[0]?.scores ?? {};
      return Object.entries(scores)
        .filter(([column, value]) => column.startsWith("harm") && typeof value === "number")
        .map(([column]) => column);
    },
    // A finished audit's scores never change.
    staleTime: Infinity,
  });
}

export function useLaunchVerify(datasetId: number) {
  return useMutation({
    mutationFn: async (body: VerifyCreate) =>
      unwrap(
        await api.POST("/api/v1/datasets/{dataset_id}/jobs", {
          params: { path: { dataset_id: datasetId } },
          body,
        }),
      ),
  });
}
