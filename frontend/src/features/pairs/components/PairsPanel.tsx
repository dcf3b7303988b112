import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { useSearchParams } from "react-router";
import { Announcer } from "../../../components/ui/Announcer";
import { Dialog } from "../../../components/ui/Dialog";
import { formatNumber, formatPercent } from "../../../components/ui/format";
import { REVIEW_KEYS, useReviewKeys } from "../hooks/useReviewKeys";
import {
  toFilter,
  useSetState,
  useUndo,
  type ReviewState,
  useClearFlags,
  useFlagBudget,
  useFlaggedCount,
  useFlagTop,
  usePair,
  usePairs,
  useScoreHistogram,
  type FlagFilter,
  type Pair,
  type ScoreHistogram,
} from "../api/pairs";
import { FlagToolbar } from "./FlagToolbar";
import { HarmHistogram } from "./HarmHistogram";
import { PairDetail } from "./PairDetail";
import { PairsTable } from "./PairsTable";
import { BulkBar } from "./BulkBar";
import { useTagCounts, useTags } from "../api/tags";
import { ReviewFilterBar, SCORE_CHOICES, STATES, type ReviewFilters } from "./ReviewFilterBar";
import { ScoreLegend } from "./ScoreLegend";
import { count } from "../../../components/ui/count";
import { Alert } from "../../../components/ui/Alert";

/** The view's sort and filters live in the URL, so a view can be shared and reloaded. Each sort,
 *  filter and opening of a pair is a step of the browser's history (Back undoes it); moving from
 *  one open pair to another replaces the step, so a run through the list is not a hundred Backs. */
function useViewParams(
  scored: boolean,
): [string, ReviewFilters, (sort: string) => void, (f: ReviewFilters) => void, number | null, (id: number | null) => void] {
  const [params, setParams] = useSearchParams();
  const pairParam = Number(params.get("pair"));
  const pair = Number.isInteger(pairParam) && pairParam > 0 ? pairParam : null;
  const sort = params.get("sort") ?? (scored ? "-harm" : "index");
  const range = params.get("range");
  const [column, min, max] = range ? range.split(":") : [];
  const split = params.get("split");
  const filters: ReviewFilters = {
    split: split === "val" || split === "all" ? split : "train",
    q: params.get("q") ?? "",
    tag: params.get("tag") ?? "",
    notTag: params.get("not_tag") ?? "",
    states: params.getAll("state").filter((s): s is ReviewState => (STATES as string[]).includes(s)),
    range:
      column && scored
        ? { column, min: min ? Number(min) : undefined, max: max ? Number(max) : undefined }
        : null,
  };
  const changed = (current: URLSearchParams, change: (next: URLSearchParams) => void) => {
    const next = new URLSearchParams(current);
    change(next);
    return next;
  };
  // Applying the filters already shown is no step of its own.
  const update = (change: (next: URLSearchParams) => void, replace = false) =>
    setParams((current) => changed(current, change), {
      replace: replace || changed(params, change).toString() === params.toString(),
    });
  const setSort = (value: string) => update((next) => next.set("sort", value));
  const setFilters = (f: ReviewFilters) =>
    update((next) => {
      if (f.q) next.set("q", f.q);
      else next.delete("q");
      if (f.tag) next.set("tag", f.tag);
      else next.delete("tag");
      if (f.notTag) next.set("not_tag", f.notTag);
      else next.delete("not_tag");
      next.delete("state");
      f.states.forEach((s) => next.append("state", s));
      if (f.range) next.set("range", `${f.range.column}:${f.range.min ?? ""}:${f.range.max ?? ""}`);
      else next.delete("range");
      if (f.split && f.split !== "train") next.set("split", f.split);
      else next.delete("split");
    });
  // The open pair lives in the URL too: a reload or a shared link opens it again.
  const setPair = (id: number | null) =>
    update((next) => (id === null ? next.delete("pair") : next.set("pair", String(id))), pair !== null);
  return [sort, filters, setSort, setFilters, pair, setPair];
}

const DONE: Record<ReviewState, string> = {
  flagged: "Flagged",
  kept: "Kept",
  swapped: "Swapped",
  unreviewed: "Back to unreviewed:",
};

interface Props {
  datasetId: number;
  /** The audit to review; null browses the stored pairs (no scores) before any audit. */
  jobId: number | null;
  /** All pairs of the dataset, to say how many an export keeps. */
  datasetPairs: number;
  /** The budget of a group audit (its greedy selection's size); null for other audits. */
  groupBudget?: number | null;
  /** A viewer of a shared dataset: read and filter, no decisions. */
  readOnly?: boolean;
  /** The audit's default method (it filled `harm`), to name it where the ranking is shown. */
  defaultMethod?: string | null;
  /** Why the audit chose its default (metrics.default_choice.reason), shown beside the ranking. */
  defaultReason?: string | null;
}

/** Review one finished audit: the harm distribution, the ranked pairs, flagging. */
export function PairsPanel({
  datasetId,
  jobId,
  datasetPairs,
  groupBudget = null,
  readOnly = false,
  defaultMethod = null,
  defaultReason = null,
}: Props) {
  const scored = jobId !== null;
  const [sort, filters, setSort, setFilters, selectedId, setSelectedId] = useViewParams(scored);
  const [filter, setFilter] = useState<FlagFilter>("all");
  const [help, setHelp] = useState(false);
  const noteRef = useRef<HTMLTextAreaElement>(null);
  const [percent, setPercent] = useState("10");
  const [message, setMessage] = useState<string | null>(null);
  const [announcement, setAnnouncement] = useState("");
  const [expanded, setExpanded] = useState(false);
  // The pairs decided here, newest last: an undo goes back to the pair it undid.
  const decided = useRef<number[]>([]);
  const detailRef = useRef<HTMLDivElement>(null);

  const query = {
    jobId,
    sort,
    filter,
    q: filters.q,
    states: filters.states,
    range: filters.range,
    split: filters.split,
    tag: filters.tag,
    notTag: filters.notTag,
  };
  const pairs = usePairs(datasetId, query);
  const tags = useTags();
  const tagCounts = useTagCounts(datasetId);
  const setState = useSetState(datasetId);
  const undo = useUndo(datasetId);
  const sortColumn = sort.replace(/^-/, "");
  const histColumn =
    filters.range?.column ?? (SCORE_CHOICES.some((c) => c.column === sortColumn) ? sortColumn : "harm");
  const histogram = useScoreHistogram(datasetId, jobId, histColumn);
  const flaggedCount = useFlaggedCount(datasetId);
  const flagTop = useFlagTop(datasetId);
  const flagBudget = useFlagBudget(datasetId);
  const clearFlags = useClearFlags(datasetId);

  const rows = useMemo(() => pairs.data?.pages.flatMap((page) => page.items) ?? [], [pairs.data]);
  const total = pairs.data?.pages.at(-1)?.total ?? 0;
  const selectedIndex = rows.findIndex((pair) => pair.id === selectedId);
  // A pair opened from the URL that is not among the loaded rows (a reload deep in the list).
  const single = usePair(datasetId, selectedIndex < 0 ? selectedId : null, jobId);
  const selected = selectedIndex >= 0 ? rows[selectedIndex] : (single.data ?? null);
  const hasSelection = selected !== null;

  // Keep the open pair in view: beside the list on wide screens, below it on narrow ones.
  useEffect(() => {
    const box = detailRef.current;
    if (selectedId === null || !hasSelection || !box || typeof box.scrollIntoView !== "function") return;
    const { top, bottom } = box.getBoundingClientRect();
    if (bottom < 0 || top > window.innerHeight) box.scrollIntoView({ block: "nearest" });
  }, [selectedId, hasSelection]);

  const { refetch } = pairs;
  const { fetchNextPage, hasNextPage, isFetchingNextPage } = pairs;
  const mutateState = setState.mutate;
  const decide = useCallback(
    (pair: Pair, state: ReviewState, note?: string | null) => {
      decided.current = [...decided.current.slice(-49), pair.id];
      mutateState(
        { pair, state, note: note === undefined ? pair.note : note },
        {
          onSuccess: () => {
            setAnnouncement(`${DONE[state]} pair at row ${pair.row}.`);
            if (filter !== "all" || filters.states.length > 0) void refetch();
          },
          onError: (e) => setAnnouncement(`Could not save the decision on row ${pair.row}: ${e.message}`),
        },
      );
    },
    [mutateState, refetch, filter, filters.states.length],
  );
  // A flag is the "flagged" state; unflagging makes the pair unreviewed again.
  const toggleFlag = useCallback(
    (pair: Pair, flagged: boolean, note?: string | null) => decide(pair, flagged ? "flagged" : "unreviewed", note),
    [decide],
  );
  const move = (step: number) => {
    if (rows.length === 0) return;
    const next = selectedIndex < 0 ? 0 : Math.min(rows.length - 1, Math.max(0, selectedIndex + step));
    setSelectedId(rows[next].id);
    if (next >= rows.length - 5 && hasNextPage && !isFetchingNextPage) void fetchNextPage();
  };
  const decideAndAdvance = (state: ReviewState) => {
    if (!selected) return;
    decide(selected, selected.state === state ? "unreviewed" : state);
    move(1);
  };
  const undoLast = () =>
    undo.mutate(undefined, {
      onSuccess: (r) => {
        // One pair undone: it is the last one decided here, so the selection goes back to it.
        const back = r.changed === 1 ? decided.current.pop() : undefined;
        if (back !== undefined) setSelectedId(back);
        const text = `Undone: ${count(r.changed, "pair")} restored.`;
        setMessage(text);
        setAnnouncement(text);
      },
    });
  const viewerOnly = () => setMessage("You are a viewer of this dataset: you can read and export it, not decide.");
  useReviewKeys({
    move,
    flag: () => (readOnly ? viewerOnly() : decideAndAdvance("flagged")),
    keep: () => (readOnly ? viewerOnly() : decideAndAdvance("kept")),
    swap: () => (readOnly ? viewerOnly() : decideAndAdvance("swapped")),
    note: () => noteRef.current?.focus(),
    undo: () => (readOnly ? viewerOnly() : undoLast()),
    help: () => setHelp((shown) => !shown),
  });
  const sortKey = sort.replace(/^-/, "");
  const extra = SCORE_CHOICES.find((c) => c.column === sortKey && !["harm", "loss"].includes(sortKey));
  const extraColumn = extra?.column ?? "harm_gradient_similarity";
  // The third score column only where the audit computed it (or the list is sorted by it).
  const showExtra = extra !== undefined || rows.some((pair) => typeof scoreValue(pair, extraColumn) === "number");
  const scoreColumns = showExtra ? ["harm", "loss", extraColumn] : ["harm", "loss"];
  const needMore = useCallback(() => {
    if (hasNextPage && !isFetchingNextPage) void fetchNextPage();
  }, [fetchNextPage, hasNextPage, isFetchingNextPage]);

  const error =
    pairs.error ?? setState.error ?? undo.error ?? flagTop.error ?? flagBudget.error ?? clearFlags.error;

  return (
    <section className="card pairs-panel" aria-labelledby="pairs-title">
      <div className="section-head">
        <h2 id="pairs-title">{scored ? "Pairs ranked by harm" : "Pairs (no audit yet: browse, search, decide)"}</h2>
        <p className="muted" role="status" data-testid="flag-summary">
          {flaggedCount.data !== undefined &&
            `${flaggedCount.data.toLocaleString()} of ${count(datasetPairs, "pair")} flagged · an export keeps ${(datasetPairs - flaggedCount.data).toLocaleString()}`}
        </p>
      </div>
      {histogram.data && (
        <HarmHistogram
          histogram={histogram.data}
          column={histColumn}
          topFraction={histColumn === "harm" && Number(percent) > 0 ? Number(percent) / 100 : undefined}
          caption={histogramCaption(histogram.data)}
          selected={filters.range?.column === histColumn ? filters.range : null}
          onBrush={(min, max) => setFilters({ ...filters, range: { column: histColumn, min, max } })}
        />
      )}
      {histogram.isError && (
        <Alert title="Could not load the harm histogram" error={histogram.error} />
      )}
      <ReviewFilterBar
        value={filters}
        onChange={setFilters}
        sort={sort}
        onSortChange={setSort}
        scored={scored}
        tags={tags.data}
        tagCounts={tagCounts.data}
        defaultMethod={defaultMethod}
      />
      {!readOnly && <BulkBar datasetId={datasetId} filter={toFilter(query)} matching={total} onDone={setMessage} />}
      {jobId !== null && !readOnly && (
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
                setMessage(
                  `Pruned a budget of ${formatNumber(budget)} greedily: ${count(result.flagged ?? 0, "pair")} newly flagged.`,
                ),
            },
          )
        }
        onFlagTop={(fraction) =>
          flagTop.mutate(
            { jobId, fraction },
            {
              onSuccess: (result) =>
                setMessage(
                  `Flagged the top ${formatPercent(fraction)} by harm: ${count(result.flagged ?? 0, "pair")} newly flagged.`,
                ),
            },
          )
        }
        onClearFlags={() =>
          clearFlags.mutate(undefined, {
            onSuccess: (result) => setMessage(`Unflagged ${count(result.unflagged ?? 0, "pair")}.`),
          })
        }
      />
      )}
      {message && (
        <p className="success" role="status" data-testid="flag-message">
          {message}
        </p>
      )}
      {error && (
        <Alert error={error} />
      )}
      <p className="muted small">
        <span data-testid="match-count">
          {pairs.data?.pages.at(-1)?.total_is_estimate ? "about " : ""}
          {total.toLocaleString()}
        </span>{" "}
        {!scored
          ? "pairs match"
          : filters.split === "val"
            ? "validation pairs match (not scored)"
            : filters.split === "all"
              ? "pairs match (validation pairs are not scored)"
              : "scored training pairs match"}{filter !== "all" && ` (${filter})`}; validation
        pairs are not scored. Click a row to read it; ↑/↓ or j/k move through the ranking, f flags, K keeps, s
        swaps.{" "}
        <button type="button" className="link" onClick={() => setHelp((shown) => !shown)}>
          Keys (?)
        </button>
      </p>
      {help && (
        <Dialog title="Keyboard shortcuts" className="key-help" onClose={() => setHelp(false)}>
          <dl>
            {REVIEW_KEYS.map(([key, what]) => (
              <div key={key}>
                <dt>
                  <kbd>{key}</kbd>
                </dt>
                <dd>{what}</dd>
              </div>
            ))}
          </dl>
        </Dialog>
      )}
      {scored && (
        <ScoreLegend sortColumn={sortKey} columns={scoreColumns} defaultMethod={defaultMethod} defaultReason={defaultReason} />
      )}
      <label className="inline">
        <input type="checkbox" checked={expanded} onChange={(e) => setExpanded(e.target.checked)} />
        Longer previews (four lines a row)
      </label>
      <Announcer message={announcement} />
      <div className={selected ? "review-body with-pair" : "review-body"}>
      <PairsTable
        pairs={rows}
        total={total}
        sort={sort}
        onSortChange={setSort}
        selectedId={selectedId}
        onSelect={(pair) => setSelectedId(pair.id)}
        onToggleFlag={toggleFlag}
        readOnly={readOnly}
        onNeedMore={needMore}
        extraColumn={showExtra ? extraColumn : null}
        defaultMethod={defaultMethod}
        expanded={expanded}
      />
      <div className="review-detail" ref={detailRef}>
      {selected ? (
        <PairDetail
          pair={selected}
          rank={selectedIndex >= 0 ? selectedIndex + 1 : null}
          defaultMethod={defaultMethod}
          interactions={groupBudget !== null && jobId !== null ? { datasetId, jobId } : undefined}
          ref={noteRef}
          datasetId={datasetId}
          busy={setState.isPending}
          readOnly={readOnly}
          onFlag={(flagged, note) => toggleFlag(selected, flagged, note)}
          onState={(state, note) => decide(selected, state, note)}
        />
      ) : (
        rows.length > 0 && <p className="muted">Select a pair to compare its chosen and rejected responses.</p>
      )}
      </div>
      </div>
    </section>
  );
}

function histogramCaption({ n, quantiles }: ScoreHistogram): string {
  const format = (value: number) => formatNumber(value);
  const parts = [`${n.toLocaleString()} scored training pairs`];
  if (quantiles.p50 !== undefined) parts.push(`median ${format(quantiles.p50)}`);
  if (quantiles.p90 !== undefined) parts.push(`90th percentile ${format(quantiles.p90)}`);
  return `${parts.join(" · ")}.`;
}

function scoreValue(pair: Pair, column: string): number | null | undefined {
  return (pair.scores as Record<string, number | null | undefined> | null)?.[column];
}
