import { expect, type Page } from "@playwright/test";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";

// What several specs start from: the first records of the real helpful-base test file, uploaded
// through the API with the page's session and audited in head mode on the tiny model.
const here = dirname(fileURLToPath(import.meta.url));
const HH_TEST = resolve(here, "../../../shared/data/hh-rlhf/helpful-base-test.jsonl.gz");

export type Row = { chosen: string; rejected: string };

/** The first `n` records of helpful-base's test split. */
export function hhRecords(n: number): Row[] {
  const lines = gunzipSync(readFileSync(HH_TEST)).toString("utf8").split("\n");
  return lines.slice(0, n).map((line) => JSON.parse(line) as Row);
}

/** A word of 6 or more letters in 4 to 12 of `rows` (whole word, any case): a search with a few
 *  hits, most of them in the audit's training split. */
export function searchWord(rows: Row[]): string {
  const counts = new Map<string, number>();
  for (const row of rows) {
    const words = new Set(`${row.chosen} ${row.rejected}`.toLowerCase().match(/\b[a-z]{6,}\b/g) ?? []);
    for (const word of words) counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  const word = [...counts.entries()].find(([, n]) => n >= 4 && n <= 12)?.[0];
  if (!word) throw new Error("no word with 4–12 hits in the sample");
  return word;
}

/** Uploads `rows` as `name` with the page's session; returns the dataset's id. */
export async function uploadRows(page: Page, rows: Row[], name: string): Promise<number> {
  const uploaded = await page.request.post("/api/v1/datasets", {
    headers: { "X-CSRF-Token": await csrfToken(page) },
    multipart: {
      file: {
        name: `${name}.jsonl`,
        mimeType: "application/jsonl",
        buffer: Buffer.from(rows.map((row) => JSON.stringify(row)).join("\n") + "\n"),
      },
      name,
    },
  });
  expect(uploaded.status()).toBe(201);
  return (await uploaded.json()).id as number;
}

/** Queues a head-mode audit (tiny model, loss and length, harm = length) of the dataset;
 *  returns the job's id. */
export async function launchAudit(page: Page, datasetId: number): Promise<number> {
  const launched = await page.request.post(`/api/v1/datasets/${datasetId}/jobs`, {
    headers: { "X-CSRF-Token": await csrfToken(page) },
    data: { kind: "audit", model: "tiny", mode: "head", methods: ["loss", "length"], default_method: "length" },
  });
  expect(launched.status(), await launched.text()).toBe(202);
  return (await launched.json()).id as number;
}

/** Uploads `rows` as `name` and runs `launchAudit`'s audit to success; returns the dataset's
 *  and the job's ids. */
export async function uploadAndAudit(page: Page, rows: Row[], name: string): Promise<[number, number]> {
  const datasetId = await uploadRows(page, rows, name);
  const jobId = await launchAudit(page, datasetId);
  await expect
    .poll(async () => (await (await page.request.get(`/api/v1/jobs/${jobId}`)).json()).status, {
      timeout: 6 * 60_000,
      intervals: [2_000],
    })
    .toBe("succeeded");
  return [datasetId, jobId];
}

/** The CSRF value a cookie session sends with every write. */
export async function csrfToken(page: Page): Promise<string> {
  return (await page.context().cookies()).find((c) => c.name === "prefaudit_csrf")!.value;
}
