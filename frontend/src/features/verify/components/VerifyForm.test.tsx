import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { auditMetrics, makeJob, makePair } from "../../../test/fixtures";
import { mockApi, renderWithClient } from "../../../test/utils";
import { VerifyForm } from "./VerifyForm";

const audit = makeJob({
  id: 5,
  status: "succeeded",
  config: { model: "tiny" },
  metrics: auditMetrics({ default_method: "influence" }),
});

function setup({ flaggedCount = 4, job = audit }: { flaggedCount?: number; job?: typeof audit } = {}) {
  const bodies: unknown[] = [];
  const api = mockApi({
    // One scored pair tells which harm columns the audit computed (null = not computed).
    "GET /api/v1/datasets/1/pairs": () => ({
      items: [
        makePair(0, 0.3, {
          scores: {
            split: "train",
            harm: 0.3,
            loss: 0.6,
            harm_loss: 0.6,
            harm_influence: 0.3,
            removal_effect_influence: -0.3,
            harm_tracin: null,
          },
        }),
      ],
      total: 60,
    }),
    "POST /api/v1/datasets/1/jobs": async (request) => {
      bodies.push(await request.json());
      return new Response(JSON.stringify(makeJob({ id: 8, kind: "verify" })), {
        status: 202,
        headers: { "Content-Type": "application/json" },
      });
    },
  });
  const onLaunched = vi.fn();
  renderWithClient(
    <VerifyForm
      datasetId={1}
      audit={job}
      flaggedCount={flaggedCount}
      testDatasets={[{ id: 2, name: "held-out", n_pairs: 500 }]}
      onLaunched={onLaunched}
    />,
  );
  return { ...api, bodies, onLaunched };
}

describe("VerifyForm", () => {
  it("posts a verify job pruning the top 10% by harm over 3 seeds by default", async () => {
    const { bodies, onLaunched, calls } = setup();
    expect(screen.getByLabelText("Fraction to prune (%)")).toHaveValue(10);
    expect(screen.getByLabelText("Seeds")).toHaveValue(3);
    expect(screen.getByLabelText("Evaluate on")).toHaveValue("");
    await userEvent.click(screen.getByRole("button", { name: "Verify pruning" }));
    await waitFor(() => expect(onLaunched).toHaveBeenCalledWith(expect.objectContaining({ id: 8 })));
    expect(bodies).toEqual([
      {
        kind: "verify",
        audit_job_id: 5,
        use_flags: false,
        method: "harm",
        fraction: 0.1,
        seeds: 3,
        test_dataset_id: null,
      },
    ]);
    const scores = calls.find((r) => new URL(r.url).pathname.endsWith("/pairs"))!;
    expect(new URL(scores.url).searchParams.get("job_id")).toBe("5");
  });

  it("offers the audit's harm columns, a fraction, seeds and a test dataset", async () => {
    const { bodies } = setup();
    const rankedBy = screen.getByLabelText("Ranked by");
    // Only the columns the audit computed: harm_tracin is null.
    await waitFor(() =>
      expect([...rankedBy.querySelectorAll("option")].map((o) => o.value)).toEqual([
        "harm",
        "harm_loss",
        "harm_influence",
      ]),
    );
    expect(screen.getByRole("option", { name: /harm \(the audit's ranking: influence\)/ })).toBeInTheDocument();
    await userEvent.selectOptions(rankedBy, "harm_influence");
    await userEvent.clear(screen.getByLabelText("Fraction to prune (%)"));
    await userEvent.type(screen.getByLabelText("Fraction to prune (%)"), "20");
    await userEvent.clear(screen.getByLabelText("Seeds"));
    await userEvent.type(screen.getByLabelText("Seeds"), "2");
    await userEvent.selectOptions(screen.getByLabelText("Evaluate on"), "2");
    await userEvent.click(screen.getByRole("button", { name: "Verify pruning" }));
    await waitFor(() => expect(bodies).toHaveLength(1));
    expect(bodies[0]).toEqual({
      kind: "verify",
      audit_job_id: 5,
      use_flags: false,
      method: "harm_influence",
      fraction: 0.2,
      seeds: 2,
      test_dataset_id: 2,
    });
  });

  it("prunes the current flags with use_flags and no fraction", async () => {
    const { bodies } = setup();
    expect(screen.getByText("(4 pairs)")).toBeInTheDocument();
    await userEvent.click(screen.getByRole("radio", { name: /my current flags/i }));
    expect(screen.getByLabelText("Fraction to prune (%)")).toBeDisabled();
    await userEvent.click(screen.getByRole("button", { name: "Verify pruning" }));
    await waitFor(() => expect(bodies).toHaveLength(1));
    expect(bodies[0]).toEqual({
      kind: "verify",
      audit_job_id: 5,
      use_flags: true,
      seeds: 3,
      test_dataset_id: null,
    });
  });

  it("cannot prune flags when none are flagged, nor launch with a bad fraction or seeds", async () => {
    setup({ flaggedCount: 0 });
    expect(screen.getByRole("radio", { name: /my current flags/i })).toBeDisabled();
    expect(screen.getByText("(none flagged yet)")).toBeInTheDocument();
    const button = screen.getByRole("button", { name: "Verify pruning" });
    await userEvent.clear(screen.getByLabelText("Fraction to prune (%)"));
    await userEvent.type(screen.getByLabelText("Fraction to prune (%)"), "100");
    expect(button).toBeDisabled();
    expect(screen.getByText(/between 0 and 100%/)).toBeInTheDocument();
    await userEvent.clear(screen.getByLabelText("Fraction to prune (%)"));
    await userEvent.type(screen.getByLabelText("Fraction to prune (%)"), "5");
    await userEvent.clear(screen.getByLabelText("Seeds"));
    await userEvent.type(screen.getByLabelText("Seeds"), "0");
    expect(button).toBeDisabled();
    await userEvent.clear(screen.getByLabelText("Seeds"));
    await userEvent.type(screen.getByLabelText("Seeds"), "1");
    expect(button).toBeEnabled();
    expect(screen.getByText(/one seed the differences get no interval/)).toBeInTheDocument();
  });

  it("shows why the server refused", async () => {
    mockApi({
      "GET /api/v1/datasets/1/pairs": () => ({ items: [], total: 0 }),
      "POST /api/v1/datasets/1/jobs": () =>
        new Response(JSON.stringify({ detail: "audit job 5 is running; verify a succeeded audit" }), {
          status: 422,
          headers: { "Content-Type": "application/json" },
        }),
    });
    renderWithClient(<VerifyForm datasetId={1} audit={audit} testDatasets={[]} onLaunched={() => {}} />);
    await userEvent.click(screen.getByRole("button", { name: "Verify pruning" }));
    expect(await screen.findByRole("alert")).toHaveTextContent(
      "Could not launch: audit job 5 is running; verify a succeeded audit",
    );
  });

  it("offers the greedy budget against top-K and random for a group audit", async () => {
    const group = makeJob({
      id: 5,
      status: "succeeded",
      config: { model: "tiny" },
      metrics: auditMetrics({ default_method: "group", group: { candidates: 54, budget: 6 } }),
    });
    const { bodies } = setup({ job: group });
    await userEvent.click(screen.getByLabelText("The greedy budget (6 pairs) vs top-K vs random"));
    expect(screen.getByText(/once per\s+seed \(12/)).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Verify pruning" }));
    await waitFor(() => expect(bodies).toHaveLength(1));
    expect(bodies[0]).toMatchObject({ kind: "verify", audit_job_id: 5, rule: "greedy", use_flags: false, seeds: 3 });
  });

  it("has no greedy option for an audit without the group method", () => {
    setup();
    expect(screen.queryByLabelText(/The greedy budget/)).not.toBeInTheDocument();
  });
});
