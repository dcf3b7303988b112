import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { makeJob } from "../../../test/fixtures";
import { mockApi, renderWithClient } from "../../../test/utils";
import { LaunchAuditForm } from "./LaunchAuditForm";

describe("LaunchAuditForm", () => {
  it("launches with the minilm preset by default, sending only what differs from defaults", async () => {
    const bodies: unknown[] = [];
    mockApi({
      "GET /api/v1/saved-models": () => [],
      "POST /api/v1/datasets/1/jobs": async (request) => {
        bodies.push(await request.json());
        return new Response(JSON.stringify(makeJob({ id: 9 })), {
          status: 202,
          headers: { "Content-Type": "application/json" },
        });
      },
      "GET /api/v1/datasets/1/jobs": () => ({ items: [], total: 0 }),
    });
    const onLaunched = vi.fn();
    renderWithClient(<LaunchAuditForm datasetId={1} onLaunched={onLaunched} />);
    expect(screen.getByLabelText("Model preset")).toHaveValue("minilm");
    await userEvent.click(screen.getByRole("button", { name: "Launch audit" }));
    await waitFor(() => expect(onLaunched).toHaveBeenCalled());
    expect(bodies[0]).toEqual({ kind: "audit", model: "minilm" });

    await userEvent.selectOptions(screen.getByLabelText("Model preset"), "tiny");
    await userEvent.click(screen.getByText("Advanced options"));
    await userEvent.type(screen.getByLabelText("Epochs"), "3");
    await userEvent.click(screen.getByRole("button", { name: "Launch audit" }));
    await waitFor(() => expect(bodies).toHaveLength(2));
    expect(bodies[1]).toEqual({ kind: "audit", model: "tiny", epochs: 3 });

    // The new engine methods are offered under human names; length is on by default.
    expect(screen.getByRole("checkbox", { name: "length heuristic" })).toBeChecked();
    expect(screen.getByRole("checkbox", { name: "out-of-fold loss" })).not.toBeChecked();
    expect(screen.getByRole("checkbox", { name: "ensemble (−mean margin)" })).not.toBeChecked();

    // Left alone, the job chooses its harm ranking; length can be forced like any method.
    const harm = screen.getByLabelText("Harm ranks by");
    expect(harm).toHaveDisplayValue("chosen by the job from its own evidence (canaries, validation)");
    await userEvent.selectOptions(harm, "length");
    await userEvent.click(screen.getByRole("button", { name: "Launch audit" }));
    await waitFor(() => expect(bodies).toHaveLength(3));
    expect(bodies[2]).toEqual({ kind: "audit", model: "tiny", epochs: 3, default_method: "length" });

    // Methods and the harm method are sent only once changed.
    await userEvent.click(screen.getByRole("checkbox", { name: "tracin" }));
    await userEvent.selectOptions(screen.getByLabelText("Harm ranks by"), "tracin");
    await userEvent.click(screen.getByRole("button", { name: "Launch audit" }));
    await waitFor(() => expect(bodies).toHaveLength(4));
    expect(bodies[3]).toMatchObject({ default_method: "tracin" });
    expect((bodies[3] as { methods: string[] }).methods).toContain("tracin");
  });

  it("shows why the server refused the options", async () => {
    mockApi({
      "GET /api/v1/saved-models": () => [],
      "POST /api/v1/datasets/1/jobs": () =>
        new Response(JSON.stringify({ detail: "default_method 'tracin' is not among methods" }), {
          status: 422,
          headers: { "Content-Type": "application/json" },
        }),
    });
    renderWithClient(<LaunchAuditForm datasetId={1} onLaunched={() => {}} />);
    await userEvent.click(screen.getByRole("button", { name: "Launch audit" }));
    expect(await screen.findByRole("alert")).toHaveTextContent(
      "Could not launch: default_method 'tracin' is not among methods",
    );
  });

  it("shows LoRA-only options (epochs, learning rate) only in LoRA mode, and never sends them otherwise", async () => {
    const bodies: unknown[] = [];
    mockApi({
      "GET /api/v1/saved-models": () => [],
      "POST /api/v1/datasets/1/jobs": async (request) => {
        bodies.push(await request.json());
        return new Response(JSON.stringify(makeJob({ id: 9 })), {
          status: 202,
          headers: { "Content-Type": "application/json" },
        });
      },
    });
    renderWithClient(<LaunchAuditForm datasetId={1} onLaunched={vi.fn()} />);
    await userEvent.click(screen.getByText("Advanced options"));
    await userEvent.type(screen.getByLabelText("Epochs"), "3");
    await userEvent.selectOptions(screen.getByLabelText("Training mode"), "head");
    expect(screen.queryByLabelText("Epochs")).toBeNull();
    expect(screen.queryByLabelText("Learning rate")).toBeNull();
    expect(screen.getByLabelText("Batch size")).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Launch audit" }));
    await waitFor(() => expect(bodies).toHaveLength(1));
    expect(bodies[0]).toEqual({ kind: "audit", model: "minilm", mode: "head" });
  });
});
