import type { Schemas } from "../../../api/client";
import { Alert } from "../../../components/ui/Alert";
import type { Job } from "../api/jobs";
import { methodLabel } from "../api/options";
import { JudgeSummary } from "./JudgeSummary";
import { TrustBanner } from "./TrustBanner";

const STATUS_LABEL: Record<Job["status"], string> = {
  queued: "Queued",
  running: "Running",
  succeeded: "Succeeded",
  failed: "Failed",
  cancelled: "Cancelled",
};

/** "a few seconds", "about 40 s", "about 3 min", "about 2 h 5 min": rounded as the estimate it
 *  is, in the unit that fits it (never minutes for seconds, nor seconds for minutes). */
export function formatEta(seconds: number): string {
  if (seconds < 10) return "a few seconds";
  if (seconds < 60) return `about ${Math.round(seconds / 5) * 5} s`;
  const minutes = Math.max(1, Math.round(seconds / 60));
  if (minutes < 60) return `about ${minutes} min`;
  const rest = minutes % 60;
  return `about ${Math.floor(minutes / 60)} h${rest ? ` ${rest} min` : ""}`;
}

/** "about 3 min left", "estimating time left…" (a running job the server cannot time yet, from
 *  nothing measured), or null for a job that is not running. */
export function timeLeft(job: Pick<Job, "status" | "eta_seconds">): string | null {
  if (job.status !== "running") return null;
  return job.eta_seconds == null ? "estimating time left…" : `${formatEta(job.eta_seconds)} left`;
}

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
        <span className="num">
          {percent}%{timeLeft(job) && <> · {timeLeft(job)}</>}
        </span>
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
        <Alert>{job.error ?? "The job failed without an error message."}</Alert>
      )}
      {showMetrics && job.status === "succeeded" && job.metrics?.kind === "audit" && (
        <JobMetrics metrics={job.metrics} />
      )}
      {showMetrics && job.status === "succeeded" && job.metrics?.kind === "judge" && (
        <JudgeSummary metrics={job.metrics} />
      )}
    </div>
  );
}

type AuditMetrics = Schemas["AuditMetrics"];

interface Headline {
  label: string;
  /** The formatted value, or null when the job's metrics lack it. */
  value: (metrics: AuditMetrics) => string | null;
}

const HEADLINES: Headline[] = [
  { label: "Validation loss", value: (m) => maybe(m.val_loss, formatNumber) },
  { label: "Train accuracy", value: (m) => maybe(m.train_accuracy, formatPercent) },
  {
    label: "Train / validation pairs",
    value: (m) => (typeof m.n_train === "number" ? `${m.n_train} / ${maybe(m.n_val, String) ?? "–"}` : null),
  },
  { label: "Harm ranks by", value: (m) => (m.default_method ? methodLabel(m.default_method) : null) },
  {
    label: "Truncated (train / validation)",
    value: ({ truncation_rate: rate }) =>
      rate ? `${maybe(rate.train, formatPercent) ?? "–"} / ${maybe(rate.val, formatPercent) ?? "–"}` : null,
  },
  { label: "Took", value: (m) => maybe(m.seconds_total, (s) => `${s.toFixed(1)} s`) },
];

/** Keys shown above (or in the trust banner), left out of the list of all metrics. */
const SHOWN = new Set<string>([
  "kind",
  "val_accuracy",
  "val_loss",
  "train_accuracy",
  "n_train",
  "n_val",
  "default_method",
  "truncation_rate",
  "seconds_total",
  "warnings",
  "history",
  "trust",
  "mislabelled",
  "method_benchmark",
]);

function JobMetrics({ metrics }: { metrics: AuditMetrics }) {
  // The trust verdict has its own banner; its warning would only repeat it.
  const warnings = (metrics.warnings ?? []).filter(
    (w) => !(metrics.trust && w.startsWith("The ranking is not evidence")),
  );
  const headlines = HEADLINES.map((h) => ({ label: h.label, value: h.value(metrics) })).filter(
    (h): h is { label: string; value: string } => h.value !== null,
  );
  const history = (metrics.history ?? []).filter((row) => typeof row.epoch === "number");
  const scalars = Object.entries(metrics).filter(
    ([key, value]) =>
      !SHOWN.has(key) &&
      (typeof value === "number" || typeof value === "string" || typeof value === "boolean"),
  );
  const untrusted = metrics.trust?.is_evidence === false;
  return (
    <div className="metrics">
      <TrustBanner metrics={metrics} />
      <dl className="headline-metrics">
        {typeof metrics.val_accuracy === "number" && (
          <div className={untrusted ? "headline-main untrusted" : "headline-main"}>
            <dt>Validation accuracy</dt>
            <dd data-testid="val-accuracy">{formatPercent(metrics.val_accuracy)}</dd>
          </div>
        )}
        {headlines.map((h) => (
          <div key={h.label}>
            <dt>{h.label}</dt>
            <dd>{h.value}</dd>
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
                    <td className="num">{maybe(row.train_loss, formatNumber) ?? "–"}</td>
                    <td className="num">{maybe(row.train_accuracy, formatPercent) ?? "–"}</td>
                    <td className="num">{maybe(row.val_loss, formatNumber) ?? "–"}</td>
                    <td className="num">{maybe(row.val_accuracy, formatPercent) ?? "–"}</td>
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

function maybe(value: number | null | undefined, format: (value: number) => string): string | null {
  return typeof value === "number" ? format(value) : null;
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
