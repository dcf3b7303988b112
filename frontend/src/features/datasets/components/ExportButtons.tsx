import { useState } from "react";
import { useExportDataset, useExportReviewLog, type Dataset, type ExportFormat } from "../api/datasets";
import { Alert } from "../../../components/ui/Alert";

const FORMATS: ExportFormat[] = ["jsonl", "csv", "parquet"];

/** Download the reviewed dataset in its uploaded schema: by default without the flagged pairs and
 * with the swapped ones corrected; the review log is a separate file. */
export function ExportButtons({ dataset }: { dataset: Dataset }) {
  const exporter = useExportDataset(dataset);
  const log = useExportReviewLog(dataset);
  const [excludeFlagged, setExcludeFlagged] = useState(true);
  const [applySwaps, setApplySwaps] = useState(true);
  const error = exporter.error ?? log.error;
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
      <span className="muted">Download:</span>
      {FORMATS.map((format) => (
        <button
          key={format}
          type="button"
          onClick={() => exporter.mutate({ format, options: { excludeFlagged, applySwaps } })}
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
