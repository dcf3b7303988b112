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
/** Rows per request when collecting every score of a job for the histogram. */
export const SCORES_PAGE_SIZE = 1000;

export interface PairsQuery {
  jobId: number;
  sort: Sort;
  filter: FlagFilter;
}

export const pairKeys = {
  all: (datasetId: number) => ["pairs", datasetId] as const,
  list: (datasetId: number, query: PairsQuery) => ["pairs", datasetId, "list", query] as const,
  scores: (datasetId: number, jobId: number) => ["pairs", datasetId, "scores", jobId] as const,
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

/** Every harm score of the job (for the histogram), collected page by page. */
export function useHarmScores(datasetId: number, jobId: number) {
  return useQuery({
    queryKey: pairKeys.scores(datasetId, jobId),
    queryFn: async () => {
      const harms: number[] = [];
      // Step by what came back: the server may cap `limit` below what was asked.
      for (let offset = 0; ; ) {
        const page = await fetchPairs(datasetId, {
          job_id: jobId,
          sort: "index",
          offset,
          limit: SCORES_PAGE_SIZE,
        });
        for (const pair of page.items) {
          const harm = pair.scores?.harm;
          if (typeof harm === "number" && Number.isFinite(harm)) harms.push(harm);
        }
        offset += page.items.length;
        if (page.items.length === 0 || offset >= page.total) break;
      }
      return harms;
    },
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
  return useMutation({
    mutationFn: async ({ pair, flagged, note }: { pair: Pair; flagged: boolean; note?: string | null }) =>
      unwrap(
        await api.PUT("/api/v1/datasets/{dataset_id}/pairs/{pair_id}/flag", {
          params: { path: { dataset_id: datasetId, pair_id: pair.id } },
          body: { flagged, note: note ?? null },
        }),
      ),
    onSuccess: (updated) => {
      // Update the row in place so the table does not jump; the server's copy keeps the scores
      // of whichever job the cached page belongs to.
      queryClient.setQueriesData<InfiniteData<PairsPage>>(
        { queryKey: [...pairKeys.all(datasetId), "list"] },
        (data) =>
          data && {
            ...data,
            pages: data.pages.map((page) => ({
              ...page,
              items: page.items.map((item) =>
                item.id === updated.id ? { ...item, flagged: updated.flagged, note: updated.note } : item,
              ),
            })),
          },
      );
      return queryClient.invalidateQueries({ queryKey: pairKeys.flaggedCount(datasetId) });
    },
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
