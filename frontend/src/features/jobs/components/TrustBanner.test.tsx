import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { auditMetrics, makeJob, weakTrust as weak } from "../../../test/fixtures";
import { JobProgress } from "./JobProgress";
import { TrustBanner } from "./TrustBanner";

describe("TrustBanner", () => {
  it("says plainly when the ranking is not evidence, with the numbers behind it", () => {
    render(<TrustBanner metrics={{ trust: weak }} />);
    const banner = screen.getByTestId("trust-banner");
    // The shared alert, styled as a warning banner.
    expect(screen.getByRole("alert")).toHaveClass("banner", "warning");
    expect(banner).toContainElement(screen.getByRole("alert"));
    expect(banner).toHaveTextContent(/^The ranking is not evidence\./);
    expect(banner).toHaveTextContent("validation accuracy 0.57 (95% interval [0.44, 0.69]) on 60 held-out pairs");
    expect(banner).toHaveTextContent("0.6923 vs ln 2 = 0.6931");
  });

  it("is calm when the model beats chance", () => {
    render(
      <TrustBanner
        metrics={{
          trust: { ...weak, n_val: 300, val_accuracy: 0.62, val_accuracy_ci95: [0.564, 0.673], val_loss: 0.65, is_evidence: true },
        }}
      />,
    );
    const banner = screen.getByTestId("trust-banner");
    expect(banner).toHaveAttribute("role", "status");
    expect(banner).not.toHaveClass("warning");
    expect(banner).toHaveTextContent(
      "The reward model beats chance on 300 held-out pairs: validation accuracy 0.62 (95% interval [0.56, 0.67])",
    );
    expect(banner).not.toHaveTextContent("not evidence");
    expect(screen.queryByRole("alert")).not.toBeInTheDocument();
  });

  it("shows the mislabel estimate with its interval and expected precision", () => {
    render(
      <TrustBanner
        metrics={{
          trust: weak,
          mislabelled: {
            source: "out_of_fold",
            n: 1000,
            estimated_fraction: 0.12,
            estimated_count: 120,
            count_ci95: [40, 310],
            precise: false,
            expected_precision_at_top: { "0.05": 0.4, "0.1": 0.31, "0.2": 0.25 },
            message: "about 120 of 1000",
          },
        }}
      />,
    );
    const estimate = screen.getByTestId("mislabelled-estimate");
    expect(estimate).toHaveTextContent("About 120 of 1000 training pairs (12.0%) are probably mislabelled");
    expect(estimate).toHaveTextContent("95% interval 40–310: the model is too weak to pin this down");
    expect(estimate).toHaveTextContent("expected precision in the top 10%: 31.0%");
    expect(estimate).toHaveAttribute("title", "about 120 of 1000");
  });

  it("renders nothing for missing or partial pieces, and never throws", () => {
    const { container, rerender } = render(<TrustBanner metrics={{}} />);
    expect(container).toBeEmptyDOMElement();
    rerender(
      <TrustBanner
        metrics={{
          trust: { n_val: 6, val_accuracy: 0.5, is_evidence: false }, // no interval: an older shape
          mislabelled: null,
          method_benchmark: { summary: "x", rows: [] },
        }}
      />,
    );
    expect(container).toBeEmptyDOMElement();
    // A verdict without a loss still renders; an estimate without expected precision omits it.
    rerender(
      <TrustBanner
        metrics={{
          trust: { val_accuracy: 0.5, val_accuracy_ci95: [0.19, 0.81], is_evidence: false },
          mislabelled: { n: 54, estimated_count: 3, estimated_fraction: 0.05 },
        }}
      />,
    );
    expect(screen.getByTestId("trust-banner")).toHaveTextContent(/^The ranking is not evidence/);
    expect(screen.getByTestId("trust-banner")).not.toHaveTextContent("ln 2");
    expect(screen.getByTestId("mislabelled-estimate")).toHaveTextContent(
      "About 3 of 54 training pairs (5.0%) are probably mislabelled.",
    );
    expect(screen.getByTestId("mislabelled-estimate")).not.toHaveTextContent("precision");
    expect(screen.queryByText(/Which scores/)).not.toBeInTheDocument();
  });

  it("shows the estimate's own message when it has no count, and nothing for old jobs", () => {
    const { container, rerender } = render(<TrustBanner metrics={auditMetrics({ val_accuracy: 0.6 })} />);
    expect(container).toBeEmptyDOMElement();
    rerender(<TrustBanner metrics={{ mislabelled: { n: 0, estimated_count: null, message: "no training pairs" } }} />);
    expect(screen.getByTestId("mislabelled-estimate")).toHaveTextContent("no training pairs");
    expect(screen.queryByTestId("trust-banner")).not.toBeInTheDocument();
  });

  it("lists which methods the benchmark trusts", () => {
    render(
      <TrustBanner
        metrics={{
          trust: weak,
          method_benchmark: {
            summary: "Detection benchmark (70 cells)",
            rows: [
              { method: "length", mean_auroc: 0.718, beats_loss: true, beats_length: false },
              { method: "oof_loss", mean_auroc: 0.709, beats_loss: false, beats_length: false },
            ],
            notes: ["measured in head mode; this job ran in lora mode"],
          },
        }}
      />,
    );
    expect(screen.getByText("Which scores can be trusted at this data size?")).toBeInTheDocument();
    expect(screen.getByRole("table")).toHaveTextContent("out-of-fold loss0.709nono");
    expect(screen.getByRole("table")).toHaveTextContent("length heuristic0.718yesno");
    expect(screen.getByText(/measured in head mode/)).toBeInTheDocument();
  });

  it("replaces the green accuracy and the repeated warning inside a job's metrics", () => {
    render(
      <JobProgress
        job={makeJob({
          status: "succeeded",
          stage: "done",
          progress: 1,
          metrics: auditMetrics({
            val_accuracy: 0.5667,
            trust: weak,
            warnings: ["The ranking is not evidence: ...", "other"],
          }),
        })}
      />,
    );
    expect(screen.getByTestId("val-accuracy").parentElement).toHaveClass("untrusted");
    expect(screen.getByRole("note", { name: "Warnings" })).toHaveTextContent("other");
    expect(screen.getByRole("note", { name: "Warnings" })).not.toHaveTextContent("not evidence");
    expect(screen.getByTestId("trust-banner")).toHaveTextContent(/^The ranking is not evidence/);
  });

  it("keeps the accuracy green inside a job's metrics when the model beats chance", () => {
    render(
      <JobProgress
        job={makeJob({
          status: "succeeded",
          stage: "done",
          progress: 1,
          metrics: auditMetrics({
            val_accuracy: 0.62,
            trust: { ...weak, val_accuracy: 0.62, val_accuracy_ci95: [0.564, 0.673], is_evidence: true },
            truncation_rate: { train: 0.25, val: 0.1 },
            default_method: "oof_loss",
          }),
        })}
      />,
    );
    expect(screen.getByTestId("val-accuracy").parentElement).not.toHaveClass("untrusted");
    expect(screen.getByText("Truncated (train / validation)").nextSibling).toHaveTextContent("25.0% / 10.0%");
    expect(screen.getByText("Harm ranks by").nextSibling).toHaveTextContent("out-of-fold loss");
  });
});
