import { useMutation, useQuery } from "@tanstack/react-query";
import { api, type Schemas } from "../../../api/client";
import { unwrap } from "../../../api/errors";
import { schemaDefault } from "../../../api/schemaDefaults";

export type Job = Schemas["JobPublic"];
export type VerifyCreate = Schemas["VerifyCreate"];

/** Training sets of a verification, per seed: all pairs, the pruned set, a random removal. */
export const ARMS = ["full", "pruned", "random", "top_k"] as const satisfies readonly Schemas["VerifyRun"]["arm"][];
export type Arm = (typeof ARMS)[number];
export const METRICS = ["accuracy", "loss"] as const;
export type Metric = (typeof METRICS)[number];
export const DIFFERENCES = [
  "pruned_minus_full",
  "pruned_minus_random",
  "pruned_minus_top_k",
  "top_k_minus_random",
] as const;
export type DifferenceKey = (typeof DIFFERENCES)[number] & keyof Schemas["VerifyDifferences"];

/** One metric of one arm over the seeds; `std` is null below 2 seeds. */
export type ArmSummary = Schemas["ArmSummary"];
/** Paired difference over seeds (or evaluation pairs) with its Student-t interval; null below n = 2. */
export type Difference = Schemas["PairedDifference"];
export type VerifyRun = Schemas["VerifyRun"];

type Stored = Schemas["VerifyMetrics"];

/** `metrics` of a succeeded verify job, with the parts a result needs known to be there. */
export type VerifyMetrics = Stored & {
  runs: VerifyRun[];
  arms: NonNullable<Stored["arms"]>;
  differences: NonNullable<Stored["differences"]>;
  summary: string;
  n_removed: number;
  n_train: number;
  n_eval: number;
  seeds: number[];
};

/** The job's metrics as a verification result, or null when they are not one (yet). */
export function verifyMetrics(job: Pick<Job, "kind" | "metrics">): VerifyMetrics | null {
  const metrics = job.metrics;
  if (job.kind !== "verify" || metrics?.kind !== "verify") return null;
  const complete =
    metrics.runs != null &&
    metrics.arms != null &&
    metrics.differences != null &&
    metrics.summary != null &&
    metrics.n_removed != null &&
    metrics.n_train != null &&
    metrics.n_eval != null &&
    metrics.seeds != null;
  return complete ? (metrics as VerifyMetrics) : null;
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
