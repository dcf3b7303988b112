import { describe, expect, it } from "vitest";
import { loginPath, safeNext } from "./routing";

describe("safeNext: where a login may return to", () => {
  it.each([
    ["/datasets", "/datasets"],
    ["/datasets/8?sort=-loss&q=a%5Cb&range=loss:0.5:#top", "/datasets/8?sort=-loss&q=a%5Cb&range=loss:0.5:#top"],
    ["/tokens", "/tokens"],
    ["/admin", "/admin"],
  ])("keeps the app's page %s", (next, kept) => {
    expect(safeNext(next)).toBe(kept);
  });

  it.each([
    null,
    "",
    "datasets",
    "https://evil.example/datasets",
    "//evil.example/datasets",
    "/\\evil.example/datasets",
    "/\t/evil.example/datasets",
    "javascript:alert(1)",
    "/api/v1/users/me",
    "/docs",
    "/login?next=/admin",
    "/",
    "/datasets/8/elsewhere",
  ])("refuses %j", (next) => {
    expect(safeNext(next)).toBeNull();
  });

  it("builds the login page's URL", () => {
    expect(loginPath("/datasets/8?sort=-loss")).toBe("/login?next=%2Fdatasets%2F8%3Fsort%3D-loss");
    expect(loginPath("//evil.example")).toBe("/login");
    expect(loginPath(null)).toBe("/login");
  });
});
