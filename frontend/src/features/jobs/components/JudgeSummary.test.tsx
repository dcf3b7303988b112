import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { makeJob } from "../../../test/fixtures";
import { JobProgress } from "./JobProgress";

const judgeMetrics = {
  kind: "judge" as const,
  pairs: 18,
  agreement: 0.5,
  first_position_rate: 1,
  consistency: 0,
  failed_orders: 1,
  requests: 0,
  cache_hits: 36,
  seconds: 0.42,
  failures: [{ pair_id: 7, order: "chosen_second" as const, reason: "malformed answer: 'C'" }],
};

describe("JudgeSummary", () => {
  it("shows a finished judge job's agreement, position bias and what it cost", () => {
    render(<JobProgress job={makeJob({ kind: "judge", status: "succeeded", progress: 1, metrics: judgeMetrics })} />);
    expect(screen.getByTestId("judge-agreement")).toHaveTextContent("50%");
    expect(screen.getByTestId("judge-first-position")).toHaveTextContent("100%");
    expect(screen.getByTestId("judge-requests-sent")).toHaveTextContent("0 requests sent · 36 answers from the cache");
    expect(screen.getByText(/pair 7, chosen_second: malformed answer/)).toBeInTheDocument();
    // Not an audit: none of the audit's headlines.
    expect(screen.queryByText("Validation loss")).not.toBeInTheDocument();
  });

  it("is not shown while the judge job runs", () => {
    render(<JobProgress job={makeJob({ kind: "judge", status: "running", progress: 0.3, metrics: null })} />);
    expect(screen.queryByTestId("judge-requests-sent")).not.toBeInTheDocument();
  });
});
