import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { setSignedIn } from "../../../api/session";
import { mockApi, renderWithClient } from "../../../test/utils";
import { AdminPage } from "./AdminPage";

const CREATED = "2026-12-03T10:00:00Z";

describe("AdminPage", () => {
  it("creates an account, grants admin, sets a password, deletes; never the admin's own", async () => {
    let users = [
      { id: 1, username: "root", is_admin: true, created_at: CREATED, n_datasets: 2 },
      { id: 2, username: "bob", is_admin: false, created_at: CREATED, n_datasets: 0 },
    ];
    const patches: unknown[] = [];
    mockApi({
      "GET /api/v1/users/me": () => ({ id: 1, username: "root", is_admin: true }),
      "GET /api/v1/admin/users": () => users,
      "POST /api/v1/admin/users": async (request) => {
        const body = (await request.json()) as { username: string; is_admin: boolean };
        const user = { id: 3, username: body.username, is_admin: body.is_admin, created_at: CREATED, n_datasets: 0 };
        users = [...users, user];
        return new Response(JSON.stringify(user), { status: 201, headers: { "Content-Type": "application/json" } });
      },
      "PATCH /api/v1/admin/users/2": async (request) => {
        const body = (await request.json()) as { is_admin?: boolean };
        patches.push(body);
        users = users.map((u) => (u.id === 2 && body.is_admin !== undefined ? { ...u, is_admin: body.is_admin } : u));
        return users[1];
      },
      "DELETE /api/v1/admin/users/3": () => {
        users = users.filter((u) => u.id !== 3);
        return new Response(null, { status: 204 });
      },
    });
    setSignedIn(true);
    renderWithClient(<AdminPage />);
    const table = await screen.findByRole("table", { name: "Accounts" });
    expect(within(table).getByLabelText("root is an admin")).toBeDisabled(); // not one's own right
    await waitFor(() => expect(within(table).getByRole("button", { name: "Delete account root" })).toBeDisabled());

    await userEvent.type(screen.getByLabelText("Username"), "carol");
    await userEvent.type(screen.getByLabelText("Password"), "carol-password");
    await userEvent.click(screen.getByRole("button", { name: "Create account" }));
    expect(await screen.findByRole("status")).toHaveTextContent("Created carol");
    expect(await within(table).findByText("carol")).toBeInTheDocument();

    await userEvent.click(within(table).getByLabelText("bob is an admin"));
    await waitFor(() => expect(patches).toContainEqual({ is_admin: true }));
    vi.spyOn(window, "prompt").mockReturnValue("bob-new-password");
    await userEvent.click(within(table).getByRole("button", { name: "New password for bob" }));
    await waitFor(() => expect(patches).toContainEqual({ password: "bob-new-password" }));
    expect(await screen.findByRole("status")).toHaveTextContent("their sessions and tokens ended");

    vi.spyOn(window, "confirm").mockReturnValue(true);
    await userEvent.click(within(table).getByRole("button", { name: "Delete account carol" }));
    await waitFor(() => expect(within(table).queryByText("carol")).not.toBeInTheDocument());
  });

  it("hands a leaving user's datasets to the account the admin names, then deletes it", async () => {
    let users = [
      { id: 1, username: "root", is_admin: true, created_at: CREATED, n_datasets: 0 },
      { id: 4, username: "dana", is_admin: false, created_at: CREATED, n_datasets: 2 },
    ];
    const deletes: string[] = [];
    mockApi({
      "GET /api/v1/users/me": () => ({ id: 1, username: "root", is_admin: true }),
      "GET /api/v1/admin/users": () => users,
      "DELETE /api/v1/admin/users/4": (_request, url) => {
        deletes.push(url.search);
        users = users.filter((u) => u.id !== 4);
        return new Response(null, { status: 204 });
      },
    });
    setSignedIn(true);
    renderWithClient(<AdminPage />);
    const table = await screen.findByRole("table", { name: "Accounts" });
    const prompt = vi.spyOn(window, "prompt").mockReturnValue(" root ");
    await userEvent.click(within(table).getByRole("button", { name: "Delete account dana" }));
    expect(prompt.mock.calls[0][0]).toContain("dana owns 2 datasets");
    await waitFor(() => expect(deletes).toEqual(["?transfer_to=root"]));
    expect(await screen.findByRole("status")).toHaveTextContent("root now owns their 2 datasets");
  });

  it("tells a non-admin they cannot manage users", async () => {
    mockApi({
      "GET /api/v1/users/me": () => ({ id: 5, username: "eve", is_admin: false }),
      "GET /api/v1/admin/users": () => new Response(JSON.stringify({ detail: "only an admin can manage users" }), { status: 403, headers: { "Content-Type": "application/json" } }),
    });
    setSignedIn(true);
    renderWithClient(<AdminPage />);
    expect(await screen.findByRole("alert")).toHaveTextContent("Only an admin manages users");
  });
});
