import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { auditMetrics, makeJob, makeVerifyMetrics } from "../../../test/fixtures";
import type { Job } from "../api/verify";
import { formatLoss, formatPoints } from "./format";
import { niceTicks } from "./VerifyPlot";
import { VerifyResults } from "./VerifyResults";

function verifyJob(metrics: Job["metrics"] = makeVerifyMetrics()) {
  return makeJob({
    id: 8,
    kind: "verify",
    status: "succeeded",
    stage: "done",
    progress: 1,
    config: { kind: "verify", audit_job_id: 5, seeds: 3 },
    metrics,
  });
}

function rowOf(table: HTMLElement, name: string): string[] {
  const row = within(table).getByRole("rowheader", { name }).closest("tr")!;
  return within(row).getAllByRole("cell").map((cell) => cell.textContent ?? "");
}

describe("VerifyResults", () => {
  it("puts the summary sentence first and names the rule, the audit and the evaluation set", async () => {
    const onOpenAudit = vi.fn();
    render(<VerifyResults job={verifyJob()} onOpenAudit={onOpenAudit} />);
    expect(screen.getByTestId("verify-summary")).toHaveTextContent(
      /^Pruning 27 of 270 training pairs changed pairwise accuracy .* distinguishable from zero\.$/,
    );
    expect(screen.getByText(/Pruned top 10% by harm/)).toHaveTextContent(
      "27 of 270 training pairs removed. Evaluated on the audit's validation split (30 pairs), seeds 0, 1, 2.",
    );
    await userEvent.click(screen.getByRole("button", { name: "audit #5" }));
    expect(onOpenAudit).toHaveBeenCalledWith(5);
  });

  it("plots every seed of the three training sets with their means", () => {
    const { container } = render(<VerifyResults job={verifyJob()} />);
    const plot = screen.getByRole("img", { name: /accuracy of each retrain over 3 seeds/i });
    expect(plot).toHaveAccessibleName(/all pairs mean 61\.0%, pruned mean 63\.0%, random removal mean 60\.0%/);
    for (const arm of ["full", "pruned", "random"]) {
      const group = container.querySelector(`g[data-arm="${arm}"]`)!;
      expect(group.querySelectorAll("circle")).toHaveLength(3);
      expect(group.querySelector(".mean-line")).not.toBeNull();
      // mean line plus the ± std whisker and its two caps
      expect(group.querySelectorAll(".mean line")).toHaveLength(4);
    }
    expect(within(plot).getByText("Pruned")).toBeInTheDocument();
    expect(within(plot).getAllByText("243 training pairs")).toHaveLength(2);
    expect(container.querySelector('circle title')).toHaveTextContent("All pairs, seed 0: 60.0%");
    // One line per seed joins its three retrains.
    expect(container.querySelectorAll("polyline.seed-line")).toHaveLength(3);
  });

  it("tables mean ± std per training set and the paired differences with 95% intervals in points", () => {
    render(<VerifyResults job={verifyJob()} />);
    const arms = screen.getByRole("table", { name: "Accuracy and loss per training set" });
    expect(rowOf(arms, "All pairs")).toEqual(["270", "61.0 ± 1.0", "0.6600 ± 0.0100"]);
    expect(rowOf(arms, "Pruned")).toEqual(["243", "63.0 ± 1.0", "0.6400 ± 0.0100"]);
    expect(rowOf(arms, "Random removal")).toEqual(["243", "60.0 ± 1.0", "0.6700 ± 0.0100"]);

    const differences = screen.getByRole("table", { name: "Paired differences" });
    expect(within(differences).getAllByRole("columnheader").map((th) => th.textContent)).toContain(
      "95% CI over seeds",
    );
    expect(rowOf(differences, "Pruned − all pairs")).toEqual([
      "+2.0",
      "−3.0 to +7.0",
      "−0.0200",
      "−0.0697 to +0.0297",
    ]);
    expect(rowOf(differences, "Pruned − random removal")).toEqual([
      "+3.0",
      "+0.5 to +5.5",
      "−0.0300",
      "−0.0548 to −0.0052",
    ]);
    // An interval that excludes zero is marked.
    expect(within(differences).getByText("+0.5 to +5.5")).toHaveClass("excludes-zero");
    expect(within(differences).getByText("−3.0 to +7.0")).not.toHaveClass("excludes-zero");
  });

  it("shows the intervals over evaluation pairs when the job has them", () => {
    const paired = {
      accuracy: { n: 30, mean: 0.02, std: 0.2, ci_low: -0.05, ci_high: 0.09, confidence: 0.95 },
      loss: { n: 30, mean: -0.02, std: 0.1, ci_low: -0.05, ci_high: 0.01, confidence: 0.95 },
    };
    render(
      <VerifyResults
        job={verifyJob(makeVerifyMetrics({ evaluation_paired: { pruned_minus_full: paired } }))}
      />,
    );
    const differences = screen.getByRole("table", { name: "Paired differences" });
    expect(within(differences).getByRole("columnheader", { name: "95% CI over eval. pairs" })).toBeInTheDocument();
    expect(rowOf(differences, "Pruned − all pairs")[2]).toBe("−5.0 to +9.0");
    expect(rowOf(differences, "Pruned − random removal")[2]).toBe("–");
  });

  it("handles one seed: no std, no interval", () => {
    const one = (value: number) => ({ n: 1, mean: value, std: null, values: [value] });
    const none = (mean: number) => ({ n: 1, mean, std: null, ci_low: null, ci_high: null, confidence: 0.95 });
    const metrics = makeVerifyMetrics({
      runs: [
        { seed: 0, arm: "full", n_train: 270, accuracy: 0.6, loss: 0.66, seconds: 1 },
        { seed: 0, arm: "pruned", n_train: 243, accuracy: 0.62, loss: 0.65, seconds: 1 },
        { seed: 0, arm: "random", n_train: 243, accuracy: 0.6, loss: 0.67, seconds: 1 },
      ],
      arms: {
        full: { accuracy: one(0.6), loss: one(0.66) },
        pruned: { accuracy: one(0.62), loss: one(0.65) },
        random: { accuracy: one(0.6), loss: one(0.67) },
      },
      differences: {
        pruned_minus_full: { accuracy: none(0.02), loss: none(-0.01) },
        pruned_minus_random: { accuracy: none(0.02), loss: none(-0.02) },
      },
      seeds: [0],
    });
    const { container } = render(<VerifyResults job={verifyJob(metrics)} />);
    const arms = screen.getByRole("table", { name: "Accuracy and loss per training set" });
    expect(rowOf(arms, "Pruned")).toEqual(["243", "62.0", "0.6500"]);
    const differences = screen.getByRole("table", { name: "Paired differences" });
    expect(rowOf(differences, "Pruned − all pairs")).toEqual(["+2.0", "none (n = 1)", "−0.0100", "none (n = 1)"]);
    // No whisker without a std: only the mean line.
    expect(container.querySelectorAll('g[data-arm="pruned"] .mean line')).toHaveLength(1);
    expect(screen.getByRole("img", { name: /over 1 seeds/ })).toBeInTheDocument();
  });

  it("says so when the metrics are not a verification result", () => {
    render(<VerifyResults job={verifyJob(auditMetrics({ val_accuracy: 0.6 }))} />);
    expect(screen.getByRole("alert")).toHaveTextContent("Job 8 finished without verification results");
  });

  it("says so when a verification's metrics lack its results", () => {
    render(<VerifyResults job={verifyJob({ kind: "verify", traceback: "..." })} />);
    expect(screen.getByRole("alert")).toHaveTextContent("Job 8 finished without verification results");
  });
});

describe("verify formatting", () => {
  it("writes differences in signed percentage points and losses with four decimals", () => {
    expect(formatPoints(0.012)).toBe("+1.2");
    expect(formatPoints(-0.0104)).toBe("−1.0");
    expect(formatPoints(0.0001)).toBe("0.0");
    expect(formatPoints(null)).toBe("–");
    expect(formatLoss(0.66)).toBe("0.6600");
    expect(formatLoss(-0.00001, true)).toBe("0.0000");
    expect(formatLoss(0.0123, true)).toBe("+0.0123");
  });

  it("picks round ticks", () => {
    expect(niceTicks(0.55, 0.7)).toEqual([0.55, 0.6, 0.65, 0.7]);
    expect(niceTicks(0.5, 0.5)).toEqual([0.5]);
  });

  it("shows the first-order top-K arm and the greedy − top-K difference of a greedy verify", () => {
    const base = makeVerifyMetrics({ rule: "greedy group selection of 27 pairs" });
    const runs = base.runs ?? [];
    const topK = runs.filter((run) => run.arm === "pruned").map((run) => ({ ...run, arm: "top_k" as const }));
    const metrics = {
      ...base,
      runs: [...runs, ...topK],
      arms: { ...base.arms, top_k: base.arms?.pruned },
      differences: {
        ...base.differences,
        pruned_minus_top_k: {
          accuracy: { n: 3, mean: 0.012, std: 0.004, ci_low: 0.002, ci_high: 0.022, confidence: 0.95 },
          loss: { n: 3, mean: -0.01, std: 0.01, ci_low: -0.03, ci_high: 0.01, confidence: 0.95 },
        },
      },
    };
    render(<VerifyResults job={verifyJob(metrics)} />);
    const arms = screen.getByRole("table", { name: "Accuracy and loss per training set" });
    expect(rowOf(arms, "Top-K, first order")[0]).toBe("243");
    const differences = screen.getByRole("table", { name: "Paired differences" });
    const row = rowOf(differences, "Greedy − first-order top-K");
    expect(row[0]).toBe(formatPoints(0.012));
    expect(screen.getByText(/Pruned greedy group selection of 27 pairs/)).toBeInTheDocument();
  });
});
