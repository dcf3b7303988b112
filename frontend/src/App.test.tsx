import { act, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { App } from "./App";
import type { Schemas } from "./api/client";
import { setSignedIn } from "./api/session";
import { mockApi } from "./test/utils";

// The whole app as a full page load finds it: a URL, the session flag in localStorage (the
// credential being an HttpOnly cookie the page cannot see), and the server.
const ADMIN = { id: 1, username: "admin", is_admin: true };

function dataset(overrides: Partial<Schemas["DatasetPublic"]> = {}): Schemas["DatasetPublic"] {
  return {
    id: 8,
    name: "helpful-600",
    filename: "helpful.jsonl",
    format: "jsonl",
    schema_kind: "hh",
    n_pairs: 599,
    created_at: "2026-12-01T10:00:00Z",
    role: "owner",
    owner_name: "admin",
    ...overrides,
  };
}

function openAt(url: string) {
  window.history.replaceState(null, "", url);
  return render(<App />);
}

const here = () => `${window.location.pathname}${window.location.search}`;

describe("App: a full page load", () => {
  it("signed in, shows the user, their role and the data (the cache is not cleared under the pages)", async () => {
    mockApi({
      "GET /api/v1/users/me": () => ADMIN,
      "GET /api/v1/datasets": () => ({ items: [dataset()], total: 1 }),
    });
    setSignedIn(true, "admin");
    openAt("/datasets");
    expect(await screen.findByText("Signed in as admin")).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Users" })).toHaveAttribute("href", "/admin");
    expect(await screen.findByRole("link", { name: "helpful-600" })).toHaveAttribute("href", "/datasets/8");
    expect(screen.getByRole("button", { name: "Delete helpful-600" })).toBeInTheDocument();
    expect(screen.queryByText("Loading…")).not.toBeInTheDocument();
  });

  it("signed in on /admin, lists the accounts", async () => {
    mockApi({
      "GET /api/v1/users/me": () => ADMIN,
      "GET /api/v1/admin/users": () => [{ ...ADMIN, n_datasets: 1, created_at: "2026-12-01T10:00:00Z" }],
    });
    setSignedIn(true, "admin");
    openAt("/admin");
    expect(await screen.findByRole("table", { name: "Accounts" })).toHaveTextContent("admin (you)");
    expect(screen.getByRole("link", { name: "Users" })).toBeInTheDocument();
  });

  it("signed out, a deep link goes to the login page and, logged in, back to it", async () => {
    let signedIn = false;
    const { calls } = mockApi({
      "POST /api/v1/auth/login": () => {
        signedIn = true;
        return { access_token: null, user: ADMIN };
      },
      "GET /api/v1/users/me": () => (signedIn ? ADMIN : new Response("{}", { status: 401 })),
      "GET /api/v1/tokens": () => [],
    });
    openAt("/tokens?from=link#new");
    await screen.findByRole("button", { name: "Log in" });
    expect(here()).toBe(`/login?next=${encodeURIComponent("/tokens?from=link#new")}`);
    expect(calls).toHaveLength(0); // nothing is asked of the server before logging in
    await userEvent.type(screen.getByLabelText("Username"), "admin");
    await userEvent.type(screen.getByLabelText("Password"), "admin-password");
    await userEvent.click(screen.getByRole("button", { name: "Log in" }));
    expect(await screen.findByRole("heading", { name: "API tokens" })).toBeInTheDocument();
    expect(here()).toBe("/tokens?from=link");
    expect(window.location.hash).toBe("#new");
    expect(await screen.findByText("Signed in as admin")).toBeInTheDocument();
  });

  it.each([
    ["another site", "https://evil.example/datasets"],
    ["a protocol-relative URL", "//evil.example/datasets"],
    ["a backslash host", "/\\evil.example/datasets"],
    ["an API URL", "/api/v1/users/me"],
    ["the login page itself", "/login?next=/admin"],
  ])("after login, a next of %s goes to the datasets instead", async (_, next) => {
    mockApi({
      "POST /api/v1/auth/login": () => ({ access_token: null, user: ADMIN }),
      "GET /api/v1/users/me": () => ADMIN,
      "GET /api/v1/datasets": () => ({ items: [], total: 0 }),
    });
    openAt(`/login?next=${encodeURIComponent(next)}`);
    await userEvent.type(screen.getByLabelText("Username"), "admin");
    await userEvent.type(screen.getByLabelText("Password"), "admin-password");
    await userEvent.click(screen.getByRole("button", { name: "Log in" }));
    expect(await screen.findByRole("heading", { name: "Datasets" })).toBeInTheDocument();
    expect(here()).toBe("/datasets");
  });

  it("an expired session returns to the page after login; logging out does not", async () => {
    let live = false; // the browser thinks it is signed in; the server's session has expired
    mockApi({
      "POST /api/v1/auth/login": () => {
        live = true;
        return { access_token: null, user: ADMIN };
      },
      "POST /api/v1/auth/logout": () => new Response(null, { status: 204 }),
      "GET /api/v1/users/me": () => (live ? ADMIN : new Response("{}", { status: 401 })),
      "GET /api/v1/tokens": () => (live ? [] : new Response("{}", { status: 401 })),
      "GET /api/v1/admin/users": () => (live ? [] : new Response("{}", { status: 401 })),
    });
    setSignedIn(true, "admin");
    openAt("/admin");
    // The first 401 signs the tab out, keeping its place.
    await screen.findByRole("button", { name: "Log in" });
    expect(here()).toBe(`/login?next=${encodeURIComponent("/admin")}`);

    await userEvent.type(screen.getByLabelText("Username"), "admin");
    await userEvent.type(screen.getByLabelText("Password"), "admin-password");
    await userEvent.click(screen.getByRole("button", { name: "Log in" }));
    await waitFor(() => expect(here()).toBe("/admin"));
    await userEvent.click(await screen.findByRole("link", { name: "API tokens" }));
    await userEvent.click(await screen.findByRole("button", { name: "Log out" }));
    await screen.findByRole("button", { name: "Log in" });
    expect(here()).toBe("/login");
  });

  it("another tab signing in as someone else: the page shows them, nothing of the last user", async () => {
    let who = ADMIN;
    mockApi({
      "GET /api/v1/users/me": () => who,
      "GET /api/v1/datasets": () => ({ items: [dataset({ name: who.username === "admin" ? "mine" : "bobs" })], total: 1 }),
    });
    setSignedIn(true, "admin");
    openAt("/datasets");
    expect(await screen.findByRole("link", { name: "mine" })).toBeInTheDocument();
    who = { id: 2, username: "bob", is_admin: false };
    act(() => setSignedIn(true, "bob"));
    expect(await screen.findByText("Signed in as bob")).toBeInTheDocument();
    expect(await screen.findByRole("link", { name: "bobs" })).toBeInTheDocument();
    expect(screen.queryByRole("link", { name: "mine" })).not.toBeInTheDocument();
    expect(screen.queryByRole("link", { name: "Users" })).not.toBeInTheDocument();
  });
});
