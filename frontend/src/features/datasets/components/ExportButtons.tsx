import { errorMessage } from "../../../api/errors";
import { useExportDataset, type Dataset, type ExportFormat } from "../api/datasets";

const FORMATS: ExportFormat[] = ["jsonl", "csv", "parquet"];

/** Download the dataset without its flagged pairs, in the uploaded schema. */
export function ExportButtons({ dataset }: { dataset: Dataset }) {
  const exporter = useExportDataset(dataset);
  return (
    <div className="export" role="group" aria-label="Export cleaned dataset">
      <span className="muted">Download without flagged pairs:</span>
      {FORMATS.map((format) => (
        <button
          key={format}
          type="button"
          onClick={() => exporter.mutate(format)}
          disabled={exporter.isPending}
        >
          {format.toUpperCase()}
        </button>
      ))}
      {exporter.isError && (
        <span role="alert" className="error">
          Export failed: {errorMessage(exporter.error)}
        </span>
      )}
    </div>
  );
}
