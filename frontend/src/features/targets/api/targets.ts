// Target sets of a dataset and targeted audits' results: the small set of pairs showing the
// behaviour the user wants, the pairs that push against it, two targets' rankings side by side.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, type Schemas } from "../../../api/client";
import { unwrap } from "../../../api/errors";

export type TargetSet = Schemas["TargetSetPublic"];
export type TargetSetDetail = Schemas["TargetSetDetail"];
export type TargetSetCreate = Schemas["TargetSetCreate"];
export type TargetComparison = Schemas["TargetComparison"];
export type TargetRule = Schemas["FromRule"]["rule"];

/** The rules a target can be built by, with what each keeps (backend/services/target_rules.py). */
export const RULES: { value: TargetRule; label: string }[] = [
  { value: "shorter_preferred", label: "The shorter response is preferred" },
  { value: "longer_preferred", label: "The longer response is preferred" },
  { value: "refusal_when_harmful", label: "A refusal is preferred when the prompt asks for harm" },
  { value: "helpful_when_harmless", label: "An answer beats a refusal when the prompt is harmless" },
];

export const TARGET_MIN = 20;
export const TARGET_MAX = 500;

const keys = {
  forDataset: (datasetId: number) => ["target-sets", datasetId] as const,
  one: (datasetId: number, id: number) => ["target-sets", datasetId, id] as const,
};

export function useTargetSets(datasetId: number) {
  return useQuery({
    queryKey: keys.forDataset(datasetId),
    queryFn: async () =>
      unwrap(
        await api.GET("/api/v1/datasets/{dataset_id}/target-sets", {
          params: { path: { dataset_id: datasetId } },
        }),
      ),
  });
}

export function useTargetSet(datasetId: number, id: number | null) {
  return useQuery({
    queryKey: keys.one(datasetId, id ?? -1),
    enabled: id !== null,
    queryFn: async () =>
      unwrap(
        await api.GET("/api/v1/datasets/{dataset_id}/target-sets/{target_set_id}", {
          params: { path: { dataset_id: datasetId, target_set_id: id! } },
        }),
      ),
  });
}

export function useCreateTargetSet(datasetId: number) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (body: TargetSetCreate) =>
      unwrap(
        await api.POST("/api/v1/datasets/{dataset_id}/target-sets", {
          params: { path: { dataset_id: datasetId } },
          body,
        }),
      ),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: keys.forDataset(datasetId) }),
  });
}

export function useDeleteTargetSet(datasetId: number) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (id: number) => {
      const result = await api.DELETE("/api/v1/datasets/{dataset_id}/target-sets/{target_set_id}", {
        params: { path: { dataset_id: datasetId, target_set_id: id } },
      });
      if (!result.response.ok) unwrap(result);
    },
    onSuccess: () => queryClient.invalidateQueries({ queryKey: keys.forDataset(datasetId) }),
  });
}

/** The pairs of a targeted audit that push the model away from its target most. */
export function usePushingPairs(datasetId: number, jobId: number, limit = 10) {
  return useQuery({
    queryKey: ["pushing-pairs", datasetId, jobId, limit] as const,
    queryFn: async () =>
      unwrap(
        await api.GET("/api/v1/datasets/{dataset_id}/pairs", {
          params: {
            path: { dataset_id: datasetId },
            query: { job_id: jobId, sort: "-harm_influence", limit },
          },
        }),
      ),
  });
}

export function useTargetComparison(datasetId: number, jobA: number | null, jobB: number | null, k: number) {
  return useQuery({
    queryKey: ["target-comparison", datasetId, jobA, jobB, k] as const,
    enabled: jobA !== null && jobB !== null && jobA !== jobB,
    queryFn: async () =>
      unwrap(
        await api.GET("/api/v1/datasets/{dataset_id}/target-comparison", {
          params: {
            path: { dataset_id: datasetId },
            query: { job_a: jobA!, job_b: jobB!, column: "harm_influence", k },
          },
        }),
      ),
  });
}
