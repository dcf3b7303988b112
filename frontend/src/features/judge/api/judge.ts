// The LLM judge (backend/routers/judge.py): its defaults, the estimate before launch, and the
// launch of a judge job. The key is never a field of a job: the caller's own key is api/judgeKey.ts.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, type Schemas } from "../../../api/client";
import { unwrap } from "../../../api/errors";

export type JudgeDefaults = Schemas["JudgeDefaults"];
export type JudgeCreate = Schemas["JudgeCreate"];
export type JudgeEstimateCreate = Schemas["JudgeEstimateCreate"];
export type JudgeEstimate = Schemas["JudgeEstimate"];
export type JudgeTemplate = Schemas["JudgeTemplateIn"];
export type JudgeJob = Schemas["JobPublic"];

/** The server's default for requests in flight at once (JudgeCreate.max_concurrency). */
export const DEFAULT_CONCURRENCY = 4;
export const MAX_CONCURRENCY = 64;

export function useJudgeDefaults() {
  return useQuery({
    queryKey: ["judge-defaults"] as const,
    staleTime: Infinity,
    queryFn: async () => unwrap(await api.GET("/api/v1/judge/defaults")),
  });
}

export function useJudgeEstimate(datasetId: number) {
  return useMutation({
    mutationFn: async (body: JudgeEstimateCreate) =>
      unwrap(
        await api.POST("/api/v1/datasets/{dataset_id}/judge/estimate", {
          params: { path: { dataset_id: datasetId } },
          body,
        }),
      ),
  });
}

export function useLaunchJudge(datasetId: number) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (body: JudgeCreate) =>
      unwrap(
        await api.POST("/api/v1/datasets/{dataset_id}/judge", {
          params: { path: { dataset_id: datasetId } },
          body,
        }),
      ),
    // The jobs list (features/jobs) shows the new job; its queries all start with "jobs".
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ["jobs"] }),
  });
}
