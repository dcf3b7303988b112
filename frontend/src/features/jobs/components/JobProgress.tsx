import type { Job } from "../api/jobs";
import { methodLabel } from "../api/options";
import { TrustBanner } from "./TrustBanner";

const STATUS_LABEL: Record<Job["status"], string> = {
  queued: "Queued",
  running: "Running",
  succeeded: "Succeeded",
  failed: "Failed",
  cancelled: "Cancelled",
};

/** A job's live state: status, stage, progress; the error if it failed; metrics once done. */
export function JobProgress({ job, showMetrics = true }: { job: Job; showMetrics?: boolean }) {
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
      {showMetrics && job.status === "succeeded" && job.metrics && <JobMetrics metrics={job.metrics} />}
    </div>
  );
}

const ACCURACY_KEYS = ["val_accuracy", "validation_accuracy", "accuracy_val", "val_acc"];

interface Headline {
  key: string;
  label: string;
  format: (value: unknown, metrics: Record<string, unknown>) => string;
}

const HEADLINES: Headline[] = [
  { key: "val_loss", label: "Validation loss", format: (v) => formatNumber(v as number) },
  { key: "train_accuracy", label: "Train accuracy", format: (v) => formatPercent(v as number) },
  {
    key: "n_train",
    label: "Train / validation pairs",
    format: (v, m) => `${v as number} / ${typeof m.n_val === "number" ? m.n_val : "–"}`,
  },
  { key: "default_method", label: "Harm ranks by", format: (v) => methodLabel(String(v)) },
  {
    key: "truncation_rate",
    label: "Truncated (train / validation)",
    format: (v) => {
      const rate = v as { train?: unknown; val?: unknown };
      const show = (x: unknown) => (typeof x === "number" ? formatPercent(x) : "–");
      return `${show(rate.train)} / ${show(rate.val)}`;
    },
  },
  { key: "seconds_total", label: "Took", format: (v) => `${(v as number).toFixed(1)} s` },
];
const SHOWN = new Set([
  "warnings",
  "history",
  "n_val",
  "trust",
  "mislabelled",
  "method_benchmark",
  ...HEADLINES.map((h) => h.key),
]);

interface Epoch {
  epoch: number;
  train_loss?: number;
  train_accuracy?: number;
  val_loss?: number;
  val_accuracy?: number;
}

function JobMetrics({ metrics }: { metrics: Record<string, unknown> }) {
  const accuracyKey =
    ACCURACY_KEYS.find((key) => typeof metrics[key] === "number") ??
    Object.keys(metrics).find((key) => /acc/i.test(key) && typeof metrics[key] === "number");
  // The trust verdict has its own banner; its warning would only repeat it.
  const warnings = (Array.isArray(metrics.warnings) ? metrics.warnings.map(String) : []).filter(
    (w) => !(metrics.trust && w.startsWith("The ranking is not evidence")),
  );
  const headlines = HEADLINES.filter(
    (h) =>
      metrics[h.key] !== undefined &&
      metrics[h.key] !== null &&
      (h.key !== "truncation_rate" || typeof metrics[h.key] === "object"),
  );
  const history = Array.isArray(metrics.history)
    ? (metrics.history as Epoch[]).filter((row) => typeof row?.epoch === "number")
    : [];
  const scalars = Object.entries(metrics).filter(
    ([key, value]) =>
      key !== accuracyKey &&
      !SHOWN.has(key) &&
      (typeof value === "number" || typeof value === "string" || typeof value === "boolean"),
  );
  const trust = metrics.trust as { is_evidence?: boolean } | undefined;
  const untrusted = trust?.is_evidence === false;
  return (
    <div className="metrics">
      <TrustBanner metrics={metrics} />
      <dl className="headline-metrics">
        {accuracyKey && (
          <div className={untrusted ? "headline-main untrusted" : "headline-main"}>
            <dt>Validation accuracy</dt>
            <dd data-testid="val-accuracy">{formatPercent(metrics[accuracyKey] as number)}</dd>
          </div>
        )}
        {headlines.map((h) => (
          <div key={h.key}>
            <dt>{h.label}</dt>
            <dd>{h.format(metrics[h.key], metrics)}</dd>
          </div>
        ))}
      </dl>
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
      {(history.length > 0 || scalars.length > 0) && (
        <details>
          <summary>Training history and all metrics</summary>
          {history.length > 0 && (
            <table className="history">
              <thead>
                <tr>
                  <th scope="col">Epoch</th>
                  <th scope="col" className="num">Train loss</th>
                  <th scope="col" className="num">Train acc.</th>
                  <th scope="col" className="num">Val. loss</th>
                  <th scope="col" className="num">Val. acc.</th>
                </tr>
              </thead>
              <tbody>
                {history.map((row) => (
                  <tr key={row.epoch}>
                    <td>{row.epoch}</td>
                    <td className="num">{maybe(row.train_loss, formatNumber)}</td>
                    <td className="num">{maybe(row.train_accuracy, formatPercent)}</td>
                    <td className="num">{maybe(row.val_loss, formatNumber)}</td>
                    <td className="num">{maybe(row.val_accuracy, formatPercent)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
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

function maybe(value: number | undefined, format: (value: number) => string): string {
  return typeof value === "number" ? format(value) : "–";
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
