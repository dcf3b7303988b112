import { useCallback, useMemo, useState } from "react";
import { errorMessage } from "../../../api/errors";
import {
  useClearFlags,
  useFlagBudget,
  useFlaggedCount,
  useFlagTop,
  usePairs,
  useScoreHistogram,
  useSetFlag,
  type FlagFilter,
  type Pair,
  type ScoreHistogram,
  type Sort,
} from "../api/pairs";
import { FlagToolbar } from "./FlagToolbar";
import { HarmHistogram, tickFormatter } from "./HarmHistogram";
import { PairDetail } from "./PairDetail";
import { PairsTable } from "./PairsTable";

interface Props {
  datasetId: number;
  jobId: number;
  /** All pairs of the dataset, to say how many an export keeps. */
  datasetPairs: number;
  /** The budget of a group audit (its greedy selection's size); null for other audits. */
  groupBudget?: number | null;
}

/** Review one finished audit: the harm distribution, the ranked pairs, flagging. */
export function PairsPanel({ datasetId, jobId, datasetPairs, groupBudget = null }: Props) {
  const [sort, setSort] = useState<Sort>("-harm");
  const [filter, setFilter] = useState<FlagFilter>("all");
  const [percent, setPercent] = useState("10");
  const [selectedId, setSelectedId] = useState<number | null>(null);
  const [message, setMessage] = useState<string | null>(null);

  const pairs = usePairs(datasetId, { jobId, sort, filter });
  const histogram = useScoreHistogram(datasetId, jobId);
  const flaggedCount = useFlaggedCount(datasetId);
  const setFlag = useSetFlag(datasetId);
  const flagTop = useFlagTop(datasetId);
  const flagBudget = useFlagBudget(datasetId);
  const clearFlags = useClearFlags(datasetId);

  const rows = useMemo(() => pairs.data?.pages.flatMap((page) => page.items) ?? [], [pairs.data]);
  const total = pairs.data?.pages.at(-1)?.total ?? 0;
  const selectedIndex = rows.findIndex((pair) => pair.id === selectedId);
  const selected = selectedIndex >= 0 ? rows[selectedIndex] : null;

  const { refetch } = pairs;
  const mutateFlag = setFlag.mutate;
  const toggleFlag = useCallback(
    (pair: Pair, flagged: boolean, note?: string | null) =>
      mutateFlag(
        { pair, flagged, note: note === undefined ? pair.note : note },
        { onSuccess: () => filter !== "all" && refetch() },
      ),
    [mutateFlag, refetch, filter],
  );

  const { fetchNextPage, hasNextPage, isFetchingNextPage } = pairs;
  const needMore = useCallback(() => {
    if (hasNextPage && !isFetchingNextPage) void fetchNextPage();
  }, [fetchNextPage, hasNextPage, isFetchingNextPage]);

  const error = pairs.error ?? setFlag.error ?? flagTop.error ?? flagBudget.error ?? clearFlags.error;

  return (
    <section className="card pairs-panel" aria-labelledby="pairs-title">
      <div className="section-head">
        <h2 id="pairs-title">Pairs ranked by harm</h2>
        <p className="muted" role="status" data-testid="flag-summary">
          {flaggedCount.data !== undefined &&
            `${flaggedCount.data} of ${datasetPairs} pairs flagged · an export keeps ${datasetPairs - flaggedCount.data}`}
        </p>
      </div>
      {histogram.data && (
        <HarmHistogram
          histogram={histogram.data}
          topFraction={Number(percent) > 0 ? Number(percent) / 100 : undefined}
          caption={histogramCaption(histogram.data)}
        />
      )}
      {histogram.isError && (
        <p role="alert" className="error">
          Could not load the harm histogram: {errorMessage(histogram.error)}
        </p>
      )}
      <FlagToolbar
        filter={filter}
        onFilterChange={setFilter}
        percent={percent}
        onPercentChange={setPercent}
        busy={flagTop.isPending || flagBudget.isPending || clearFlags.isPending}
        groupBudget={groupBudget}
        onFlagBudget={(budget) =>
          flagBudget.mutate(
            { jobId, budget },
            {
              onSuccess: (result) =>
                setMessage(`Pruned a budget of ${budget} greedily: ${result.flagged ?? 0} pairs newly flagged.`),
            },
          )
        }
        onFlagTop={(fraction) =>
          flagTop.mutate(
            { jobId, fraction },
            { onSuccess: (result) => setMessage(`Flagged the top ${percent}%: ${result.flagged ?? 0} pairs newly flagged.`) },
          )
        }
        onClearFlags={() =>
          clearFlags.mutate(undefined, {
            onSuccess: (result) => setMessage(`Unflagged ${result.unflagged ?? 0} pairs.`),
          })
        }
      />
      {message && (
        <p className="success" role="status" data-testid="flag-message">
          {message}
        </p>
      )}
      {error && (
        <p role="alert" className="error">
          {errorMessage(error)}
        </p>
      )}
      <p className="muted small">
        {total.toLocaleString()} scored training pairs{filter !== "all" && ` (${filter})`}; validation
        pairs are not scored. Click a row to read it; ↑/↓ move through the ranking.
      </p>
      <PairsTable
        pairs={rows}
        total={total}
        sort={sort}
        onSortChange={setSort}
        selectedId={selectedId}
        onSelect={(pair) => setSelectedId(pair.id)}
        onToggleFlag={toggleFlag}
        onNeedMore={needMore}
      />
      {selected ? (
        <PairDetail
          pair={selected}
          rank={selectedIndex + 1}
          interactions={groupBudget !== null ? { datasetId, jobId } : undefined}
          busy={setFlag.isPending}
          onFlag={(flagged, note) => toggleFlag(selected, flagged, note)}
        />
      ) : (
        rows.length > 0 && <p className="muted">Select a pair to compare its chosen and rejected responses.</p>
      )}
    </section>
  );
}

function histogramCaption({ n, edges, quantiles }: ScoreHistogram): string {
  const format = tickFormatter(edges[0], edges[edges.length - 1]);
  const parts = [`${n.toLocaleString()} scored training pairs`];
  if (quantiles.p50 !== undefined) parts.push(`median ${format(quantiles.p50)}`);
  if (quantiles.p90 !== undefined) parts.push(`90th percentile ${format(quantiles.p90)}`);
  return `${parts.join(" · ")}.`;
}
