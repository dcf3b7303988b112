import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { mockApi, renderWithClient } from "../../../test/utils";
import { SharingPanel } from "./SharingPanel";

describe("SharingPanel", () => {
  it("shares by username, changes a role, stops sharing, and shows a refusal", async () => {
    let shares = [{ user_id: 7, username: "bob", role: "viewer", created_at: "2026-12-03T10:00:00Z" }];
    const puts: unknown[] = [];
    mockApi({
      "GET /api/v1/datasets/3/shares": () => shares,
      "PUT /api/v1/datasets/3/shares": async (request) => {
        const body = (await request.json()) as { username: string; role: string };
        puts.push(body);
        if (body.username === "nobody") {
          return new Response(JSON.stringify({ detail: "no user is named 'nobody'; an admin can create the account" }), {
            status: 404,
            headers: { "Content-Type": "application/json" },
          });
        }
        const row = { user_id: body.username === "bob" ? 7 : 8, username: body.username, role: body.role, created_at: "2026-12-03T10:00:00Z" };
        shares = [...shares.filter((s) => s.username !== body.username), row];
        return row;
      },
      "DELETE /api/v1/datasets/3/shares/7": () => {
        shares = shares.filter((s) => s.user_id !== 7);
        return new Response(null, { status: 204 });
      },
    });
    renderWithClient(<SharingPanel datasetId={3} />);
    const table = await screen.findByRole("table", { name: "People this dataset is shared with" });
    expect(within(table).getByText("bob")).toBeInTheDocument();

    await userEvent.type(screen.getByLabelText("Username"), "carol");
    await userEvent.selectOptions(screen.getByLabelText("Share as"), "reviewer");
    await userEvent.click(screen.getByRole("button", { name: "Share" }));
    expect(await within(table).findByText("carol")).toBeInTheDocument();
    expect(screen.getByLabelText("Username")).toHaveValue("");

    await userEvent.selectOptions(screen.getByLabelText("Role of bob"), "reviewer");
    await waitFor(() => expect(puts).toContainEqual({ username: "bob", role: "reviewer" }));

    await userEvent.type(screen.getByLabelText("Username"), "nobody");
    await userEvent.click(screen.getByRole("button", { name: "Share" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("no user is named 'nobody'");

    await userEvent.click(screen.getByRole("button", { name: "Stop sharing with bob" }));
    await waitFor(() => expect(within(table).queryByText("bob")).not.toBeInTheDocument());
  });

  it("transfers ownership after a confirmation and shows a refusal", async () => {
    const posts: unknown[] = [];
    mockApi({
      "GET /api/v1/datasets/3/shares": () => [],
      "POST /api/v1/datasets/3/transfer": async (request) => {
        const body = (await request.json()) as { username: string };
        posts.push(body);
        if (body.username === "nobody") {
          return new Response(JSON.stringify({ detail: "no user is named 'nobody'; an admin can create the account" }), {
            status: 404,
            headers: { "Content-Type": "application/json" },
          });
        }
        return { dataset_id: 3, owner_id: 9, owner_name: body.username, jobs_moved: 2 };
      },
    });
    const confirm = vi.spyOn(window, "confirm").mockReturnValueOnce(false).mockReturnValue(true);
    renderWithClient(<SharingPanel datasetId={3} />);
    const form = await screen.findByRole("form", { name: "Transfer ownership" });
    await userEvent.type(within(form).getByLabelText("New owner"), "nobody");
    await userEvent.click(within(form).getByRole("button", { name: "Transfer ownership" }));
    expect(posts).toEqual([]); // declined: nothing sent
    await userEvent.click(within(form).getByRole("button", { name: "Transfer ownership" }));
    expect(await within(form).findByRole("alert")).toHaveTextContent("no user is named 'nobody'");
    await userEvent.clear(within(form).getByLabelText("New owner"));
    await userEvent.type(within(form).getByLabelText("New owner"), "heir");
    await userEvent.click(within(form).getByRole("button", { name: "Transfer ownership" }));
    await waitFor(() => expect(posts).toEqual([{ username: "nobody" }, { username: "heir" }]));
    expect(confirm.mock.calls[0][0]).toContain("You keep no access");
  });
});
