import {
  keepPreviousData,
  useInfiniteQuery,
  useMutation,
  useQuery,
  useQueryClient,
  type InfiniteData,
} from "@tanstack/react-query";
import { api, type Schemas } from "../../../api/client";
import type { paths } from "../../../api/schema";
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

export type ReviewState = NonNullable<Pair["state"]>;
export type BulkKind = Schemas["BulkAction"]["action"];
export type BulkResult = Schemas["BulkResult"];
export type ReviewAction = Schemas["ReviewActionPublic"];

/** A score range on one column (either bound optional). */
export interface ScoreRange {
  column: string;
  min?: number;
  max?: number;
}

export interface PairsQuery {
  /** The audit whose scores to show; null browses the stored pairs before any audit. */
  jobId: number | null;
  sort: Sort;
  filter: FlagFilter;
  /** Words that must all occur in the texts. */
  q?: string;
  /** Review states to show (any of them); empty: all. */
  states?: ReviewState[];
  range?: ScoreRange | null;
  split?: "train" | "val" | "all";
  /** An exact-check tag the pairs carry (GET /methods/tags); empty: any. */
  tag?: string;
  /** An exact-check tag the pairs must not carry; empty: none left out. */
  notTag?: string;
}

/** The filter model the bulk actions take, from the list's query (same meaning). */
export function toFilter(query: PairsQuery): Schemas["PairFilter"] {
  const range = query.range;
  return {
    job_id: query.jobId,
    split: query.jobId === null ? "all" : (query.split ?? "train"),
    q: query.q ? query.q : null,
    states: query.states && query.states.length > 0 ? query.states : null,
    flagged: flaggedParam(query.filter) ?? null,
    scores: range ? [{ column: range.column, min: range.min ?? null, max: range.max ?? null }] : [],
    tags: query.tag ? [query.tag] : [],
    exclude_tags: query.notTag ? [query.notTag] : [],
  };
}

function rangeParam(range: ScoreRange | null | undefined): string[] | undefined {
  if (!range || (range.min === undefined && range.max === undefined)) return undefined;
  return [`${range.column}:${range.min ?? ""}:${range.max ?? ""}`];
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

type ListParams = NonNullable<paths["/api/v1/datasets/{dataset_id}/pairs"]["get"]["parameters"]["query"]>;

async function fetchPairs(datasetId: number, query: ListParams): Promise<PairsPage> {
  return unwrap(
    await api.GET("/api/v1/datasets/{dataset_id}/pairs", {
      params: { path: { dataset_id: datasetId }, query },
    }),
  );
}

/** The job's scored pairs matching the query in `sort` order, a keyset page at a time as the
 * table scrolls (page 1,000 costs the server what page 1 does). */
export function usePairs(datasetId: number, query: PairsQuery) {
  return useInfiniteQuery({
    queryKey: pairKeys.list(datasetId, query),
    queryFn: ({ pageParam }) =>
      fetchPairs(datasetId, {
        job_id: query.jobId ?? undefined,
        sort: query.sort,
        flagged: flaggedParam(query.filter),
        q: query.q || undefined,
        state: query.states && query.states.length > 0 ? query.states : undefined,
        score: rangeParam(query.range),
        split: query.split ?? "train",
        tag: query.tag ? [query.tag] : undefined,
        not_tag: query.notTag ? [query.notTag] : undefined,
        cursor: pageParam ?? undefined,
        limit: PAGE_SIZE,
      }),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    placeholderData: keepPreviousData,
  });
}

/** The server-side histogram of a score column over the job's training pairs (no texts). */
export function useScoreHistogram(
  datasetId: number,
  jobId: number | null,
  column = "harm",
  bins = HISTOGRAM_BINS,
) {
  return useQuery({
    queryKey: pairKeys.histogram(datasetId, jobId ?? 0, column, bins),
    enabled: jobId !== null,
    queryFn: async () =>
      unwrap(
        await api.GET("/api/v1/jobs/{job_id}/histogram", {
          params: { path: { job_id: jobId ?? 0 }, query: { column, bins } },
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
    queryFn: async () => (await fetchPairs(datasetId, { flagged: true, limit: 1 })).total,
  });
}

/** Set one pair's review state (and note), patching the loaded rows in place. */
export function useSetState(datasetId: number) {
  const queryClient = useQueryClient();
  const lists = { queryKey: [...pairKeys.all(datasetId), "list"] };
  const patch = (pairId: number, change: Partial<Pick<Pair, "flagged" | "note" | "state">>) =>
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
    mutationFn: async ({ pair, state, note }: { pair: Pair; state: ReviewState; note: string | null }) =>
      unwrap(
        await api.PUT("/api/v1/datasets/{dataset_id}/pairs/{pair_id}/review", {
          params: { path: { dataset_id: datasetId, pair_id: pair.id } },
          body: { state, note },
        }),
      ),
    onMutate: async ({ pair, state, note }) => {
      await queryClient.cancelQueries(lists);
      patch(pair.id, { state, note, flagged: state === "flagged" });
      return { before: { flagged: pair.flagged, note: pair.note, state: pair.state } };
    },
    onError: (_error, { pair }, context) => {
      if (context) patch(pair.id, context.before);
    },
    onSuccess: (updated) =>
      patch(updated.id, { flagged: updated.flagged, note: updated.note, state: updated.state }),
    onSettled: (_data, _error, { pair }) => {
      void queryClient.invalidateQueries({ queryKey: pairKeys.flaggedCount(datasetId) });
      void queryClient.invalidateQueries({ queryKey: [...pairKeys.all(datasetId), "actions"] });
      void queryClient.invalidateQueries({ queryKey: [...pairKeys.all(datasetId), "history", pair.id] });
      void queryClient.invalidateQueries({ queryKey: [...pairKeys.all(datasetId), "one", pair.id] });
    },
  });
}

/** A bulk action on everything a filter matches; `dry_run` only counts. */
export function useBulk(datasetId: number) {
  const refresh = useRefreshFlags(datasetId);
  return useMutation({
    mutationFn: async (body: Schemas["BulkAction"]) =>
      unwrap(
        await api.POST("/api/v1/datasets/{dataset_id}/review", {
          params: { path: { dataset_id: datasetId } },
          body,
        }),
      ),
    onSuccess: (result) => (result.dry_run ? undefined : refresh()),
  });
}

/** Undo the dataset's last review action. */
export function useUndo(datasetId: number) {
  const refresh = useRefreshFlags(datasetId);
  return useMutation({
    mutationFn: async () =>
      unwrap(
        await api.POST("/api/v1/datasets/{dataset_id}/review/undo", {
          params: { path: { dataset_id: datasetId } },
        }),
      ),
    onSuccess: refresh,
  });
}

/** The dataset's recent review actions, newest first. */
export function useReviewActions(datasetId: number) {
  return useQuery({
    queryKey: [...pairKeys.all(datasetId), "actions"],
    queryFn: async () =>
      unwrap(
        await api.GET("/api/v1/datasets/{dataset_id}/review/actions", {
          params: { path: { dataset_id: datasetId }, query: { limit: 10 } },
        }),
      ),
  });
}

/** One pair's review history, oldest first. */
export function usePairHistory(datasetId: number, pairId: number) {
  return useQuery({
    queryKey: [...pairKeys.all(datasetId), "history", pairId],
    queryFn: async () =>
      unwrap(
        await api.GET("/api/v1/datasets/{dataset_id}/pairs/{pair_id}/history", {
          params: { path: { dataset_id: datasetId, pair_id: pairId } },
        }),
      ),
  });
}

function useRefreshFlags(datasetId: number) {
  const queryClient = useQueryClient();
  return () =>
    Promise.all([
      queryClient.invalidateQueries({ queryKey: [...pairKeys.all(datasetId), "list"] }),
      queryClient.invalidateQueries({ queryKey: pairKeys.flaggedCount(datasetId) }),
      queryClient.invalidateQueries({ queryKey: [...pairKeys.all(datasetId), "actions"] }),
      queryClient.invalidateQueries({ queryKey: [...pairKeys.all(datasetId), "history"] }),
      queryClient.invalidateQueries({ queryKey: [...pairKeys.all(datasetId), "one"] }),
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

/** One pair with its review state and, given an audit, its scores: a pair opened from the URL
 *  that the loaded rows do not hold. */
export function usePair(datasetId: number, pairId: number | null, jobId: number | null) {
  return useQuery({
    queryKey: [...pairKeys.all(datasetId), "one", pairId, jobId],
    enabled: pairId !== null,
    queryFn: async () =>
      unwrap(
        await api.GET("/api/v1/datasets/{dataset_id}/pairs/{pair_id}", {
          params: {
            path: { dataset_id: datasetId, pair_id: pairId ?? 0 },
            query: { job_id: jobId ?? undefined },
          },
        }),
      ),
  });
}
