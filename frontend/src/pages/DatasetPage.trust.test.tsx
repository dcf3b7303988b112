// The audit's trust verdict stays on the page when a verify run of it is selected (issue 22: the
// verify job became the selected job and the banner went with the audit's metrics).
import { screen, within } from "@testing-library/react";
import { Route, Routes } from "react-router";
import { afterEach, describe, expect, it, vi } from "vitest";
import { auditMetrics, makeJob, makeVerifyMetrics, weakTrust } from "../test/fixtures";
import { mockApi, renderWithClient } from "../test/utils";
import { DatasetPage } from "./DatasetPage";

const audit = makeJob({
  id: 1,
  status: "succeeded",
  stage: "done",
  progress: 1,
  metrics: auditMetrics({ trust: weakTrust, val_accuracy: weakTrust.val_accuracy }),
});
const dataset = {
  id: 1,
  name: "hh",
  filename: "hh.jsonl",
  format: "hh-rlhf",
  schema_kind: "transcripts",
  n_pairs: 600,
  created_at: "2026-11-22T10:00:00Z",
  owner_name: "alice",
  role: "viewer",
};

type Job = ReturnType<typeof makeJob>;

/** The dataset page with `selected` chosen in its jobs list (after the audit, unless it is the audit). */
function renderPage(selected: Job) {
  const jobs = selected.id === audit.id ? [audit] : [audit, selected];
  mockApi({
    "GET /api/v1/datasets/1": () => dataset,
    "GET /api/v1/datasets": () => ({ items: [dataset], total: 1 }),
    "GET /api/v1/datasets/1/jobs": () => ({ items: jobs, total: jobs.length }),
    "GET /api/v1/jobs/1": () => audit,
    "GET /api/v1/jobs/2": () => selected,
  });
  return renderWithClient(
    <Routes>
      <Route path="/datasets/:datasetId" element={<DatasetPage />} />
    </Routes>,
    { url: `/datasets/1?job=${selected.id}` },
  );
}

/** A verify job of the audit. */
function verifyJob(overrides: Partial<Job>): Job {
  return makeJob({ id: 2, kind: "verify", config: { audit_job_id: audit.id }, ...overrides });
}

describe("DatasetPage: the trust banner stays with the audit", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("shows the audit's verdict while its running verify job is selected, with the verify's ETA", async () => {
    renderPage(verifyJob({ status: "running", stage: "retraining", progress: 0.5, eta_seconds: 40 }));
    const trust = await screen.findByTestId("audit-trust");
    expect(within(trust).getByTestId("trust-banner")).toHaveTextContent(/^The ranking is not evidence\./);
    expect(trust).toHaveAccessibleName("Can the ranking of Audit (job 1) be trusted?");
    // The verify job's progress is shown too: in the list and in its own view.
    expect(await screen.findByTestId("job-2-progress")).toHaveTextContent("50% · about 40 s left");
    expect(await screen.findByText(/50% · about 40 s left/, { selector: ".job-progress .num" })).toBeVisible();
  });

  it("still shows it once the verify job has finished", async () => {
    renderPage(verifyJob({ status: "succeeded", stage: "done", progress: 1, metrics: makeVerifyMetrics() }));
    expect(await screen.findByTestId("audit-trust")).toHaveTextContent(/^The ranking is not evidence\./);
    expect(screen.getAllByTestId("trust-banner")).toHaveLength(1);
  });

  it("shows the verdict once, in the audit's own view, when the audit is selected", async () => {
    renderPage(audit);
    expect(await screen.findByTestId("trust-banner")).toBeInTheDocument();
    expect(screen.queryByTestId("audit-trust")).not.toBeInTheDocument();
    expect(screen.getAllByTestId("trust-banner")).toHaveLength(1);
  });
});
