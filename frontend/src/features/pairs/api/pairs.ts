import {
  keepPreviousData,
  useInfiniteQuery,
  useMutation,
  useQuery,
  useQueryClient,
  type InfiniteData,
} from "@tanstack/react-query";
import { api, type Schemas } from "../../../api/client";
import { unwrap } from "../../../api/errors";

export type Pair = Schemas["PairPublic"];
export type PairsPage = Schemas["PairsPage"];
/** `index` or a score column, with a leading `-` for descending (the API's `sort`). */
export type Sort = string;
export type FlagFilter = "all" | "flagged" | "unflagged";

/** Rows fetched per request while scrolling the ranked table. */
export const PAGE_SIZE = 100;
/** Bins of the harm histogram. */
export const HISTOGRAM_BINS = 40;

export type ScoreHistogram = Schemas["Histogram"];

export interface PairsQuery {
  jobId: number;
  sort: Sort;
  filter: FlagFilter;
}

export const pairKeys = {
  all: (datasetId: number) => ["pairs", datasetId] as const,
  list: (datasetId: number, query: PairsQuery) => ["pairs", datasetId, "list", query] as const,
  histogram: (datasetId: number, jobId: number, column: string, bins: number) =>
    ["pairs", datasetId, "histogram", jobId, column, bins] as const,
  flaggedCount: (datasetId: number) => ["pairs", datasetId, "flagged-count"] as const,
};

function flaggedParam(filter: FlagFilter): boolean | undefined {
  return filter === "all" ? undefined : filter === "flagged";
}

async function fetchPairs(
  datasetId: number,
  query: { job_id?: number; sort?: Sort; flagged?: boolean; offset: number; limit: number },
): Promise<PairsPage> {
  return unwrap(
    await api.GET("/api/v1/datasets/{dataset_id}/pairs", {
      params: { path: { dataset_id: datasetId }, query },
    }),
  );
}

/** The job's scored pairs in `sort` order, fetched a page at a time as the table scrolls. */
export function usePairs(datasetId: number, query: PairsQuery) {
  return useInfiniteQuery({
    queryKey: pairKeys.list(datasetId, query),
    queryFn: ({ pageParam }) =>
      fetchPairs(datasetId, {
        job_id: query.jobId,
        sort: query.sort,
        flagged: flaggedParam(query.filter),
        offset: pageParam,
        limit: PAGE_SIZE,
      }),
    initialPageParam: 0,
    getNextPageParam: (last, pages) => {
      const loaded = pages.reduce((n, page) => n + page.items.length, 0);
      return loaded < last.total && last.items.length > 0 ? loaded : undefined;
    },
    placeholderData: keepPreviousData,
  });
}

/** The server-side histogram of a score column over the job's training pairs (no texts). */
export function useScoreHistogram(datasetId: number, jobId: number, column = "harm", bins = HISTOGRAM_BINS) {
  return useQuery({
    queryKey: pairKeys.histogram(datasetId, jobId, column, bins),
    queryFn: async () =>
      unwrap(
        await api.GET("/api/v1/jobs/{job_id}/histogram", {
          params: { path: { job_id: jobId }, query: { column, bins } },
        }),
      ),
    // Scores of a finished job never change.
    staleTime: Infinity,
  });
}

/** How many pairs of the dataset are flagged (they are left out of exports). */
export function useFlaggedCount(datasetId: number) {
  return useQuery({
    queryKey: pairKeys.flaggedCount(datasetId),
    queryFn: async () => (await fetchPairs(datasetId, { flagged: true, offset: 0, limit: 1 })).total,
  });
}

export function useSetFlag(datasetId: number) {
  const queryClient = useQueryClient();
  const lists = { queryKey: [...pairKeys.all(datasetId), "list"] };
  const patch = (pairId: number, change: Pick<Pair, "flagged" | "note">) =>
    queryClient.setQueriesData<InfiniteData<PairsPage>>(
      lists,
      (data) =>
        data && {
          ...data,
          pages: data.pages.map((page) => ({
            ...page,
            items: page.items.map((item) => (item.id === pairId ? { ...item, ...change } : item)),
          })),
        },
    );
  return useMutation({
    mutationFn: async ({ pair, flagged, note }: { pair: Pair; flagged: boolean; note?: string | null }) =>
      unwrap(
        await api.PUT("/api/v1/datasets/{dataset_id}/pairs/{pair_id}/flag", {
          params: { path: { dataset_id: datasetId, pair_id: pair.id } },
          body: { flagged, note: note ?? null },
        }),
      ),
    // Optimistic: the checkbox follows the click at once and snaps back if the server refuses.
    // Rows are patched in place (not refetched) so the ranking does not jump under the cursor.
    onMutate: async ({ pair, flagged, note }) => {
      await queryClient.cancelQueries(lists);
      patch(pair.id, { flagged, note: note ?? null });
      return { before: { flagged: pair.flagged, note: pair.note } };
    },
    onError: (_error, { pair }, context) => {
      if (context) patch(pair.id, context.before);
    },
    // The server's copy has no scores (they belong to a job), so only its flag fields are taken.
    onSuccess: (updated) => patch(updated.id, { flagged: updated.flagged, note: updated.note }),
    onSettled: () => queryClient.invalidateQueries({ queryKey: pairKeys.flaggedCount(datasetId) }),
  });
}

function useRefreshFlags(datasetId: number) {
  const queryClient = useQueryClient();
  return () =>
    Promise.all([
      queryClient.invalidateQueries({ queryKey: [...pairKeys.all(datasetId), "list"] }),
      queryClient.invalidateQueries({ queryKey: pairKeys.flaggedCount(datasetId) }),
    ]);
}

export function useFlagTop(datasetId: number) {
  const refresh = useRefreshFlags(datasetId);
  return useMutation({
    mutationFn: async ({ jobId, fraction }: { jobId: number; fraction: number }) =>
      unwrap(
        await api.POST("/api/v1/datasets/{dataset_id}/flags", {
          params: { path: { dataset_id: datasetId } },
          body: { job_id: jobId, top_fraction: fraction },
        }),
      ),
    onSuccess: refresh,
  });
}

/** Flag the first `budget` pairs of a group audit's greedy selection (a fraction when < 1). */
export function useFlagBudget(datasetId: number) {
  const refresh = useRefreshFlags(datasetId);
  return useMutation({
    mutationFn: async ({ jobId, budget }: { jobId: number; budget: number }) =>
      unwrap(
        await api.POST("/api/v1/datasets/{dataset_id}/flags", {
          params: { path: { dataset_id: datasetId } },
          body: { job_id: jobId, rule: "greedy", budget },
        }),
      ),
    onSuccess: refresh,
  });
}

export type Interactions = Schemas["Interactions"];

/** A pair's strongest interactions in a group audit (κ > 0 redundant, < 0 complementary). */
export function useInteractions(datasetId: number, jobId: number, pairId: number, enabled: boolean) {
  return useQuery({
    queryKey: [...pairKeys.all(datasetId), "interactions", jobId, pairId],
    queryFn: async () =>
      unwrap(
        await api.GET("/api/v1/datasets/{dataset_id}/pairs/{pair_id}/interactions", {
          params: { path: { dataset_id: datasetId, pair_id: pairId }, query: { job_id: jobId } },
        }),
      ),
    enabled,
    staleTime: Infinity,
  });
}

export function useClearFlags(datasetId: number) {
  const refresh = useRefreshFlags(datasetId);
  return useMutation({
    mutationFn: async () =>
      unwrap(
        await api.DELETE("/api/v1/datasets/{dataset_id}/flags", {
          params: { path: { dataset_id: datasetId } },
        }),
      ),
    onSuccess: refresh,
  });
}
