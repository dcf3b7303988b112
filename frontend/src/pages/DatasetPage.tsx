// One dataset: launch audits, follow them, review the selected audit's ranked pairs, and verify
// that pruning them pays. Composes the datasets, jobs, pairs and verify features, which do not
// know about each other. The judge feature (features/judge) launches LLM judge jobs for owners.
import { useState } from "react";
import { Link, useParams, useSearchParams } from "react-router";
import { Alert } from "../components/ui/Alert";
import { ExportButtons, SharingPanel, useDataset, useDatasets } from "../features/datasets";
import { AuditTrust, JobsList, JobStatus, LaunchAuditForm, useJobs, type Job } from "../features/jobs";
import { PairsPanel, useFlaggedCount } from "../features/pairs";
import { PushingPairs, TargetComparison, TargetPicker, TargetSetsPanel, targetOf } from "../features/targets";
import { JudgePanel } from "../features/judge";
import { VerifyForm, VerifyResults } from "../features/verify";

export function DatasetPage() {
  const datasetId = Number(useParams().datasetId);
  const [search, setSearch] = useSearchParams();
  const dataset = useDataset(datasetId);
  const datasets = useDatasets();
  const jobs = useJobs(datasetId);
  const flaggedCount = useFlaggedCount(datasetId);
  const [targetSetId, setTargetSetId] = useState<number | null>(null);

  const items = jobs.data?.items ?? [];
  const requested = Number(search.get("job"));
  const newest = items.reduce<number | null>((best, job) => (best === null || job.id > best ? job.id : best), null);
  const selectedId = items.some((job) => job.id === requested) ? requested : newest;
  const selected = items.find((job) => job.id === selectedId) ?? null;
  // A judge job's list opens ranked by the judge (its columns are all it has).
  const selectJudge = (jobId: number) => setSearch({ job: String(jobId), sort: "-judge_against" });
  const selectJob = (jobId: number) =>
    items.some((job) => job.id === jobId && job.kind === "judge")
      ? selectJudge(jobId)
      : setSearch({ job: String(jobId) });
  const succeeded = selected?.status === "succeeded";
  // The audit under review: the selected one, or the one a selected verify job retrained; a
  // verify launch keeps its audit's review in view.
  const auditId =
    selected?.kind === "verify" ? Number((selected.config as { audit_job_id?: number }).audit_job_id) : null;
  const reviewed =
    selected?.kind === "audit" && succeeded
      ? selected
      : (items.find((job) => job.id === auditId && job.status === "succeeded") ?? null);
  const anyAudit = items.some((job) => job.kind === "audit" && job.status === "succeeded");
  // A finished judge job's columns are reviewed in the pairs list like an audit's.
  const judged = selected?.kind === "judge" && succeeded ? selected : null;
  // A verify run's held-out test set must be one of the caller's own datasets.
  const testDatasets = (datasets.data?.items ?? []).filter(
    (other) => other.id !== datasetId && other.role === "owner",
  );
  // What the caller may do here: an owner everything, a reviewer decide, a viewer read. Until
  // the dataset says which, nothing is offered and nothing is said to be withheld.
  const role = dataset.data?.role;
  const isOwner = role === "owner";
  // Targeted audits (features/targets): the one under review, and every succeeded one to compare.
  const reviewedTarget = reviewed ? targetOf(reviewed.metrics) : null;
  const targeted = items
    .filter((job) => job.kind === "audit" && job.status === "succeeded" && targetOf(job.metrics))
    .map((job) => ({ id: job.id, label: `Audit ${job.id}: ${targetOf(job.metrics)?.name ?? "target"}` }));

  // The export's soft labels come from a finished audit's or judge job's scores.
  const softLabelSources = items
    .filter((job) => (job.kind === "audit" || job.kind === "judge") && job.status === "succeeded")
    .map((job) => ({ id: job.id, label: `${job.kind === "judge" ? "Judge" : "Audit"} ${job.id}` }));

  if (dataset.isError) {
    return (
      <main className="page">
        <Alert title={`Could not load dataset ${datasetId}`} error={dataset.error} />
        <Link to="/datasets">Back to datasets</Link>
      </main>
    );
  }

  return (
    <main className="page">
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to="/datasets">Datasets</Link> / <span>{dataset.data?.name ?? "…"}</span>
      </nav>
      {dataset.data && (
        <header className="dataset-head">
          <div>
            <h1>{dataset.data.name}</h1>
            <p className="muted">
              {dataset.data.n_pairs.toLocaleString()} pairs · {dataset.data.filename} ·{" "}
              {dataset.data.format}
              {!isOwner && (
                <>
                  {" "}
                  · <span data-testid="shared-role">shared with you by {dataset.data.owner_name} as {role}</span>
                </>
              )}
            </p>
          </div>
          <ExportButtons dataset={dataset.data} softLabelSources={softLabelSources} />
        </header>
      )}
      <div className="two-col">
        {isOwner ? (
          <LaunchAuditForm
            datasetId={datasetId}
            onLaunched={(job) => selectJob(job.id)}
            targetSetId={targetSetId}
            targetField={<TargetPicker datasetId={datasetId} value={targetSetId} onChange={setTargetSetId} />}
          />
        ) : (
          <section className="card" aria-label="Audits" aria-busy={!dataset.data}>
            <h2>Audits</h2>
            <p className="muted">
              {dataset.data ? "Its owner launches audits and verify runs; you follow them here." : "Loading…"}
            </p>
          </section>
        )}
        <section className="card" aria-labelledby="jobs-title">
          <h2 id="jobs-title">Jobs</h2>
          {jobs.isError && (
            <Alert title="Could not load jobs" error={jobs.error} />
          )}
          {jobs.data && <JobsList jobs={items} selectedId={selectedId} onSelect={selectJob} />}
        </section>
      </div>
      {selectedId !== null && <JobStatus jobId={selectedId} showMetrics={selected?.kind !== "verify"} canCancel={isOwner} />}
      {/* The trust verdict stays with the ranking under review when a verify job is selected. */}
      <AuditTrust audit={reviewed} selected={selected} />
      {selected?.kind === "verify" && succeeded && (
        <VerifyResults key={selected.id} job={selected} onOpenAudit={selectJob} />
      )}
      {reviewed && reviewedTarget && (
        <PushingPairs key={`pushing-${reviewed.id}`} datasetId={datasetId} jobId={reviewed.id} target={reviewedTarget} />
      )}
      {targeted.length >= 2 && <TargetComparison datasetId={datasetId} audits={targeted} />}
      {reviewed && dataset.data && (
        <>
          {isOwner && (
          <VerifyForm
            key={`verify-${reviewed.id}`}
            datasetId={datasetId}
            audit={reviewed}
            flaggedCount={flaggedCount.data}
            testDatasets={testDatasets}
            onLaunched={async (job) => {
              // The new job must be in the list before it can be selected.
              await jobs.refetch();
              selectJob(job.id);
            }}
          />
          )}
          <PairsPanel
            key={reviewed.id}
            datasetId={datasetId}
            jobId={reviewed.id}
            datasetPairs={dataset.data.n_pairs}
            groupBudget={groupBudgetOf(reviewed)}
            defaultMethod={defaultMethodOf(reviewed)}
            defaultReason={defaultReasonOf(reviewed)}
            readOnly={role === "viewer"}
          />
        </>
      )}
      {judged && dataset.data && (
        <PairsPanel
          key={`judge-${judged.id}`}
          datasetId={datasetId}
          jobId={judged.id}
          datasetPairs={dataset.data.n_pairs}
          readOnly={role === "viewer"}
        />
      )}
      {!reviewed && !judged && !anyAudit && dataset.data && (
        <PairsPanel
          key="unscored"
          datasetId={datasetId}
          jobId={null}
          datasetPairs={dataset.data.n_pairs}
          readOnly={role === "viewer"}
        />
      )}
      {dataset.data && (
        <TargetSetsPanel
          datasetId={datasetId}
          canEdit={isOwner}
          otherDatasets={(datasets.data?.items ?? []).filter((other) => other.id !== datasetId)}
        />
      )}
      {isOwner && (
        <JudgePanel
          datasetId={datasetId}
          onLaunched={async (job) => {
            // The new job must be in the list before it can be selected.
            await jobs.refetch();
            selectJudge(job.id);
          }}
        />
      )}
      {isOwner && <SharingPanel datasetId={datasetId} />}
    </main>
  );
}

/** The method whose harm fills `harm` in an audit's scores, else null. */
function defaultMethodOf(job: Job): string | null {
  const metrics = job.metrics;
  return metrics && metrics.kind === "audit" ? (metrics.default_method ?? null) : null;
}

/** Why the audit chose its default ranking from its own evidence (its canaries), if it did. */
function defaultReasonOf(job: Job): string | null {
  const metrics = job.metrics;
  return metrics && metrics.kind === "audit" ? (metrics.default_choice?.reason ?? null) : null;
}

/** The greedy selection's size of an audit that ran the `group` method, else null. */
function groupBudgetOf(job: Job): number | null {
  const metrics = job.metrics;
  if (!metrics || metrics.kind !== "audit") return null;
  return metrics.group?.budget ?? null;
}
