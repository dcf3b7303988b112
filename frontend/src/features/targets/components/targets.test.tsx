import { fireEvent, screen, waitFor } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { mockApi, renderWithClient } from "../../../test/utils";
import { TargetComparison } from "./TargetComparison";
import { TargetSetsPanel } from "./TargetSetsPanel";

const target = {
  id: 7,
  dataset_id: 3,
  name: "my reviews",
  source: "reviewed",
  description: "the reviewed pairs of dataset 3",
  n_pairs: 24,
  created_at: "2026-12-07T03:00:00Z",
};

describe("TargetSetsPanel", () => {
  it("composes a target by a rule and says how many pairs it holds", async () => {
    const api = mockApi({
      "GET /api/v1/datasets/3/target-sets": () => ({ items: [target], total: 1 }),
      "POST /api/v1/datasets/3/target-sets": async (request) => {
        const body = await request.json();
        expect(body).toEqual({ name: "", source: { kind: "rule", rule: "longer_preferred", limit: 50 } });
        return { ...target, id: 8, name: "rule:longer_preferred (50 pairs)", n_pairs: 50, sample: [] };
      },
    });
    renderWithClient(<TargetSetsPanel datasetId={3} canEdit otherDatasets={[]} />);
    expect(await screen.findByText("my reviews")).toBeInTheDocument();
    fireEvent.change(screen.getByLabelText("Target source"), { target: { value: "rule" } });
    fireEvent.change(screen.getByLabelText("Target rule"), { target: { value: "longer_preferred" } });
    fireEvent.change(screen.getByLabelText("At most (pairs)"), { target: { value: "50" } });
    fireEvent.click(screen.getByRole("button", { name: "Create target set" }));
    expect(await screen.findByRole("status")).toHaveTextContent(
      "Created “rule:longer_preferred (50 pairs)” with 50 pairs.",
    );
    expect(api.calls.some((r) => r.method === "POST")).toBe(true);
  });

  it("shows the server's size refusal as an alert", async () => {
    mockApi({
      "GET /api/v1/datasets/3/target-sets": () => ({ items: [], total: 0 }),
      "POST /api/v1/datasets/3/target-sets": () =>
        new Response(
          JSON.stringify({ detail: "the target set from the reviewed pairs of dataset 3 would hold 4 pair(s); a target set holds 20–500 pairs" }),
          { status: 422, headers: { "Content-Type": "application/json" } },
        ),
    });
    renderWithClient(<TargetSetsPanel datasetId={3} canEdit otherDatasets={[]} />);
    expect(await screen.findByText("No target sets yet.")).toBeInTheDocument();
    fireEvent.click(screen.getByRole("button", { name: "Create target set" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("would hold 4 pair(s); a target set holds 20–500 pairs");
  });
});

describe("TargetComparison", () => {
  it("lists both top-k side by side and marks the pairs in both", async () => {
    mockApi({
      "GET /api/v1/datasets/3/target-comparison": (_request, url) => {
        expect(url.searchParams.get("job_a")).toBe("11");
        expect(url.searchParams.get("job_b")).toBe("12");
        return {
          column: "harm_influence",
          k: 20,
          job_a: 11,
          job_b: 12,
          target_a: "shorter (target set 1)",
          target_b: "longer (target set 2)",
          overlap: 1,
          jaccard: 1 / 3,
          spearman: -0.8,
          top_a: [
            { pair_id: 5, rank: 1, harm: 2 },
            { pair_id: 6, rank: 2, harm: 1 },
          ],
          top_b: [
            { pair_id: 6, rank: 1, harm: 3 },
            { pair_id: 9, rank: 2, harm: 1 },
          ],
          scatter: [
            [1, -1],
            [2, -2],
          ],
        };
      },
    });
    renderWithClient(
      <TargetComparison
        datasetId={3}
        audits={[
          { id: 11, label: "Audit 11: shorter" },
          { id: 12, label: "Audit 12: longer" },
        ]}
      />,
    );
    const view = await screen.findByTestId("target-comparison");
    expect(view).toHaveTextContent("1 of the top 20 pairs are in both lists");
    expect(screen.getByRole("heading", { name: "shorter (target set 1)" })).toBeInTheDocument();
    expect(screen.getAllByText(/\(in both\)/)).toHaveLength(2);
    expect(screen.getByRole("img", { name: /Harm against target A/ }).querySelectorAll("circle")).toHaveLength(2);
    await waitFor(() => expect(view).toHaveTextContent("over every pair: -0.8"));
  });
});
