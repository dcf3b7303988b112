import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { makeJob } from "../../../test/fixtures";
import { mockApi, renderWithClient } from "../../../test/utils";
import { LaunchAuditForm } from "./LaunchAuditForm";

const SAVED = [
  {
    ref: "job:7",
    job_id: 7,
    dataset_id: 1,
    dataset_name: "helpful-90",
    model: "tiny",
    path: "/data/models/job-7",
    finished_at: null,
  },
  {
    ref: "job:8",
    job_id: 8,
    dataset_id: 1,
    dataset_name: "helpful-90",
    model: "minilm",
    path: "/data/models/job-8",
    finished_at: null,
  },
];

describe("RewardModelsField", () => {
  it("offers the saved models and sends the ticked ones and typed ones as reward_models", async () => {
    const bodies: unknown[] = [];
    mockApi({
      "GET /api/v1/saved-models": () => SAVED,
      "POST /api/v1/datasets/1/jobs": async (request) => {
        bodies.push(await request.json());
        return new Response(JSON.stringify(makeJob({ id: 9 })), {
          status: 202,
          headers: { "Content-Type": "application/json" },
        });
      },
    });
    const onLaunched = vi.fn();
    renderWithClient(<LaunchAuditForm datasetId={1} onLaunched={onLaunched} />);
    await userEvent.click(screen.getByText("Advanced options"));
    const first = await screen.findByRole("checkbox", { name: "Audit #7: tiny on helpful-90" });
    await userEvent.click(first);
    await userEvent.click(screen.getByRole("checkbox", { name: "Audit #8: minilm on helpful-90" }));
    await userEvent.type(
      screen.getByLabelText("Other reward models: a directory or hub id per line"),
      "/models/rm-a{enter}org/rm-b",
    );
    await userEvent.click(screen.getByRole("button", { name: "Launch audit" }));
    await waitFor(() => expect(onLaunched).toHaveBeenCalled());
    expect(bodies[0]).toMatchObject({ reward_models: ["job:7", "job:8", "/models/rm-a", "org/rm-b"] });

    // Four is the limit: the unticked saved model cannot be added past it.
    await userEvent.click(first);
    expect(first).not.toBeChecked();
    await userEvent.type(
      screen.getByLabelText("Other reward models: a directory or hub id per line"),
      "{enter}org/rm-c",
    );
    expect(first).toBeDisabled();
  });

  it("sends no reward_models when none is picked, and says when none is saved", async () => {
    const bodies: unknown[] = [];
    mockApi({
      "GET /api/v1/saved-models": () => [],
      "POST /api/v1/datasets/1/jobs": async (request) => {
        bodies.push(await request.json());
        return new Response(JSON.stringify(makeJob({ id: 9 })), { status: 202 });
      },
    });
    renderWithClient(<LaunchAuditForm datasetId={1} onLaunched={() => {}} />);
    expect(await screen.findByText(/No saved models yet/)).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Launch audit" }));
    await waitFor(() => expect(bodies).toHaveLength(1));
    expect(bodies[0]).not.toHaveProperty("reward_models");
  });
});
