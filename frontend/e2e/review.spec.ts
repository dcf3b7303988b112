import AxeBuilder from "@axe-core/playwright";
import { expect, test, type Page } from "@playwright/test";
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { hhRecords, searchWord, type Row } from "./audited";

// The reviewer's loop through the browser (issue 12): search, a score-range filter, sort by
// gradient similarity, a bulk flag of everything a filter matches (with its preview count) and
// its undo, a swap and a flag from the keyboard, and an export whose every line reflects exactly
// those decisions. Each view is screenshotted and checked with axe.
const here = dirname(fileURLToPath(import.meta.url));
const SHOTS = resolve(here, "../test-results/review");
const N_PAIRS = 60;

async function axe(page: Page, view: string) {
  const results = await new AxeBuilder({ page }).analyze();
  const serious = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  expect(
    serious.map((v) => `${view}: ${v.id} (${v.impact}) ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3)}`),
  ).toEqual([]);
}

async function shot(page: Page, name: string) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: resolve(SHOTS, `${name}.png`), fullPage: true });
}

test("review: search, filter, sort, bulk flag with preview and undo, keyboard swap, export", async ({ page }) => {
  const rows = hhRecords(N_PAIRS);
  const uploaded = rows.map((row) => JSON.stringify(row)).join("\n") + "\n";
  const name = `hh-review-${Date.now()}`;
  const api = async (path: string) => {
    const response = await page.request.get(`/api/v1${path}`); // with the page's session cookie
    expect(response.status()).toBe(200);
    return response.json();
  };

  await page.goto("/");
  await page.getByLabel("Username").fill("e2e");
  await page.getByLabel("Password").fill("e2e-password");
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByRole("heading", { name: "Datasets", exact: true })).toBeVisible();
  const transfer = await page.evaluateHandle((text) => {
    const data = new DataTransfer();
    data.items.add(new File([text], "review.jsonl", { type: "application/jsonl" }));
    return data;
  }, uploaded);
  const zone = page.getByTestId("dropzone");
  await zone.dispatchEvent("dragenter", { dataTransfer: transfer });
  await zone.dispatchEvent("drop", { dataTransfer: transfer });
  await page.getByLabel("Dataset name").fill(name);
  await page.getByRole("button", { name: "Upload" }).click();
  await expect(page.getByRole("status")).toContainText(`${N_PAIRS} pairs`);
  await shot(page, "datasets");
  await axe(page, "datasets");
  await page.getByRole("link", { name }).click();
  const datasetId = Number(new URL(page.url()).pathname.split("/").at(-1));

  await test.step("audit in head mode (fast on the CPU)", async () => {
    await page.getByLabel("Model preset").selectOption("tiny");
    await page.getByText("Advanced options").click();
    await page.getByLabel("Training mode").selectOption("head");
    await page.getByRole("button", { name: "Launch audit" }).click();
    await expect(page.getByText("Succeeded", { exact: true }).first()).toBeVisible({ timeout: 6 * 60_000 });
  });
  const jobs = await api(`/datasets/${datasetId}/jobs`);
  const jobId: number = jobs.items[0].id;
  const nTrain: number = (await api(`/datasets/${datasetId}/pairs?job_id=${jobId}&limit=1`)).total;
  const table = page.getByRole("table", { name: "Pairs ranked by harm" });
  const dataRows = table.locator("tbody tr[data-row-index]");
  const summary = page.getByTestId("flag-summary");
  const matching = page.getByTestId("match-count");
  await expect(dataRows.first()).toBeVisible();
  await shot(page, "ranked");
  await axe(page, "ranked pairs");

  await test.step("search: only pairs holding the word", async () => {
    const word = searchWord(rows);
    await page.getByLabel("Search").fill(word);
    await page.getByRole("button", { name: "Apply filters" }).click();
    await expect(page).toHaveURL(new RegExp(`q=${word}`));
    const expected = await api(`/datasets/${datasetId}/pairs?job_id=${jobId}&q=${word}&limit=100`);
    expect(expected.total).toBeGreaterThan(0);
    await expect(matching).toHaveText(String(expected.total));
    for (const pair of expected.items as (Row & { prompt: string })[]) {
      expect(`${pair.prompt} ${pair.chosen} ${pair.rejected}`.toLowerCase()).toMatch(new RegExp(`\\b${word}\\b`));
    }
    await shot(page, "search");
    await page.getByLabel("Search").fill("");
    await page.getByRole("button", { name: "Apply filters" }).click();
    await expect(matching).toHaveText(String(nTrain));
  });

  let threshold = 0;
  await test.step("sort by gradient similarity, then filter by its range", async () => {
    await page.getByLabel("Sort by").selectOption("harm_gradient_similarity");
    await expect(page).toHaveURL(/sort=-harm_gradient_similarity/);
    const top = await api(`/datasets/${datasetId}/pairs?job_id=${jobId}&sort=-harm_gradient_similarity&limit=10`);
    const values = (top.items as { scores: { harm_gradient_similarity: number } }[]).map(
      (p) => p.scores.harm_gradient_similarity,
    );
    await expect(table.getByRole("columnheader", { name: /gradient similarity/i })).toHaveAttribute(
      "aria-sort",
      "descending",
    );
    await expect(dataRows.first().getByRole("cell").first()).toHaveText("1");
    threshold = values[9];
    await page.getByLabel("Range column").selectOption("harm_gradient_similarity");
    await page.getByLabel("Range min").fill(String(threshold));
    await page.getByRole("button", { name: "Apply filters" }).click();
    await expect(matching).toHaveText("10");
    await expect(dataRows).toHaveCount(10);
    await shot(page, "score-range");
  });

  await test.step("bulk-flag everything the filter matches, with the preview count, then undo", async () => {
    await page.getByRole("button", { name: /Preview on all 10 matching/ }).click();
    await expect(page.getByTestId("bulk-preview")).toContainText("10 match · 10 would change");
    await shot(page, "bulk-preview");
    await page.getByRole("button", { name: "Flag 10 pairs" }).click();
    await expect(summary).toContainText(`10 of ${N_PAIRS} pairs flagged`);
    await page.getByRole("button", { name: /^Undo/ }).click();
    await expect(summary).toContainText(`0 of ${N_PAIRS} pairs flagged`);
    await page.getByLabel("Range min").fill("");
    await page.getByRole("button", { name: "Apply filters" }).click();
    await expect(matching).toHaveText(String(nTrain));
  });

  let swappedRow = 0;
  let flaggedRow = 0;
  await test.step("swap one pair and flag the next from the keyboard", async () => {
    await page.getByRole("heading", { name: "Pairs ranked by harm" }).click(); // focus off the fields
    await page.keyboard.press("j");
    await expect(dataRows.first()).toHaveAttribute("aria-selected", "true");
    swappedRow = Number(await dataRows.first().getByRole("cell").nth(1).textContent());
    flaggedRow = Number(await dataRows.nth(1).getByRole("cell").nth(1).textContent());
    await page.keyboard.press("s");
    await expect(dataRows.first()).toContainText("swapped");
    await expect(dataRows.nth(1)).toHaveAttribute("aria-selected", "true"); // auto-advance
    await page.keyboard.press("f");
    await expect(summary).toContainText(`1 of ${N_PAIRS} pairs flagged`);
    await page.keyboard.press("?");
    await expect(page.getByRole("dialog", { name: "Keyboard shortcuts" })).toBeVisible();
    await shot(page, "keyboard-help");
    await page.getByRole("button", { name: "Close" }).click();
    await page.keyboard.press("k");
    await page.getByLabel("word diff").check();
    await expect(page.getByTestId("word-diff")).toBeVisible();
    await shot(page, "pair-diff");
    await axe(page, "pair view");
  });

  await test.step("export with swaps applied: every line reflects exactly those decisions", async () => {
    const downloading = page.waitForEvent("download");
    await page.getByRole("button", { name: "JSONL" }).click();
    const text = readFileSync((await (await downloading).path())!, "utf8");
    const lines = text.split("\n").filter((line) => line.trim() !== "").map((l) => JSON.parse(l) as Row);
    const expected = rows
      .map((row, i) => ({ row, number: i + 1 }))
      .filter(({ number }) => number !== flaggedRow)
      .map(({ row, number }) =>
        number === swappedRow ? { chosen: row.rejected, rejected: row.chosen } : row,
      );
    expect(lines).toHaveLength(N_PAIRS - 1);
    lines.forEach((line, k) => expect(line).toEqual(expected[k]));
    await shot(page, "exported");
  });
});
