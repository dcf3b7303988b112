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

/** Uploads `rows` as `name` and runs a head-mode audit (tiny model, loss and length, harm =
 *  length) to success; returns the dataset's and the job's ids. */
export async function uploadAndAudit(page: Page, rows: Row[], name: string): Promise<[number, number]> {
  const csrf = (await page.context().cookies()).find((c) => c.name === "prefaudit_csrf")!.value;
  const uploaded = await page.request.post("/api/v1/datasets", {
    headers: { "X-CSRF-Token": csrf },
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
  const datasetId = (await uploaded.json()).id as number;
  const launched = await page.request.post(`/api/v1/datasets/${datasetId}/jobs`, {
    headers: { "X-CSRF-Token": csrf },
    data: { kind: "audit", model: "tiny", mode: "head", methods: ["loss", "length"], default_method: "length" },
  });
  expect(launched.status(), await launched.text()).toBe(202);
  const jobId = (await launched.json()).id as number;
  await expect
    .poll(async () => (await (await page.request.get(`/api/v1/jobs/${jobId}`)).json()).status, {
      timeout: 6 * 60_000,
      intervals: [2_000],
    })
    .toBe("succeeded");
  return [datasetId, jobId];
}
