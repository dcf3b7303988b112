import { useState } from "react";
import {
  useExportDataset,
  useExportReviewLog,
  type AmbiguousMode,
  type Dataset,
  type ExportFormat,
} from "../api/datasets";
import { Alert } from "../../../components/ui/Alert";

const FORMATS: ExportFormat[] = ["jsonl", "csv", "parquet"];

const AMBIGUOUS_MODES: { value: AmbiguousMode; label: string }[] = [
  { value: "include", label: "keep them" },
  { value: "exclude", label: "leave them out" },
  { value: "only", label: "only them (the ambiguous file)" },
];

/** A finished audit or judge job whose scores can give the export its soft labels. */
export interface SoftLabelSource {
  id: number;
  label: string;
}

/** Download the reviewed dataset in its uploaded schema: by default without the flagged pairs and
 * with the swapped ones corrected; optionally only (or none of) the pairs with a tag, and with soft
 * labels from a job (its `ambiguous` pairs kept, left out or alone). The review log is a separate
 * file. */
export function ExportButtons({
  dataset,
  softLabelSources = [],
}: {
  dataset: Dataset;
  softLabelSources?: SoftLabelSource[];
}) {
  const exporter = useExportDataset(dataset);
  const log = useExportReviewLog(dataset);
  const [excludeFlagged, setExcludeFlagged] = useState(true);
  const [applySwaps, setApplySwaps] = useState(true);
  const [tag, setTag] = useState("");
  const [notTag, setNotTag] = useState("");
  const [softJob, setSoftJob] = useState("");
  const [ambiguous, setAmbiguous] = useState<AmbiguousMode>("include");
  const error = exporter.error ?? log.error;
  // Only the tags some pair carries (a filter on any other would export nothing).
  const tags = Object.entries(dataset.tag_counts ?? {}).filter(([, count]) => count > 0);
  const softLabelsJob = softJob ? Number(softJob) : null;
  const options = { excludeFlagged, applySwaps, tag, notTag, softLabelsJob, ambiguous };
  const tagOptions = tags.map(([name, count]) => (
    <option key={name} value={name}>
      {name} ({count.toLocaleString()})
    </option>
  ));
  return (
    <div className="export" role="group" aria-label="Export cleaned dataset">
      <label className="inline">
        <input type="checkbox" checked={excludeFlagged} onChange={(e) => setExcludeFlagged(e.target.checked)} />
        leave out flagged pairs
      </label>
      <label className="inline">
        <input type="checkbox" checked={applySwaps} onChange={(e) => setApplySwaps(e.target.checked)} />
        apply swaps
      </label>
      <details className="export-options">
        <summary>Filter and soft labels</summary>
        <label className="inline">
          only pairs tagged
          <select value={tag} onChange={(e) => setTag(e.target.value)} disabled={tags.length === 0}>
            <option value="">(any pair)</option>
            {tagOptions}
          </select>
        </label>
        <label className="inline">
          leave out pairs tagged
          <select value={notTag} onChange={(e) => setNotTag(e.target.value)} disabled={tags.length === 0}>
            <option value="">(none)</option>
            {tagOptions}
          </select>
        </label>
        <label className="inline">
          soft labels from
          <select
            value={softJob}
            onChange={(e) => setSoftJob(e.target.value)}
            disabled={softLabelSources.length === 0}
          >
            <option value="">(no soft labels)</option>
            {softLabelSources.map((source) => (
              <option key={source.id} value={source.id}>
                {source.label}
              </option>
            ))}
          </select>
        </label>
        <label className="inline">
          the job's ambiguous pairs
          <select
            value={ambiguous}
            onChange={(e) => setAmbiguous(e.target.value as AmbiguousMode)}
            disabled={softLabelsJob === null}
          >
            {AMBIGUOUS_MODES.map((mode) => (
              <option key={mode.value} value={mode.value}>
                {mode.label}
              </option>
            ))}
          </select>
        </label>
        {tags.length === 0 && <p className="muted">No pair of this dataset has a tag yet.</p>}
      </details>
      <span className="muted">Download:</span>
      {FORMATS.map((format) => (
        <button
          key={format}
          type="button"
          onClick={() => exporter.mutate({ format, options })}
          disabled={exporter.isPending}
        >
          {format.toUpperCase()}
        </button>
      ))}
      <button type="button" onClick={() => log.mutate("jsonl")} disabled={log.isPending}>
        Review log
      </button>
      {error && (
        <Alert title="Export failed" error={error} />
      )}
    </div>
  );
}
