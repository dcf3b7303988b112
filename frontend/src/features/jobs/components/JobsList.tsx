import { isActive, jobDetail, jobTitle, type Job } from "../api/jobs";
import { timeLeft } from "./JobProgress";

interface Props {
  jobs: Job[];
  selectedId: number | null;
  onSelect: (jobId: number) => void;
}

// The whole width of the item's grid, under its title and status.
const ROW = { gridColumn: "1 / -1", display: "flex", gap: "0.6rem", alignItems: "center" } as const;
const BAR = { flex: 1, height: 6, display: "block" } as const;

/** A queued or running job's progress and time left, in the list (above the fold, whatever
 *  the launch form below or beside it shows). */
function Progress({ job }: { job: Job }) {
  const percent = Math.round(Math.min(1, Math.max(0, job.progress)) * 100);
  const left = timeLeft(job);
  return (
    <span className="job-item-progress small" data-testid={`job-${job.id}-progress`} style={ROW}>
      <span className="progress" aria-hidden="true" style={BAR}>
        <span className={`progress-fill status-${job.status}`} style={{ display: "block", width: `${percent}%` }} />
      </span>
      <span className="num">
        {percent}%{left && <> · {left}</>}
      </span>
    </span>
  );
}

/** The dataset's jobs, newest first; one is selected for review. Active ones show their
 *  progress and time left. */
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
            {isActive(job.status) && <Progress job={job} />}
          </button>
        </li>
      ))}
    </ul>
  );
}
