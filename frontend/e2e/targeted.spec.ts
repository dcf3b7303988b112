import { expect, test, type Page } from "@playwright/test";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";

// A targeted audit through the browser: review pairs (keep some, swap some), compose a target
// set from them in the Target sets panel, launch an audit aimed at it (tiny model, head mode)
// and read the pairs that push against it; a reload keeps the result.
const here = dirname(fileURLToPath(import.meta.url));
const HH_TEST = resolve(here, "../../../shared/data/hh-rlhf/helpful-base-test.jsonl.gz");
const N_PAIRS = 80;
const N_KEPT = 16;
const N_SWAPPED = 8;

function hhLines(): string {
  const lines = gunzipSync(readFileSync(HH_TEST)).toString("utf8").split("\n");
  return lines.slice(0, N_PAIRS).join("\n") + "\n";
}

async function csrf(page: Page): Promise<string> {
  return (await page.context().cookies()).find((c) => c.name === "prefaudit_csrf")!.value;
}

test("compose a target from reviewed pairs, audit against it, see the pairs that push against it", async ({
  page,
}) => {
  const name = `targeted-${Date.now()}`;
  await page.goto("/login");
  await page.getByLabel("Username").fill("e2e");
  await page.getByLabel("Password").fill("e2e-password");
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByRole("heading", { name: "Datasets", exact: true })).toBeVisible();

  const token = await csrf(page);
  const uploaded = await page.request.post("/api/v1/datasets", {
    headers: { "X-CSRF-Token": token },
    multipart: {
      file: { name: "hh.jsonl", mimeType: "application/jsonl", buffer: Buffer.from(hhLines()) },
      name,
    },
  });
  expect(uploaded.status()).toBe(201);
  const datasetId = (await uploaded.json()).id as number;
  const pairs = (await (await page.request.get(`/api/v1/datasets/${datasetId}/pairs?limit=200`)).json())
    .items as { id: number; row: number }[];
  // The review itself (kept and swapped pairs) is the review UI's own test; here it is the input.
  const swappedRows = new Set<number>();
  const keptRows = new Set<number>();
  for (const [k, pair] of pairs.slice(0, N_KEPT + N_SWAPPED).entries()) {
    const state = k < N_KEPT ? "kept" : "swapped";
    (state === "swapped" ? swappedRows : keptRows).add(pair.row);
    const reviewed = await page.request.put(`/api/v1/datasets/${datasetId}/pairs/${pair.id}/review`, {
      headers: { "X-CSRF-Token": token },
      data: { state, note: null },
    });
    expect(reviewed.status()).toBe(200);
  }

  await page.goto(`/datasets/${datasetId}`);
  await expect(page.getByRole("heading", { name, level: 1 })).toBeVisible();
  const panel = page.getByRole("region", { name: "Target sets" });

  await test.step("a rule that finds too few pairs is refused with the count", async () => {
    await panel.getByLabel("Target source").selectOption("rule");
    await panel.getByLabel("Target rule").selectOption("refusal_when_harmful");
    await panel.getByRole("button", { name: "Create target set" }).click();
    await expect(panel.getByRole("alert")).toContainText(/would hold \d+ pair\(s\); a target set holds 20–500/);
  });

  await test.step("compose a target set from the reviewed pairs", async () => {
    await panel.getByLabel("Target source").selectOption("reviewed");
    await panel.getByLabel("Target name").fill("my reviews");
    await panel.getByRole("button", { name: "Create target set" }).click();
    await expect(panel.getByRole("status")).toContainText(`with ${N_KEPT + N_SWAPPED} pairs`);
    await expect(panel.getByRole("list", { name: "Target sets" })).toContainText("my reviews");
    await panel.getByRole("button", { name: "Show pairs" }).click();
    await expect(panel.getByText("the reviewed pairs of dataset")).toBeVisible();
  });

  await test.step("launch an audit aimed at it", async () => {
    await page.getByLabel("Model preset").selectOption("tiny");
    await page.getByLabel("Target set (targeted audit)").selectOption({ label: `my reviews (${N_KEPT + N_SWAPPED} pairs)` });
    await page.getByText("Advanced options").click();
    await page.getByLabel("Training mode").selectOption("head");
    await page.getByRole("button", { name: "Launch audit" }).click();
    await expect(page.getByText("Succeeded", { exact: true }).first()).toBeVisible({ timeout: 6 * 60_000 });
  });

  const pushing = page.getByTestId("pushing-pairs");
  await test.step("the pairs that push against the target, most first", async () => {
    await expect(pushing.getByRole("heading", { name: "Pairs that push against “my reviews” most" })).toBeVisible();
    await expect(pushing).toContainText(`${N_KEPT + N_SWAPPED} pairs`);
    const rows = pushing.getByTestId("pushing-row");
    await expect(rows).toHaveCount(10);
    const harms = await rows.locator("td:last-child span").evaluateAll((spans) =>
      spans.map((span) => Number(span.getAttribute("title"))),
    );
    expect(harms).toEqual([...harms].sort((a, b) => b - a));
    // The rows shown are the job's ten highest harm_influence pairs, in order.
    const jobId = (await (await page.request.get(`/api/v1/datasets/${datasetId}/jobs`)).json()).items[0].id;
    const all = (
      await (
        await page.request.get(`/api/v1/datasets/${datasetId}/pairs?job_id=${jobId}&sort=-harm_influence&limit=200`)
      ).json()
    ).items as { row: number; scores: { harm_influence: number | null } }[];
    const shownRows = (await rows.locator("td:nth-child(2)").allTextContents()).map(Number);
    expect(shownRows).toEqual(all.slice(0, 10).map((pair) => pair.row));
    // A swapped pair trains the model the other way round from its copy in the target: on
    // average it pushes against the target more than a kept pair (the training split's ones).
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
    const scored = all.filter((pair) => pair.scores.harm_influence !== null);
    const swappedHarm = scored.filter((p) => swappedRows.has(p.row)).map((p) => p.scores.harm_influence!);
    const keptHarm = scored
      .filter((p) => keptRows.has(p.row))
      .map((p) => p.scores.harm_influence!);
    expect(swappedHarm.length).toBeGreaterThan(3);
    expect(mean(swappedHarm)).toBeGreaterThan(mean(keptHarm));
  });

  await test.step("a reload opens the same targeted audit", async () => {
    await page.reload();
    await expect(pushing.getByRole("heading", { name: /push against “my reviews”/ })).toBeVisible();
    await expect(pushing.getByTestId("pushing-row")).toHaveCount(10);
  });
});
