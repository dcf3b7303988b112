import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { isSignedIn, setSignedIn } from "../../../api/session";
import { mockApi, renderWithClient } from "../../../test/utils";
import { TokensPage } from "./TokensPage";
import { UserMenu } from "./UserMenu";

const SOON = new Date(Date.now() + 3 * 86_400_000).toISOString();

describe("TokensPage", () => {
  it("lists tokens with their expiry, creates one shown once, and revokes", async () => {
    let tokens = [
      { id: 1, name: "browser session", prefix: "pfa_abcdef", created_at: "2026-12-01T10:00:00Z", last_used_at: null, expires_at: SOON },
      { id: 2, name: "cron", prefix: "pfa_123456", created_at: "2026-12-01T10:00:00Z", last_used_at: null, expires_at: null },
    ];
    const bodies: unknown[] = [];
    mockApi({
      "GET /api/v1/tokens": () => tokens,
      "POST /api/v1/tokens": async (request) => {
        bodies.push(await request.json());
        tokens = [...tokens, { ...tokens[1], id: 3, name: "ci", prefix: "pfa_zzzzzz" }];
        return new Response(
          JSON.stringify({ access_token: "pfa_secret-value", token_type: "bearer", user: { id: 1, username: "a" } }),
          { status: 201, headers: { "Content-Type": "application/json" } },
        );
      },
      "DELETE /api/v1/tokens/2": () => {
        tokens = tokens.filter((t) => t.id !== 2);
        return new Response(null, { status: 204 });
      },
    });
    renderWithClient(<TokensPage />);
    const table = await screen.findByRole("table", { name: "API tokens" });
    expect(within(table).getAllByRole("row")).toHaveLength(3);
    expect(within(table).getByText("never")).toBeInTheDocument();

    await userEvent.type(screen.getByLabelText("Name"), "ci");
    await userEvent.clear(screen.getByLabelText("Expires after (days, 0 = never)"));
    await userEvent.type(screen.getByLabelText("Expires after (days, 0 = never)"), "30");
    await userEvent.type(screen.getByLabelText("Your password"), "my-password");
    await userEvent.click(screen.getByRole("button", { name: "Create token" }));
    expect(await screen.findByTestId("new-token")).toHaveTextContent("pfa_secret-value");
    expect(bodies).toEqual([{ name: "ci", expires_in_days: 30, password: "my-password" }]);
    expect(screen.getByLabelText("Your password")).toHaveValue(""); // not kept once used
    await waitFor(() => expect(within(table).getAllByRole("row")).toHaveLength(4));

    await userEvent.click(screen.getByRole("button", { name: "Revoke cron (pfa_123456…)" }));
    await waitFor(() => expect(within(table).queryByText("cron")).not.toBeInTheDocument());
  });
});

describe("PasswordCard", () => {
  it("changes the password with the current one and says a wrong one is wrong", async () => {
    const bodies: unknown[] = [];
    mockApi({
      "GET /api/v1/tokens": () => [],
      "PUT /api/v1/users/me/password": async (request) => {
        const body = (await request.json()) as { current_password: string };
        bodies.push(body);
        if (body.current_password !== "old-password") {
          return new Response(JSON.stringify({ detail: "wrong password: changing your password needs the current one" }), {
            status: 403,
            headers: { "Content-Type": "application/json" },
          });
        }
        return new Response(null, { status: 204 });
      },
    });
    renderWithClient(<TokensPage />);
    const form = await screen.findByRole("form", { name: "Change your password" });
    await userEvent.type(within(form).getByLabelText("Current password"), "guess-wrong");
    await userEvent.type(within(form).getByLabelText("New password"), "a-new-password");
    await userEvent.click(within(form).getByRole("button", { name: "Change password" }));
    expect(await within(form).findByRole("alert")).toHaveTextContent("wrong password");
    await userEvent.clear(within(form).getByLabelText("Current password"));
    await userEvent.type(within(form).getByLabelText("Current password"), "old-password");
    await userEvent.click(within(form).getByRole("button", { name: "Change password" }));
    expect(await within(form).findByRole("status")).toHaveTextContent("other sessions and tokens have ended");
    expect(bodies).toEqual([
      { current_password: "guess-wrong", new_password: "a-new-password" },
      { current_password: "old-password", new_password: "a-new-password" },
    ]);
  });
});

describe("UserMenu", () => {
  it("logs out by revoking the session on the server, sending the session's CSRF value", async () => {
    const { calls } = mockApi({
      "GET /api/v1/users/me": () => ({ id: 1, username: "alice" }),
      "POST /api/v1/auth/logout": () => new Response(null, { status: 204 }),
    });
    setSignedIn(true);
    document.cookie = "prefaudit_csrf=csrf-value; path=/";
    renderWithClient(<UserMenu />);
    expect(await screen.findByText("Signed in as alice")).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "API tokens" })).toHaveAttribute("href", "/tokens");
    await userEvent.click(screen.getByRole("button", { name: "Log out" }));
    await waitFor(() => expect(isSignedIn()).toBe(false));
    const logout = calls.find((r) => new URL(r.url).pathname === "/api/v1/auth/logout")!;
    expect(logout.headers.get("X-CSRF-Token")).toBe("csrf-value");
    expect(logout.headers.get("Authorization")).toBeNull(); // the credential is the cookie
    const me = calls.find((r) => new URL(r.url).pathname === "/api/v1/users/me")!;
    expect(me.headers.get("X-CSRF-Token")).toBeNull(); // a read sends none
  });
});
