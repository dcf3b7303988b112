import { Alert } from "../../../components/ui/Alert";
import { isActive, jobDetail, jobTitle, useCancelJob, useJob } from "../api/jobs";
import { JobProgress } from "./JobProgress";

interface Props {
  jobId: number;
  /** Show the finished job's metrics; off where the page shows a dedicated results view. */
  showMetrics?: boolean;
  /** The dataset's owner: a running job can be cancelled. */
  canCancel?: boolean;
}

/** Follows one job live (polling while it is queued or running). */
export function JobStatus({ jobId, showMetrics = true, canCancel = true }: Props) {
  const job = useJob(jobId);
  const cancel = useCancelJob();

  if (job.isPending) return <p className="muted">Loading job {jobId}…</p>;
  if (job.isError) {
    return <Alert title={`Could not load job ${jobId}`} error={job.error} />;
  }
  const data = job.data;
  return (
    <section className="card" aria-labelledby={`job-${data.id}-title`}>
      <div className="section-head">
        <h2 id={`job-${data.id}-title`}>
          {jobTitle(data)}{" "}
          <span className="muted small">
            {jobDetail(data)} · started {formatTime(data.started_at ?? data.created_at)}
            {data.finished_at && <> · took {duration(data.started_at, data.finished_at)}</>}
          </span>
        </h2>
        {canCancel && isActive(data.status) && (
          <button
            type="button"
            onClick={() => cancel.mutate(data.id)}
            disabled={cancel.isPending}
          >
            Cancel
          </button>
        )}
      </div>
      <JobProgress job={data} showMetrics={showMetrics} />
      {data.redacted && data.redacted.length > 0 && (
        <p className="muted small" data-testid="job-redacted">
          This job uses a dataset you cannot read; its id is withheld ({data.redacted.join(", ")}).
        </p>
      )}
      {cancel.isError && <Alert title="Could not cancel" error={cancel.error} />}
    </section>
  );
}

function formatTime(iso: string): string {
  return new Date(iso).toLocaleString();
}

function duration(start: string | null, end: string): string {
  if (!start) return "–";
  const seconds = Math.max(0, (Date.parse(end) - Date.parse(start)) / 1000);
  return seconds < 90 ? `${seconds.toFixed(0)} s` : `${(seconds / 60).toFixed(1)} min`;
}
