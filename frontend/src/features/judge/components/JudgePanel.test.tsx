import { fireEvent, screen, waitFor } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { mockApi, renderWithClient } from "../../../test/utils";
import { JudgePanel } from "./JudgePanel";

const defaults = {
  template: {
    system: "You are an impartial judge.",
    user: "Conversation:\n{prompt}\n\nA:\n{response_a}\n\nB:\n{response_b}\n\nAnswer A or B.",
    max_chars: 2000,
  },
  placeholders: ["{prompt}", "{response_a}", "{response_b}"],
  key_configured: false,
  columns: ["judge_p_chosen", "judge_position_bias"],
};

const estimate = {
  pairs: 1204,
  requests: 2408,
  cached_requests: 10,
  prompt_tokens: 345678,
  completion_tokens: 9632,
  token_method: "characters / 4 + 4 per message",
  seconds_per_request: 0.25,
  rate_source: "one probe request",
  seconds: 150.5,
};

const job = {
  id: 42,
  dataset_id: 3,
  kind: "judge",
  status: "queued",
  config: { base_url: "http://127.0.0.1:8080/v1", model: "smollm2" },
  created_at: "2026-12-07T04:00:00Z",
};

/** The caller has no judge key of their own (components/JudgeKeyField.tsx). */
const noOwnKey = { "GET /api/v1/me/secrets/judge-api-key": () => ({ set: false, updated_at: null }) };

function fillForm() {
  fireEvent.change(screen.getByLabelText("Base URL"), { target: { value: " http://127.0.0.1:8080/v1 " } });
  fireEvent.change(screen.getByLabelText("Model"), { target: { value: "smollm2" } });
  fireEvent.change(screen.getByLabelText("Max concurrency"), { target: { value: "8" } });
}

describe("JudgePanel", () => {
  it("shows the server's estimate before launch, then posts the form's values", async () => {
    const bodies: Record<string, unknown>[] = [];
    const api = mockApi({
      "GET /api/v1/judge/defaults": () => defaults,
      ...noOwnKey,
      "POST /api/v1/datasets/3/judge/estimate": async (request) => {
        bodies.push(await request.json());
        return estimate;
      },
      "POST /api/v1/datasets/3/judge": async (request) => {
        bodies.push(await request.json());
        return new Response(JSON.stringify(job), { status: 202, headers: { "Content-Type": "application/json" } });
      },
    });
    const onLaunched = vi.fn();
    renderWithClient(<JudgePanel datasetId={3} onLaunched={onLaunched} />);
    expect(screen.getByText(/API key is yours \(below, stored encrypted\) or else the server’s setting/)).toBeInTheDocument();
    // The default template from the server fills the editor.
    expect(await screen.findByLabelText("System message")).toHaveValue("You are an impartial judge.");
    fillForm();
    fireEvent.change(screen.getByLabelText("User message"), {
      target: { value: "Which is better?\n{prompt}\n{response_a}\n{response_b}" },
    });
    const launch = screen.getByRole("button", { name: "Launch judge job" });
    expect(launch).toBeDisabled();
    fireEvent.click(screen.getByLabelText(/Probe the server/));
    fireEvent.click(screen.getByRole("button", { name: "Estimate" }));

    expect(await screen.findByTestId("judge-requests")).toHaveTextContent("2,408 requests (1,204 pairs, both orders)");
    expect(screen.getByTestId("judge-cached")).toHaveTextContent("10 requests answered already");
    expect(screen.getByTestId("judge-prompt-tokens")).toHaveTextContent("345678");
    expect(screen.getByTestId("judge-completion-tokens")).toHaveTextContent("9632");
    expect(screen.getByTestId("judge-time")).toHaveTextContent("150.5 s");
    expect(screen.getByTestId("judge-time")).toHaveTextContent("0.25 s per request");
    expect(screen.getByTestId("judge-time")).toHaveTextContent("one probe request");
    const expected = {
      base_url: "http://127.0.0.1:8080/v1",
      model: "smollm2",
      max_concurrency: 8,
      template: {
        system: "You are an impartial judge.",
        user: "Which is better?\n{prompt}\n{response_a}\n{response_b}",
        max_chars: 2000,
      },
    };
    expect(bodies[0]).toEqual({ ...expected, probe: true });

    await waitFor(() => expect(launch).toBeEnabled());
    fireEvent.click(launch);
    expect(await screen.findByRole("status")).toHaveTextContent("Queued judge job 42 (queued)");
    expect(bodies[1]).toEqual(expected);
    expect(onLaunched).toHaveBeenCalledWith(expect.objectContaining({ id: 42 }));
    expect(api.calls.filter((r) => r.method === "POST")).toHaveLength(2);
  });

  it("asks for a new estimate when the form changes after one", async () => {
    mockApi({
      "GET /api/v1/judge/defaults": () => defaults,
      ...noOwnKey,
      "POST /api/v1/datasets/3/judge/estimate": () => ({ ...estimate, cached_requests: null, seconds: null }),
    });
    renderWithClient(<JudgePanel datasetId={3} />);
    await screen.findByLabelText("System message");
    fillForm();
    fireEvent.click(screen.getByRole("button", { name: "Estimate" }));
    expect(await screen.findByTestId("judge-time")).toHaveTextContent("unknown: no rate yet");
    expect(screen.getByTestId("judge-cached")).toHaveTextContent("not counted");
    const launch = screen.getByRole("button", { name: "Launch judge job" });
    await waitFor(() => expect(launch).toBeEnabled());
    fireEvent.change(screen.getByLabelText("Model"), { target: { value: "another" } });
    expect(launch).toBeDisabled();
    expect(screen.getByText(/estimate again before launching/)).toBeInTheDocument();
  });

  it("shows the server's refusal as an alert", async () => {
    mockApi({
      "GET /api/v1/judge/defaults": () => defaults,
      ...noOwnKey,
      "POST /api/v1/datasets/3/judge/estimate": () =>
        new Response(
          JSON.stringify({ detail: "base_url must not carry credentials: the key is a server setting" }),
          { status: 422, headers: { "Content-Type": "application/json" } },
        ),
    });
    renderWithClient(<JudgePanel datasetId={3} />);
    await screen.findByLabelText("System message");
    fillForm();
    fireEvent.click(screen.getByRole("button", { name: "Estimate" }));
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("Could not estimate");
    expect(alert).toHaveTextContent("base_url must not carry credentials");
    expect(screen.queryByTestId("judge-requests")).not.toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Launch judge job" })).toBeDisabled();
  });
});
