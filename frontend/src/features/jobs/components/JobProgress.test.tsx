import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { auditMetrics, makeJob } from "../../../test/fixtures";
import { mockApi, renderWithClient } from "../../../test/utils";
import { JobProgress, formatEta, timeLeft } from "./JobProgress";
import { JobStatus } from "./JobStatus";

describe("JobProgress", () => {
  it("shows a running job's stage and progress", () => {
    render(<JobProgress job={makeJob({ status: "running", stage: "per_pair_gradients", progress: 0.42 })} />);
    expect(screen.getByText("Running")).toBeInTheDocument();
    expect(screen.getByText(/per pair gradients/)).toBeInTheDocument();
    const bar = screen.getByRole("progressbar", { name: "Job 1 progress" });
    expect(bar).toHaveAttribute("aria-valuenow", "42");
    expect(screen.getByText(/^42%/)).toBeInTheDocument();
  });

  it("shows the estimated time left of a running job", () => {
    render(<JobProgress job={makeJob({ status: "running", progress: 0.5, eta_seconds: 185 })} />);
    expect(screen.getByText(/50% · about 3 min left/)).toBeInTheDocument();
  });

  it("rounds an ETA as an estimate, in the unit that fits it", () => {
    expect(formatEta(3)).toBe("a few seconds");
    expect(formatEta(12)).toBe("about 10 s");
    expect(formatEta(59)).toBe("about 60 s");
    expect(formatEta(61)).toBe("about 1 min");
    expect(formatEta(3 * 3600 + 7 * 60)).toBe("about 3 h 7 min");
    expect(formatEta(2 * 3600)).toBe("about 2 h");
  });

  it("never says minutes for a job that ends in seconds, nor seconds for minutes", () => {
    for (let seconds = 0; seconds < 60; seconds += 0.5) expect(formatEta(seconds)).not.toMatch(/min|h/);
    for (let seconds = 60; seconds < 3570; seconds += 7) expect(formatEta(seconds)).toMatch(/^about \d+ min$/);
  });

  it("says it is estimating while a running job has no ETA yet, and nothing once it is done", () => {
    render(<JobProgress job={makeJob({ status: "running", progress: 0.1, eta_seconds: null })} />);
    expect(screen.getByText(/10% · estimating time left…/)).toBeInTheDocument();
    expect(timeLeft(makeJob({ status: "succeeded", eta_seconds: 5 }))).toBeNull();
    expect(timeLeft(makeJob({ status: "running", eta_seconds: 42 }))).toBe("about 40 s left");
  });

  it("says a queued job waits for a worker", () => {
    render(<JobProgress job={makeJob()} />);
    expect(screen.getByText(/waiting for a worker/i)).toBeInTheDocument();
    expect(screen.getByRole("progressbar")).toHaveAttribute("aria-valuenow", "0");
  });

  it("shows the error of a failed job", () => {
    render(
      <JobProgress
        job={makeJob({ status: "failed", stage: "training", progress: 0.3, error: "CUDA out of memory" })}
      />,
    );
    expect(screen.getByRole("alert")).toHaveTextContent("CUDA out of memory");
  });

  it("shows validation accuracy, warnings and other metrics when it succeeded", () => {
    render(
      <JobProgress
        job={makeJob({
          status: "succeeded",
          stage: "done",
          progress: 1,
          metrics: auditMetrics({
            val_accuracy: 0.6123,
            val_loss: 0.68,
            warnings: ["only 6 validation pairs"],
            n_train: 54,
            n_val: 6,
            history: [{ epoch: 1, train_loss: 0.7, train_accuracy: 0.5, val_loss: 0.69, val_accuracy: 0.5 }],
            n_trainable_params: 512,
          }),
        })}
      />,
    );
    expect(screen.getByTestId("val-accuracy")).toHaveTextContent("61.2%");
    expect(screen.getByRole("note", { name: "Warnings" })).toHaveTextContent("only 6 validation pairs");
    expect(screen.getByText("Train / validation pairs").nextSibling).toHaveTextContent("54 / 6");
    expect(screen.getByRole("table")).toHaveTextContent("0.7000");
    expect(screen.getByText("n trainable params")).toBeInTheDocument();
    expect(screen.getByRole("progressbar")).toHaveAttribute("aria-valuenow", "100");
  });
});

describe("JobStatus", () => {
  it("polls the job every second until it finishes", async () => {
    const states = [
      makeJob({ status: "running", stage: "training", progress: 0.5 }),
      makeJob({ status: "succeeded", stage: "done", progress: 1, metrics: auditMetrics({ val_accuracy: 0.75 }) }),
    ];
    let polls = 0;
    mockApi({ "GET /api/v1/jobs/1": () => states[Math.min(polls++, states.length - 1)] });
    renderWithClient(<JobStatus jobId={1} />);
    expect(await screen.findByText("Running")).toBeInTheDocument();
    expect(await screen.findByText("Succeeded", {}, { timeout: 3000 })).toBeInTheDocument();
    expect(screen.getByTestId("val-accuracy")).toHaveTextContent("75.0%");
    const seen = polls;
    await new Promise((resolve) => setTimeout(resolve, 1300));
    expect(polls).toBe(seen); // a finished job is not polled any more
  });
});
