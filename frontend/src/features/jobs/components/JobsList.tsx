import { jobDetail, jobTitle, type Job } from "../api/jobs";

interface Props {
  jobs: Job[];
  selectedId: number | null;
  onSelect: (jobId: number) => void;
}

/** The dataset's jobs, newest first; one is selected for review. */
export function JobsList({ jobs, selectedId, onSelect }: Props) {
  if (jobs.length === 0) return <p className="muted">No jobs yet.</p>;
  const newestFirst = [...jobs].sort((a, b) => b.id - a.id);
  return (
    <ul className="jobs" aria-label="Jobs">
      {newestFirst.map((job) => (
        <li key={job.id}>
          <button
            type="button"
            className={`job-item${job.id === selectedId ? " selected" : ""}`}
            aria-pressed={job.id === selectedId}
            onClick={() => onSelect(job.id)}
          >
            <span>{jobTitle(job)}</span>
            <span className="muted">{jobDetail(job)}</span>
            <span className={`status status-${job.status}`}>{job.status}</span>
            <span className="muted small">{new Date(job.created_at).toLocaleString()}</span>
          </button>
        </li>
      ))}
    </ul>
  );
}
