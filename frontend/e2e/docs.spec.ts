import { expect, test, type BrowserContext } from "@playwright/test";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

// The interactive API docs as an air-gapped team uses them: every request that would leave the
// server's origin is blocked (and recorded), Swagger UI lists the operations and runs one with an
// API token, ReDoc renders, and both pages carry the app's own Content-Security-Policy.
const here = dirname(fileURLToPath(import.meta.url));
const SHOTS = resolve(here, "../test-results");

async function blockOtherOrigins(context: BrowserContext, origin: string): Promise<string[]> {
  const blocked: string[] = [];
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(origin) || url.startsWith("data:") || url.startsWith("blob:")) {
      return route.continue();
    }
    blocked.push(url);
    return route.abort("blockedbyclient");
  });
  return blocked;
}

test("the API docs work offline under the app's CSP", async ({ browser, baseURL }) => {
  const origin = new URL(baseURL!).origin;
  const context = await browser.newContext();
  const blocked = await blockOtherOrigins(context, origin);
  const page = await context.newPage();
  const violations: string[] = [];
  page.on("console", (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) violations.push(message.text());
  });
  mkdirSync(SHOTS, { recursive: true });

  const login = await page.request.post("/api/v1/auth/login", {
    data: { username: "e2e", password: "e2e-password" },
  });
  expect(login.status()).toBe(200);
  const token = (await login.json()).access_token as string;
  expect(token).toMatch(/^pfa_/);

  await test.step("/docs: the operations list, under the app's policy", async () => {
    const response = await page.goto("/docs");
    const policy = response!.headers()["content-security-policy"];
    const app = (await page.request.get("/api/v1/health")).headers()["content-security-policy"];
    expect(policy).toBe(app);
    expect(policy).toContain("default-src 'self'");
    await expect(page.locator(".opblock-summary-path").first()).toBeVisible();
    await expect(page.locator('[data-path="/api/v1/users/me"]').first()).toBeVisible();
  });

  await test.step("Try it out with a token", async () => {
    await page.getByRole("button", { name: /Authorize/ }).first().click();
    const dialog = page.locator(".modal-ux");
    await dialog.locator("input").first().fill(token);
    await dialog.getByRole("button", { name: "Apply credentials" }).click();
    await dialog.getByRole("button", { name: "Close" }).first().click();
    const operation = page.locator("#operations-auth-auth-read_me");
    await operation.getByRole("button", { name: "GET /api/v1/users/me Read Me" }).click();
    await operation.getByRole("button", { name: "Try it out" }).click();
    await operation.getByRole("button", { name: "Execute" }).click();
    const live = operation.locator(".live-responses-table");
    await expect(live.locator("tbody .response-col_status").first()).toContainText("200");
    await expect(live.locator("tbody .response-col_description").first()).toContainText(
      '"username": "e2e"',
    );
    await page.screenshot({ path: resolve(SHOTS, "docs-swagger.png"), fullPage: false });
  });

  await test.step("/redoc renders the same document", async () => {
    const response = await page.goto("/redoc");
    expect(response!.headers()["content-security-policy"]).toContain("default-src 'self'");
    await expect(page.locator("h1").first()).toContainText("prefaudit");
    await expect(page.getByText("/api/v1/users/me").first()).toBeAttached();
    await page.screenshot({ path: resolve(SHOTS, "docs-redoc.png"), fullPage: false });
  });

  expect(blocked, "requests that tried to leave the server's origin").toEqual([]);
  // ReDoc's sidebar credits Redocly with a logo from its CDN: the policy refuses it before any
  // request is made (so `blocked` stays empty); nothing else may be refused.
  const refused = violations.filter((text) => !text.includes("https://cdn.redoc.ly/"));
  expect(refused, "CSP violations").toEqual([]);
  await context.close();
});
