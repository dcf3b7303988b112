import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { mockApi, renderWithClient } from "../../../test/utils";
import { JudgeKeyField } from "./JudgeKeyField";

const PATH = "/api/v1/me/secrets/judge-api-key";

describe("JudgeKeyField", () => {
  it("sets the key once, never shows it, then clears it", async () => {
    let status: { set: boolean; updated_at: string | null } = { set: false, updated_at: null };
    const puts: unknown[] = [];
    const api = mockApi({
      [`GET ${PATH}`]: () => status,
      [`PUT ${PATH}`]: async (request) => {
        puts.push(await request.json());
        status = { set: true, updated_at: "2026-12-07T06:30:00Z" };
        return status;
      },
      [`DELETE ${PATH}`]: () => {
        status = { set: false, updated_at: null };
        return new Response(null, { status: 204 });
      },
    });
    renderWithClient(<JudgeKeyField />);
    expect(await screen.findByText(/Not set: your judge jobs send the server's key/)).toBeInTheDocument();
    const save = screen.getByRole("button", { name: "Save key" });
    expect(save).toBeDisabled();
    const input = screen.getByLabelText("Key");
    expect(input).toHaveAttribute("type", "password");
    await userEvent.type(input, "  sk-mine-123 ");
    await userEvent.click(save);
    expect(await screen.findByText(/Set \(.*\): your judge jobs send it instead/)).toBeInTheDocument();
    expect(puts).toEqual([{ value: "sk-mine-123" }]);
    // The field is emptied and the key is nowhere on the page.
    expect(screen.getByLabelText("Replace key")).toHaveValue("");
    expect(document.body.textContent).not.toContain("sk-mine-123");

    await userEvent.click(screen.getByRole("button", { name: "Clear key" }));
    expect(await screen.findByText(/Not set/)).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Clear key" })).not.toBeInTheDocument();
    await waitFor(() => expect(api.calls.filter((r) => r.method === "DELETE")).toHaveLength(1));
  });

  it("shows a refusal", async () => {
    mockApi({
      [`GET ${PATH}`]: () => ({ set: false, updated_at: null }),
      [`PUT ${PATH}`]: () =>
        new Response(JSON.stringify({ detail: [{ loc: ["body", "value"], msg: "String should have at most 4096 characters" }] }), {
          status: 422,
          headers: { "Content-Type": "application/json" },
        }),
    });
    renderWithClient(<JudgeKeyField />);
    await userEvent.type(await screen.findByLabelText("Key"), "x");
    await userEvent.click(screen.getByRole("button", { name: "Save key" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("value: String should have at most 4096 characters");
  });
});
