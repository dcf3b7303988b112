import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { TrustBanner } from "./TrustBanner";

const trust = {
  n_val: 300,
  val_accuracy: 0.66,
  val_accuracy_ci95: [0.6, 0.71],
  val_loss: 0.64,
  ln2: 0.693147,
  is_evidence: true,
};

describe("TrustBanner: the per-job default", () => {
  it("states which ranking the job chose, why, and what it expects to find", () => {
    const reason =
      "influence beat the loss on the canaries by 0.081 AUROC, more than its standard error (0.041): " +
      "on 40 canaries this ranking put 31 in its top 10% (canary AUROC 0.910 ± 0.041).";
    render(<TrustBanner metrics={{ trust, default_choice: { method: "influence", reason, canaries: 40 } }} />);
    const line = screen.getByTestId("default-choice");
    expect(line).toHaveTextContent("chosen by this job");
    expect(line).toHaveTextContent("on 40 canaries this ranking put 31 in its top 10%");
  });

  it("renders no line for jobs from before the per-job default", () => {
    render(<TrustBanner metrics={{ trust }} />);
    expect(screen.queryByTestId("default-choice")).toBeNull();
  });
});
