import { forwardRef, useEffect, useState } from "react";
import { SHOWN_COLUMNS } from "../../../api/scoreColumns";
import { useInteractions, usePairHistory, type Interactions, type Pair, type ReviewState } from "../api/pairs";
import { Num } from "../../../components/ui/Num";
import { Table } from "../../../components/ui/Table";
import { describeColumn, harmColumnOf } from "./scoreText";
import { WordDiff } from "./WordDiff";
import { Alert } from "../../../components/ui/Alert";

interface Props {
  pair: Pair;
  rank: number | null;
  onFlag: (flagged: boolean, note: string | null) => void;
  /** Set any review state (keep, swap, back to unreviewed). */
  onState?: (state: ReviewState, note: string | null) => void;
  busy?: boolean;
  /** A viewer: no decisions, only the pair's state. */
  readOnly?: boolean;
  /** A group audit: list the pairs this one interacts with most. */
  interactions?: { datasetId: number; jobId: number };
  /** Show the pair's review history. */
  datasetId?: number;
  /** The audit's default method, which filled `harm`. */
  defaultMethod?: string | null;
}

type Scores = NonNullable<Pair["scores"]>;
type Interaction = Interactions["items"][number];

/** The pair's score list: the registry's shown columns, in its order. */
const SHOWN_SCORES = SHOWN_COLUMNS.map((c) => c.column as keyof Scores);

/** One pair in full: the prompt, then chosen and rejected side by side (whitespace kept). */
export const PairDetail = forwardRef<HTMLTextAreaElement, Props>(function PairDetail(
  { pair, rank, onFlag, onState, busy = false, readOnly = false, interactions, datasetId, defaultMethod = null },
  noteRef,
) {
  const [note, setNote] = useState(pair.note ?? "");
  const [diff, setDiff] = useState(false);
  useEffect(() => setNote(pair.note ?? ""), [pair.id, pair.note]);

  const scores = pair.scores;
  const metadata = Object.entries(pair.metadata ?? {});
  return (
    <article className="pair-detail card" aria-labelledby="pair-title">
      <header className="section-head">
        <h3 id="pair-title">
          Pair at row {pair.row}
          {(pair.rank ?? rank) !== null && <span className="muted"> · rank {pair.rank ?? rank}</span>}
          {pair.state !== "unreviewed" && (
            <span className={`tag tag-${pair.state}`} data-testid="pair-state">
              {pair.state}
            </span>
          )}
        </h3>
      </header>
      {scores && (
        <dl className="scores">
          {SHOWN_SCORES.filter(
            (key) => typeof scores[key] === "number" && !(defaultMethod && key === harmColumnOf(defaultMethod)),
          ).map((key) => {
            const text = describeColumn(key, defaultMethod);
            return (
            <div key={key} title={text.high ? `High: ${text.high}` : undefined}>
              <dt>{text.label}</dt>
              <dd>
                <Num value={scores[key] as number} unit={key === "group_order" ? undefined : text.unit} />
                {pair.percentiles?.[key] !== undefined && (
                  <span className="muted small"> · p{Math.round(pair.percentiles[key])}</span>
                )}
              </dd>
            </div>
            );
          })}
          {scores.split && (
            <div>
              <dt>split</dt>
              <dd>{scores.split}</dd>
            </div>
          )}
        </dl>
      )}
      {scores && pair.percentiles?.harm !== undefined && (
        <p className="muted small">
          Percentile p: the share of this audit's training pairs scoring at or below this one (p99: more
          harmful than 99% of them). Hover a score for what a high value means.
        </p>
      )}
      <section aria-label="Prompt">
        <h4>Prompt</h4>
        <pre className="text" tabIndex={0} aria-label="Prompt text">{pair.prompt}</pre>
      </section>
      <label className="inline">
        <input type="checkbox" checked={diff} onChange={(e) => setDiff(e.target.checked)} />
        word diff
      </label>
      {diff ? (
        <WordDiff chosen={pair.chosen} rejected={pair.rejected} />
      ) : (
        <div className="responses">
          <section aria-label="Chosen response" className="response chosen">
            <h4>Chosen{pair.state === "swapped" && " (exported as rejected)"}</h4>
            <pre className="text" tabIndex={0} aria-label="Chosen text">{pair.chosen}</pre>
          </section>
          <section aria-label="Rejected response" className="response rejected">
            <h4>Rejected{pair.state === "swapped" && " (exported as chosen)"}</h4>
            <pre className="text" tabIndex={0} aria-label="Rejected text">{pair.rejected}</pre>
          </section>
        </div>
      )}
      {metadata.length > 0 && (
        <dl className="metadata" aria-label="Metadata">
          {metadata.map(([key, value]) => (
            <div key={key}>
              <dt>{key}</dt>
              <dd>{typeof value === "string" ? value : JSON.stringify(value)}</dd>
            </div>
          ))}
        </dl>
      )}
      {interactions && (
        <PairInteractions datasetId={interactions.datasetId} jobId={interactions.jobId} pairId={pair.id} />
      )}
      {readOnly ? (
        <p className="muted" data-testid="read-only">
          {pair.state === "unreviewed" ? "Not reviewed yet" : `State: ${pair.state}`}
          {pair.note ? ` · note: ${pair.note}` : ""}. You are a viewer of this dataset: you can read and
          export it; its owner or a reviewer decides.
        </p>
      ) : (
      <div className="flag-form">
        <label>
          Note (optional)
          <textarea
            ref={noteRef}
            rows={2}
            value={note}
            onChange={(e) => setNote(e.target.value)}
            placeholder="Why is this pair wrong?"
          />
        </label>
        <div className="flag-buttons">
          {pair.flagged ? (
            <>
              <button type="button" onClick={() => onFlag(true, note || null)} disabled={busy}>
                Save note
              </button>
              <button type="button" onClick={() => onFlag(false, note || null)} disabled={busy}>
                Unflag pair
              </button>
            </>
          ) : (
            <button
              type="button"
              className="primary"
              onClick={() => onFlag(true, note || null)}
              disabled={busy}
            >
              Flag pair
            </button>
          )}
          {onState && (
            <>
              <button
                type="button"
                onClick={() => onState(pair.state === "kept" ? "unreviewed" : "kept", note || null)}
                disabled={busy}
              >
                {pair.state === "kept" ? "Unkeep" : "Keep pair"}
              </button>
              <button
                type="button"
                onClick={() => onState(pair.state === "swapped" ? "unreviewed" : "swapped", note || null)}
                disabled={busy}
              >
                {pair.state === "swapped" ? "Unswap" : "Swap chosen/rejected"}
              </button>
            </>
          )}
        </div>
      </div>
      )}
      {datasetId !== undefined && <PairHistory datasetId={datasetId} pairId={pair.id} />}
    </article>
  );
});

/** Who changed this pair's state or note, and when (undone changes struck through). */
function PairHistory({ datasetId, pairId }: { datasetId: number; pairId: number }) {
  const history = usePairHistory(datasetId, pairId);
  if (!history.data || history.data.length === 0) return null;
  return (
    <section aria-label="History" className="history">
      <h4>History</h4>
      <ol>
        {history.data.map((event, k) => (
          <li key={k} className={event.undone ? "undone" : undefined}>
            {new Date(event.at).toLocaleString()} · {event.user ?? "?"}: {event.old_state} → {event.new_state}
            {event.new_note && event.new_note !== event.old_note && ` (note: ${event.new_note})`}
            {event.undone && " · undone"}
          </li>
        ))}
      </ol>
    </section>
  );
}

/** The pairs this one interacts with most in a group audit, with κ and what it means. */
function PairInteractions({ datasetId, jobId, pairId }: { datasetId: number; jobId: number; pairId: number }) {
  const query = useInteractions(datasetId, jobId, pairId, true);
  return (
    <section aria-label="Strongest interactions" className="interactions">
      <h4>Strongest interactions</h4>
      <p className="muted small">
        κ(i, j) = Δθᵢᵀ H Δθⱼ. Redundant (κ &gt; 0): removing both lowers the validation loss by less than
        the two alone, as with near-duplicates. Complementary (κ &lt; 0): by more.
      </p>
      {query.isError && (
        <Alert title="Could not load interactions" error={query.error} />
      )}
      {query.data && query.data.items.length === 0 && (
        <p className="muted">No interactions: this pair is outside the greedy candidate set.</p>
      )}
      {query.data && query.data.items.length > 0 && (
        <Table
          label="Pairs interacting with this one"
          className="interactions-table"
          rows={query.data.items}
          rowKey={(item) => item.pair_id}
          rowProps={() => ({ "data-testid": "interaction" })}
          columns={[
            { key: "row", header: "row", cell: (item: Interaction) => item.row },
            { key: "kappa", header: "κ", className: "num", cell: (item: Interaction) => <Num value={item.kappa} /> },
            {
              key: "kind",
              header: "kind",
              cell: (item: Interaction) => <span className={`tag tag-${item.kind}`}>{item.kind}</span>,
            },
            {
              key: "order",
              header: "greedy order (1 = removed first)",
              cell: (item: Interaction) => item.group_order ?? "–",
            },
            { key: "prompt", header: "prompt", className: "prompt-cell", cell: (item: Interaction) => item.prompt.slice(0, 160) },
          ]}
        />
      )}
    </section>
  );
}
