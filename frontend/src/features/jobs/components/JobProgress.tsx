import type { Job } from "../api/jobs";

const STATUS_LABEL: Record<Job["status"], string> = {
  queued: "Queued",
  running: "Running",
  succeeded: "Succeeded",
  failed: "Failed",
  cancelled: "Cancelled",
};

/** A job's live state: status, stage, progress; the error if it failed; metrics once done. */
export function JobProgress({ job }: { job: Job }) {
  const percent = Math.round(Math.min(1, Math.max(0, job.progress)) * 100);
  return (
    <div className="job-progress" aria-live="polite">
      <div className="job-progress-head">
        <span className={`status status-${job.status}`}>{STATUS_LABEL[job.status]}</span>
        <span className="stage">
          {job.stage ? <>Stage: {humanize(job.stage)}</> : job.status === "queued" && "Waiting for a worker…"}
        </span>
        <span className="num">{percent}%</span>
      </div>
      <div
        className="progress"
        role="progressbar"
        aria-label={`Job ${job.id} progress`}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={percent}
      >
        <div className={`progress-fill status-${job.status}`} style={{ width: `${percent}%` }} />
      </div>
      {job.status === "failed" && (
        <p role="alert" className="error">
          {job.error ?? "The job failed without an error message."}
        </p>
      )}
      {job.status === "succeeded" && job.metrics && <JobMetrics metrics={job.metrics} />}
    </div>
  );
}

const ACCURACY_KEYS = ["val_accuracy", "validation_accuracy", "accuracy_val", "val_acc"];

function JobMetrics({ metrics }: { metrics: Record<string, unknown> }) {
  const accuracyKey =
    ACCURACY_KEYS.find((key) => typeof metrics[key] === "number") ??
    Object.keys(metrics).find((key) => /acc/i.test(key) && typeof metrics[key] === "number");
  const warnings = Array.isArray(metrics.warnings) ? metrics.warnings.map(String) : [];
  const scalars = Object.entries(metrics).filter(
    ([key, value]) =>
      key !== accuracyKey &&
      key !== "warnings" &&
      (typeof value === "number" || typeof value === "string" || typeof value === "boolean"),
  );
  return (
    <div className="metrics">
      {accuracyKey && (
        <p className="headline-metric">
          Validation accuracy{" "}
          <strong data-testid="val-accuracy">
            {formatPercent(metrics[accuracyKey] as number)}
          </strong>
        </p>
      )}
      {warnings.length > 0 && (
        <div className="warnings" role="note" aria-label="Warnings">
          <strong>Warnings</strong>
          <ul>
            {warnings.map((warning) => (
              <li key={warning}>{warning}</li>
            ))}
          </ul>
        </div>
      )}
      {scalars.length > 0 && (
        <details>
          <summary>All metrics</summary>
          <dl className="metric-list">
            {scalars.map(([key, value]) => (
              <div key={key}>
                <dt>{humanize(key)}</dt>
                <dd>{typeof value === "number" ? formatNumber(value) : String(value)}</dd>
              </div>
            ))}
          </dl>
        </details>
      )}
    </div>
  );
}

function humanize(name: string): string {
  return name.replace(/_/g, " ");
}

function formatPercent(value: number): string {
  return value <= 1 ? `${(value * 100).toFixed(1)}%` : value.toFixed(3);
}

function formatNumber(value: number): string {
  if (Number.isInteger(value)) return value.toLocaleString();
  return Math.abs(value) >= 1e-3 && Math.abs(value) < 1e4 ? value.toFixed(4) : value.toExponential(3);
}
