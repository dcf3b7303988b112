import { render, screen, within } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { makeJob } from "../../../test/fixtures";
import { JobsList } from "./JobsList";

describe("JobsList", () => {
  it("shows each active job's progress and time left in the list", () => {
    const jobs = [
      makeJob({ id: 1, status: "succeeded", progress: 1 }),
      makeJob({ id: 2, kind: "verify", status: "running", progress: 0.42, eta_seconds: 95 }),
      makeJob({ id: 3, status: "running", progress: 0.05, eta_seconds: null }),
      makeJob({ id: 4, kind: "verify", status: "running", progress: 0.6, eta_seconds: 7 }),
    ];
    render(<JobsList jobs={jobs} selectedId={1} onSelect={vi.fn()} />);
    expect(screen.getByTestId("job-2-progress")).toHaveTextContent("42% · about 2 min left");
    expect(screen.getByTestId("job-3-progress")).toHaveTextContent("5% · estimating time left…");
    expect(screen.getByTestId("job-4-progress")).toHaveTextContent("60% · a few seconds left");
    // A finished job shows no progress line.
    expect(screen.queryByTestId("job-1-progress")).not.toBeInTheDocument();
    const item = screen.getByRole("button", { name: /Verify \(job 2\)/ });
    expect(within(item).getByTestId("job-2-progress")).toBeVisible();
  });
});
