import { expect, test, type Locator, type Page } from "@playwright/test";
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";

// The walking skeleton through the browser: log in, drop a small HH-RLHF file, audit it with
// the `tiny` preset on the real worker, review the ranking, flag, verify that pruning pays (a
// verify job retraining the tiny model), and download the cleaned file.
const here = dirname(fileURLToPath(import.meta.url));
const HH_TEST = resolve(here, "../../../shared/data/hh-rlhf/helpful-base-test.jsonl.gz");
const N_PAIRS = 60;
const SCREENSHOT = resolve(here, "../test-results/ranked-pairs.png");
const VERIFY_SCREENSHOT = resolve(here, "../test-results/verify-results.png");
const TRUST_SCREENSHOT = resolve(here, "../test-results/trust-banner.png");
const PREVIEW_SCREENSHOT = resolve(here, "../test-results/upload-preview.png");

function smallHhFile(): string {
  const lines = gunzipSync(readFileSync(HH_TEST)).toString("utf8").split("\n");
  return lines.slice(0, N_PAIRS).join("\n") + "\n";
}

async function dropFile(page: Page, zone: Locator, name: string, text: string) {
  const dataTransfer = await page.evaluateHandle(
    ({ name, text }) => {
      const transfer = new DataTransfer();
      transfer.items.add(new File([text], name, { type: "application/jsonl" }));
      return transfer;
    },
    { name, text },
  );
  await zone.dispatchEvent("dragenter", { dataTransfer });
  await zone.dispatchEvent("drop", { dataTransfer });
}

function flaggedCount(summary: string): number {
  const match = /(\d+) of (\d+) pairs flagged/.exec(summary);
  if (!match) throw new Error(`no flag count in "${summary}"`);
  return Number(match[1]);
}

test("upload, audit with the tiny preset, review, flag and export", async ({ page, browser }) => {
  const uploaded = smallHhFile();
  const name = `hh-e2e-${Date.now()}`;
  const renamedName = `renamed-${Date.now()}`;
  // Other specs share this stack and may have stored datasets: count them rather than expecting none.
  const total = async () => ((await (await page.request.get("/api/v1/datasets")).json()) as { total: number }).total;
  let before = 0;

  await test.step("log in", async () => {
    await page.goto("/");
    await page.getByLabel("Username").fill("e2e");
    await page.getByLabel("Password").fill("wrong");
    await page.getByRole("button", { name: "Log in" }).click();
    await expect(page.getByRole("alert")).toContainText(/wrong|invalid|incorrect/i);
    await page.getByLabel("Password").fill("e2e-password");
    await page.getByRole("button", { name: "Log in" }).click();
    await expect(page.getByRole("heading", { name: "Datasets", exact: true })).toBeVisible();
    await expect(page.getByText("Signed in as e2e")).toBeVisible();
  });

  await test.step("a file with a bad row is refused, naming the row", async () => {
    before = await total();
    const [first, second] = uploaded.split("\n");
    await dropFile(page, page.getByTestId("dropzone"), "broken.jsonl", `${first}\n${second.slice(0, 40)}\n`);
    await page.getByRole("button", { name: "Upload" }).click();
    await expect(page.getByRole("alert")).toContainText(/row 2\b/i);
    expect(await total()).toBe(before);
  });

  await test.step("a file with its own column names: the preview reads it once they are named", async () => {
    const renamed = uploaded
      .split("\n")
      .slice(0, 3)
      .map((line) => {
        const row = JSON.parse(line) as { chosen: string; rejected: string };
        return JSON.stringify({ question: "Say hello.", better: row.chosen, worse: row.rejected });
      })
      .join("\n");
    await dropFile(page, page.getByTestId("dropzone"), "renamed.jsonl", `${renamed}\n`);
    const preview = page.getByRole("region", { name: "Preview" });
    await expect(preview.getByTestId("preview-summary")).toContainText("columns: question, better, worse");
    await expect(preview.getByTestId("bad-rows")).toContainText("missing column 'chosen'");
    await preview.getByLabel("Prompt column").selectOption("question");
    await preview.getByLabel("Chosen column").selectOption("better");
    await preview.getByLabel("Rejected column").selectOption("worse");
    const first = preview.getByRole("table", { name: "First pairs of the file" });
    await expect(first.locator("tbody tr")).toHaveCount(3);
    await expect(first.locator("tbody tr").first()).toContainText("Say hello.");
    mkdirSync(dirname(PREVIEW_SCREENSHOT), { recursive: true });
    await page.screenshot({ path: PREVIEW_SCREENSHOT, fullPage: true });
    await page.getByLabel("Dataset name").fill(renamedName);
    await page.getByRole("button", { name: "Upload" }).click();
    await expect(page.getByRole("status")).toContainText("3 pairs");
    await expect(preview).toHaveCount(0);
  });

  await test.step("upload by drag and drop", async () => {
    await dropFile(page, page.getByTestId("dropzone"), "helpful-base-60.jsonl", uploaded);
    await expect(page.getByText("helpful-base-60.jsonl")).toBeVisible();
    await page.getByLabel("Dataset name").fill(name);
    await page.getByRole("button", { name: "Upload" }).click();
    await expect(page.getByRole("status")).toContainText(`${N_PAIRS} pairs`);
    const row = page.getByRole("row").filter({ has: page.getByRole("link", { name }) });
    await expect(row.getByRole("cell", { name: String(N_PAIRS), exact: true })).toBeVisible();
    await page.getByRole("link", { name }).click();
    await expect(page.getByRole("heading", { name, level: 1 })).toBeVisible();
  });

  await test.step("launch an audit with the tiny preset and watch it finish", async () => {
    await expect(page.getByLabel("Model preset")).toHaveValue("minilm");
    await page.getByLabel("Model preset").selectOption("tiny");
    await page.getByRole("button", { name: "Launch audit" }).click();
    const progress = page.getByRole("progressbar");
    await expect(progress).toBeVisible();
    await expect(page.getByText("Succeeded", { exact: true }).first()).toBeVisible({
      timeout: 6 * 60_000,
    });
    await expect(progress).toHaveAttribute("aria-valuenow", "100");
  });

  await test.step("the audit says whether its ranking can be trusted, and how many pairs look wrong", async () => {
    const banner = page.getByTestId("trust-banner");
    await expect(banner).toBeVisible();
    // 54 training pairs on the random tiny model: usually not evidence, but either verdict is a
    // real one; what must hold is that the verdict and its numbers are there.
    await expect(banner).toContainText(/The ranking is not evidence|beats chance/);
    await expect(banner).toContainText(/on 6 held-out pairs/);
    await expect(banner).toContainText("vs ln 2 = 0.6931");
    const estimate = page.getByTestId("mislabelled-estimate");
    await expect(estimate).toBeVisible();
    await expect(estimate).toContainText(/probably mislabelled|no mislabel|cannot/i);
    mkdirSync(dirname(TRUST_SCREENSHOT), { recursive: true });
    await banner.scrollIntoViewIfNeeded();
    await page.screenshot({ path: TRUST_SCREENSHOT, fullPage: true });
  });

  const table = page.getByRole("table", { name: "Pairs ranked by harm" });
  const dataRows = table.locator("tbody tr[data-row-index]");

  await test.step("see the pairs ranked by harm, chosen and rejected side by side", async () => {
    await expect(page.getByRole("img", { name: /histogram of harm scores/i })).toBeVisible();
    await expect(dataRows.first()).toBeVisible();
    const harms = (await dataRows.locator("td.col-harm").allTextContents()).map(Number);
    expect(harms.length).toBeGreaterThan(5);
    expect(harms).toEqual([...harms].sort((a, b) => b - a));
    await expect(dataRows.first().locator("td.col-rank")).toHaveText("1");

    await dataRows.first().click();
    const chosen = page.getByRole("region", { name: "Chosen response" });
    const rejected = page.getByRole("region", { name: "Rejected response" });
    await expect(page.getByRole("region", { name: "Prompt" })).toContainText("Human:");
    await expect(chosen).toBeVisible();
    await expect(rejected).toBeVisible();
    const [c, r] = [await chosen.boundingBox(), await rejected.boundingBox()];
    expect(c && r && c.x + c.width <= r.x && Math.abs(c.y - r.y) < 2).toBeTruthy();
    // Transcripts keep their line breaks.
    await expect(chosen.locator("pre")).toHaveCSS("white-space", "pre-wrap");
  });

  const summary = page.getByTestId("flag-summary");

  await test.step("flag one pair and unflag it", async () => {
    await expect(summary).toContainText(`0 of ${N_PAIRS} pairs flagged`);
    const checkbox = dataRows.nth(1).getByRole("checkbox");
    // The box mirrors server state (it turns once the PUT returns): click, then wait for it.
    await checkbox.click();
    await expect(checkbox).toBeChecked();
    await expect(summary).toContainText(`1 of ${N_PAIRS} pairs flagged`);
    await checkbox.click();
    await expect(checkbox).not.toBeChecked();
    await expect(summary).toContainText(`0 of ${N_PAIRS} pairs flagged`);

    await page.getByLabel("Note (optional)").fill("e2e: looks mislabelled");
    await page.getByRole("button", { name: "Flag pair" }).click();
    await expect(dataRows.first().getByRole("checkbox")).toBeChecked();
    await page.getByRole("button", { name: "Unflag pair" }).click();
    await expect(dataRows.first().getByRole("checkbox")).not.toBeChecked();
    await expect(summary).toContainText(`0 of ${N_PAIRS} pairs flagged`);
  });

  let flagged = 0;
  await test.step("flag the top 10% in one action", async () => {
    await expect(page.getByLabel("Fraction to flag (%)")).toHaveValue("10");
    await page.getByRole("button", { name: "Flag top 10%" }).click();
    await expect(page.getByTestId("flag-message")).toContainText("newly flagged");
    await expect(summary).not.toContainText(`0 of ${N_PAIRS}`);
    flagged = flaggedCount((await summary.textContent()) ?? "");
    expect(flagged).toBeGreaterThan(0);
    expect(flagged).toBeLessThan(N_PAIRS / 5);
    // The most harmful pairs are the flagged ones.
    await expect(dataRows.first().getByRole("checkbox")).toBeChecked();
    await dataRows.first().click();
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.getByRole("heading", { name: "Pairs ranked by harm" }).scrollIntoViewIfNeeded();
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  });

  await test.step("the flagged filter shows exactly the flagged pairs", async () => {
    await page.getByLabel("Show").selectOption("flagged");
    await expect(dataRows).toHaveCount(flagged);
    await page.getByLabel("Show").selectOption("all");
  });

  await test.step("verify pruning: retrain without the top 10% over 2 seeds", async () => {
    const form = page.getByRole("form", { name: "Verify pruning" });
    await expect(form.getByLabel("Fraction to prune (%)")).toHaveValue("10");
    await form.getByLabel("Seeds").fill("2");
    await form.getByRole("button", { name: "Verify pruning" }).click();
    // The new job is selected and followed live by the job status card.
    await expect(page.getByRole("heading", { name: /^Verify \(job \d+\)/ })).toBeVisible();
    await expect(page.getByRole("progressbar")).toBeVisible();
    const summary = page.getByTestId("verify-summary");
    await expect(summary).toBeVisible({ timeout: 3 * 60_000 });
    await expect(summary).toContainText(/^Pruning \d+ of \d+ training pairs changed pairwise accuracy/);
    await expect(page.getByRole("progressbar")).toHaveAttribute("aria-valuenow", "100");
    const plot = page.getByRole("img", { name: /accuracy of each retrain over 2 seeds/i });
    await expect(plot).toBeVisible();
    await expect(plot.locator("circle")).toHaveCount(6);
    await expect(page.getByRole("table", { name: "Paired differences" })).toContainText("Pruned − random removal");
    await page.getByRole("heading", { name: /^Verify \(job \d+\)/ }).scrollIntoViewIfNeeded();
    await page.screenshot({ path: VERIFY_SCREENSHOT, fullPage: true });
  });

  await test.step("download the cleaned JSONL", async () => {
    const downloading = page.waitForEvent("download");
    await page.getByRole("button", { name: "JSONL" }).click();
    const download = await downloading;
    expect(download.suggestedFilename()).toMatch(/\.jsonl$/);
    const text = readFileSync((await download.path())!, "utf8");
    const lines = text.split("\n").filter((line) => line.trim() !== "");
    // Every pair of the dataset that is not flagged (validation pairs included).
    expect(lines).toHaveLength(N_PAIRS - flagged);
    const original = new Set(uploaded.trim().split("\n").map((line) => {
      const row = JSON.parse(line) as { chosen: string; rejected: string };
      return `${row.chosen}\u0000${row.rejected}`;
    }));
    for (const line of lines) {
      const row = JSON.parse(line) as { chosen: string; rejected: string };
      expect(original.has(`${row.chosen}\u0000${row.rejected}`)).toBe(true);
    }
  });

  const viewerName = `viewer-${Date.now()}`;
  await test.step("an admin creates an account in the UI", async () => {
    await page.getByRole("link", { name: "Users" }).click();
    await expect(page.getByRole("heading", { name: "Users", level: 1 })).toBeVisible();
    await page.getByLabel("Username").fill(viewerName);
    await page.getByLabel("Password", { exact: true }).fill("viewer-password");
    await page.getByRole("button", { name: "Create account" }).click();
    await expect(page.getByRole("status")).toContainText(`Created ${viewerName}`);
    await expect(page.getByRole("table", { name: "Accounts" })).toContainText(viewerName);
    await expect(page.getByLabel("e2e is an admin")).toBeDisabled(); // not one's own right
  });

  await test.step("share the dataset with that account as a viewer", async () => {
    await page.getByRole("link", { name: "prefaudit" }).click();
    await page.getByRole("link", { name }).click();
    const sharing = page.getByRole("region", { name: "Sharing" });
    await sharing.getByLabel("Username").fill(viewerName);
    await sharing.getByLabel("Share as").selectOption("viewer");
    await sharing.getByRole("button", { name: "Share" }).click();
    await expect(sharing.getByRole("table", { name: "People this dataset is shared with" })).toContainText(viewerName);
    await expect(sharing.getByLabel(`Role of ${viewerName}`)).toHaveValue("viewer");
  });

  await test.step("the viewer reads the audit and exports, and cannot decide", async () => {
    const context = await browser.newContext();
    const viewer = await context.newPage();
    await viewer.goto("/");
    await viewer.getByLabel("Username").fill(viewerName);
    await viewer.getByLabel("Password").fill("viewer-password");
    await viewer.getByRole("button", { name: "Log in" }).click();
    const listed = viewer.getByRole("row").filter({ has: viewer.getByRole("link", { name }) });
    await expect(listed).toContainText("viewer · e2e");
    await expect(listed.getByRole("button", { name: /Delete/ })).toHaveCount(0);
    await viewer.getByRole("link", { name }).click();
    await expect(viewer.getByTestId("shared-role")).toHaveText("shared with you by e2e as viewer");
    await expect(viewer.getByRole("button", { name: "Launch audit" })).toHaveCount(0);
    await expect(viewer.getByRole("region", { name: "Sharing" })).toHaveCount(0);
    const ranked = viewer.getByRole("table", { name: "Pairs ranked by harm" });
    await expect(ranked.locator("tbody tr[data-row-index]").first()).toBeVisible();
    await expect(viewer.getByRole("group", { name: "Bulk actions" })).toHaveCount(0);
    await ranked.locator("tbody tr[data-row-index]").first().click();
    await expect(viewer.getByTestId("read-only")).toContainText("You are a viewer");
    await expect(viewer.getByRole("button", { name: "Flag pair" })).toHaveCount(0);
    await expect(viewer.getByRole("button", { name: "JSONL" })).toBeVisible();
    // The server refuses what the UI does not offer.
    const datasetId = new URL(viewer.url()).pathname.split("/").at(-1);
    const csrf = (await context.cookies()).find((c) => c.name === "prefaudit_csrf")!.value;
    const refused = await viewer.request.post(`/api/v1/datasets/${datasetId}/review`, {
      data: { action: "flag" },
      headers: { "X-CSRF-Token": csrf },
    });
    expect(refused.status()).toBe(403);
    await context.close();
  });

  await test.step("stop sharing, then delete the account", async () => {
    const sharing = page.getByRole("region", { name: "Sharing" });
    await sharing.getByRole("button", { name: `Stop sharing with ${viewerName}` }).click();
    await expect(sharing).toContainText("Only you can see this dataset.");
    await page.getByRole("link", { name: "Users" }).click();
    page.once("dialog", (dialog) => void dialog.accept());
    await page.getByRole("button", { name: `Delete account ${viewerName}` }).click();
    await expect(page.getByRole("table", { name: "Accounts" })).not.toContainText(viewerName);
  });

  await test.step("delete the datasets", async () => {
    await page.getByRole("link", { name: "prefaudit" }).click();
    for (const dataset of [name, renamedName]) {
      page.once("dialog", (dialog) => void dialog.accept());
      await page.getByRole("button", { name: `Delete ${dataset}` }).click();
      await expect(page.getByRole("button", { name: `Delete ${dataset}` })).toHaveCount(0);
    }
    expect(await total()).toBe(before);
  });

  await test.step("manage API tokens: the password again, create one, see it once, revoke it", async () => {
    await page.getByRole("link", { name: "API tokens" }).click();
    await expect(page.getByRole("heading", { name: "API tokens", level: 1 })).toBeVisible();
    const tokens = page.getByRole("table", { name: "API tokens" });
    await expect(tokens.getByText("browser session").first()).toBeVisible();
    await page.getByLabel("Name").fill("e2e-script");
    // A token outlives the session: the browser asks for the password again.
    await page.getByRole("button", { name: "Create token" }).click();
    const form = page.getByRole("form", { name: "Create a token" });
    await expect(form.getByRole("alert")).toContainText("needs your current password");
    await form.getByLabel("Your password").fill("e2e-password");
    await page.getByRole("button", { name: "Create token" }).click();
    const secret = (await page.getByTestId("new-token").textContent()) ?? "";
    expect(secret).toMatch(/^pfa_/);
    // The new token works against the API, then stops working once revoked.
    const me = await page.request.get("/api/v1/users/me", { headers: { Authorization: `Bearer ${secret}` } });
    expect(me.status()).toBe(200);
    await tokens.getByRole("button", { name: /Revoke e2e-script/ }).click();
    await expect(tokens.getByText("e2e-script")).toHaveCount(0);
    const after = await page.request.get("/api/v1/users/me", { headers: { Authorization: `Bearer ${secret}` } });
    expect(after.status()).toBe(401);
  });

  await test.step("the session is an HttpOnly cookie no script can read; changes need its CSRF value", async () => {
    const cookies = Object.fromEntries((await page.context().cookies()).map((c) => [c.name, c]));
    expect(cookies.prefaudit_session.httpOnly).toBe(true);
    expect(cookies.prefaudit_session.sameSite).toBe("Strict");
    expect(cookies.prefaudit_csrf.httpOnly).toBe(false);
    const visible = await page.evaluate(() => ({ cookie: document.cookie, stored: JSON.stringify(localStorage) }));
    expect(visible.cookie).not.toContain("prefaudit_session");
    expect(visible.stored).not.toContain(cookies.prefaudit_session.value);
    // The browser's cookie alone (what a forged cross-site form would carry) cannot change anything.
    const forged = await page.request.post("/api/v1/tokens", { data: { name: "forged" } });
    expect(forged.status()).toBe(403);
  });

  await test.step("log out: the session token is revoked on the server", async () => {
    const session = (await page.context().cookies()).find((c) => c.name === "prefaudit_session")!.value;
    await page.getByRole("button", { name: "Log out" }).click();
    await expect(page.getByRole("button", { name: "Log in" })).toBeVisible();
    expect((await page.context().cookies()).map((c) => c.name)).not.toContain("prefaudit_session");
    const reuse = await page.request.get("/api/v1/users/me", { headers: { Authorization: `Bearer ${session}` } });
    expect(reuse.status()).toBe(401);
  });
});

const GROUP_SCREENSHOT = resolve(here, "../test-results/group-prune.png");

test("prune a budget greedily and read a pair's strongest interactions", async ({ page }) => {
  // Three flipped pairs, each present three times: near-duplicates are what greedy spreads out.
  const lines = smallHhFile().trim().split("\n");
  const flipped = [5, 20, 40].map((i) => {
    const record = JSON.parse(lines[i]) as { chosen: string; rejected: string };
    return JSON.stringify({ chosen: record.rejected, rejected: record.chosen });
  });
  const text = [...lines, ...flipped, ...flipped].join("\n") + "\n";
  const name = `hh-group-${Date.now()}`;

  await page.goto("/");
  await page.getByLabel("Username").fill("e2e");
  await page.getByLabel("Password").fill("e2e-password");
  await page.getByRole("button", { name: "Log in" }).click();
  await dropFile(page, page.getByTestId("dropzone"), "group.jsonl", text);
  await page.getByLabel("Dataset name").fill(name);
  await page.getByRole("button", { name: "Upload" }).click();
  await expect(page.getByRole("status")).toContainText(`${N_PAIRS + 6} pairs`);
  await page.getByRole("link", { name }).click();

  await test.step("launch a head-mode audit with the group method", async () => {
    await page.getByLabel("Model preset").selectOption("tiny");
    await page.getByText("Advanced options").click();
    await page.getByLabel("Training mode").selectOption("head");
    await page.getByRole("checkbox", { name: "group (greedy, interaction-aware)" }).check();
    await page.getByLabel("Harm ranks by").selectOption("group");
    await page.getByLabel("Prune budget (group: fraction or count)").fill("5");
    await page.getByRole("button", { name: "Launch audit" }).click();
    await expect(page.getByText("Succeeded", { exact: true }).first()).toBeVisible({
      timeout: 6 * 60_000,
    });
  });

  const summary = page.getByTestId("flag-summary");
  await test.step("prune the budget: the greedy selection is flagged", async () => {
    await expect(page.getByLabel("Budget (pairs, or a fraction < 1)")).toHaveValue("5");
    await page.getByRole("button", { name: "Prune a budget of 5 (greedy)" }).click();
    await expect(page.getByTestId("flag-message")).toContainText("5 pairs newly flagged");
    await expect(summary).toContainText(`5 of ${N_PAIRS + 6} pairs flagged`);
  });

  await test.step("a pair's strongest interactions, with κ", async () => {
    const table = page.getByRole("table", { name: "Pairs ranked by harm" });
    await table.locator("tbody tr[data-row-index]").first().click();
    const region = page.getByRole("region", { name: "Strongest interactions" });
    await expect(region).toBeVisible();
    const rows = region.getByTestId("interaction");
    await expect(rows.first()).toBeVisible();
    expect(await rows.count()).toBeGreaterThan(0);
    await expect(rows.first()).toContainText(/redundant|complementary/);
    await region.scrollIntoViewIfNeeded();
    mkdirSync(dirname(GROUP_SCREENSHOT), { recursive: true });
    await page.screenshot({ path: GROUP_SCREENSHOT, fullPage: true });
  });
});
