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
/** Rows per request when collecting a job's scores for the histogram. */
export const SCORES_PAGE_SIZE = 1000;
/**
 * The histogram reads at most this many pairs (in row order, which is unrelated to harm, so it
 * is a fair sample): pages carry the texts, and a scores-only endpoint does not exist yet.
 */
export const HISTOGRAM_MAX_PAIRS = 20_000;

export interface HarmSample {
  harms: number[];
  /** Scored pairs of the job; more than `harms.length` when the sample was capped. */
  total: number;
}

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

/** The job's harm scores for the histogram, collected page by page (capped, see above). */
export function useHarmScores(datasetId: number, jobId: number) {
  return useQuery({
    queryKey: pairKeys.scores(datasetId, jobId),
    queryFn: async (): Promise<HarmSample> => {
      const harms: number[] = [];
      let total = 0;
      // Step by what came back: the server may cap `limit` below what was asked.
      for (let offset = 0; offset < HISTOGRAM_MAX_PAIRS; ) {
        const page = await fetchPairs(datasetId, {
          job_id: jobId,
          sort: "index",
          offset,
          limit: Math.min(SCORES_PAGE_SIZE, HISTOGRAM_MAX_PAIRS - offset),
        });
        total = page.total;
        for (const pair of page.items) {
          const harm = pair.scores?.harm;
          if (typeof harm === "number" && Number.isFinite(harm)) harms.push(harm);
        }
        offset += page.items.length;
        if (page.items.length === 0 || offset >= page.total) break;
      }
      return { harms, total };
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
