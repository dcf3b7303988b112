import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, type Schemas } from "../../../api/client";
import { unwrap } from "../../../api/errors";

export type Job = Schemas["JobPublic"];
export type AuditCreate = Schemas["AuditCreate"];
export type JobStatus = Job["status"];

/** How often a queued or running job is polled. */
export const POLL_MS = 1000;

export const jobKeys = {
  forDataset: (datasetId: number) => ["jobs", "dataset", datasetId] as const,
  one: (jobId: number) => ["jobs", jobId] as const,
};

export function isActive(status: JobStatus): boolean {
  return status === "queued" || status === "running";
}

/** "Audit (job 3)", "Verify (job 4)": the number is the job's id, shared by every dataset and
 *  kind, so it is named as such (a dataset's first audit is not "Audit #2"). */
export function jobTitle(job: Pick<Job, "id" | "kind">): string {
  return `${job.kind.charAt(0).toUpperCase()}${job.kind.slice(1)} (job ${job.id})`;
}

/** What a job is about, beside its title: an audit's model, the audit a verification retrains. */
export function jobDetail(job: Pick<Job, "kind" | "config">): string {
  const { config } = job;
  if (job.kind === "verify" && config.audit_job_id !== undefined) {
    return `of audit #${String(config.audit_job_id)}`;
  }
  return String(config.model ?? config.method ?? "");
}

export function useJobs(datasetId: number) {
  return useQuery({
    queryKey: jobKeys.forDataset(datasetId),
    queryFn: async () =>
      unwrap(
        await api.GET("/api/v1/datasets/{dataset_id}/jobs", {
          params: { path: { dataset_id: datasetId } },
        }),
      ),
    // The list only needs to notice jobs finishing; the selected job polls itself faster.
    refetchInterval: (query) =>
      query.state.data?.items.some((job) => isActive(job.status)) ? 3 * POLL_MS : false,
  });
}

/** One job, polled every second while it is queued or running. */
export function useJob(jobId: number | null) {
  const queryClient = useQueryClient();
  return useQuery({
    queryKey: jobKeys.one(jobId ?? -1),
    enabled: jobId !== null,
    queryFn: async () => {
      const job = unwrap(
        await api.GET("/api/v1/jobs/{job_id}", { params: { path: { job_id: jobId! } } }),
      );
      // Keep the dataset's job list in step without waiting for its own (slower) poll.
      queryClient.setQueryData<Schemas["JobsPage"]>(jobKeys.forDataset(job.dataset_id), (page) =>
        page && {
          ...page,
          items: page.items.map((item) => (item.id === job.id ? job : item)),
        },
      );
      return job;
    },
    refetchInterval: (query) => {
      const status = query.state.data?.status;
      return status === undefined || isActive(status) ? POLL_MS : false;
    },
  });
}

export function useCreateJob(datasetId: number) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (config: AuditCreate) =>
      unwrap(
        await api.POST("/api/v1/datasets/{dataset_id}/jobs", {
          params: { path: { dataset_id: datasetId } },
          body: config,
        }),
      ),
    onSuccess: (job) => {
      queryClient.setQueryData(jobKeys.one(job.id), job);
      return queryClient.invalidateQueries({ queryKey: jobKeys.forDataset(datasetId) });
    },
  });
}

export function useCancelJob() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (jobId: number) =>
      unwrap(await api.POST("/api/v1/jobs/{job_id}/cancel", { params: { path: { job_id: jobId } } })),
    onSuccess: (job) => {
      queryClient.setQueryData(jobKeys.one(job.id), job);
      return queryClient.invalidateQueries({ queryKey: jobKeys.forDataset(job.dataset_id) });
    },
  });
}
