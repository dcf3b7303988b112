import { expect, test, type Page } from "@playwright/test";
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { csrfToken, hhRecords, uploadRows } from "./audited";

// Evidence from outside the audited pairs, through the browser: two tiny audits save their reward
// models (through the API: their UI is audit.spec's); an audit of another dataset picks both in
// the reward-models field and shows their columns; the LLM judge (a real llama.cpp server serving
// SmolLM2, started here by e2e/judge-server.sh) shows its estimate before launch, runs with live
// progress, fills its columns and a tag filters them; a second run is cancelled; the first run's
// config again costs no request (its answers are cached).
const here = dirname(fileURLToPath(import.meta.url));
const MODEL = "smollm2-135m-instruct";
const N_SAVING = 24;
/** Few: every judge request is a real SmolLM2 answer on one CPU thread. */
const N_JUDGED = 4;

// A missing control fails in seconds, not at the test's timeout.
test.use({ actionTimeout: 30_000 });

let judge: ChildProcess | null = null;
let judgeLog = "";
let judgeUrl = "";

async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => done(typeof address === "object" && address ? address.port : 0));
    });
  });
}

// The server loads its GGUF while the audits run; the judge step waits for it (waitForJudge).
test.beforeAll(async () => {
  const port = await freePort();
  judgeUrl = `http://127.0.0.1:${port}/v1`;
  judgeLog = join(tmpdir(), `prefaudit-e2e-judge-${port}.log`);
  const out = openSync(judgeLog, "w");
  judge = spawn("bash", [resolve(here, "judge-server.sh"), String(port)], { stdio: ["ignore", out, out] });
  closeSync(out);
});

test.afterAll(async () => {
  if (judge && judge.exitCode === null) {
    const exited = new Promise((done) => judge!.once("exit", done));
    judge.kill("SIGTERM");
    await Promise.race([exited, new Promise((done) => setTimeout(done, 10_000))]);
  }
});

async function waitForJudge(): Promise<void> {
  await expect
    .poll(
      async () => {
        if (judge?.exitCode !== null) throw new Error(`the judge server exited:\n${readFileSync(judgeLog, "utf8")}`);
        try {
          return (await fetch(`${judgeUrl}/models`)).status;
        } catch {
          return 0;
        }
      },
      { timeout: 120_000, intervals: [500], message: "the llama.cpp judge server did not answer" },
    )
    .toBe(200);
}

async function jobStatus(page: Page, jobId: number): Promise<string> {
  return (await (await page.request.get(`/api/v1/jobs/${jobId}`)).json()).status as string;
}

/** The selected job's status card ("Judge (job 12) ..."). */
function jobCard(page: Page, kind: string, jobId: number) {
  return page.getByRole("region", { name: new RegExp(`^${kind} \\(job ${jobId}\\)`) });
}

/** The judge job the panel just queued. */
async function queuedJudge(page: Page): Promise<number> {
  const status = page.getByRole("form", { name: "LLM judge" }).getByRole("status");
  await expect(status).toContainText("Queued judge job");
  return Number(/Queued judge job (\d+)/.exec((await status.textContent()) ?? "")![1]);
}

/** Fills the judge form with the test server and short texts (CPU time). */
async function fillJudge(page: Page) {
  const panel = page.getByRole("form", { name: "LLM judge" });
  await panel.getByLabel("Base URL").fill(judgeUrl);
  await panel.getByRole("textbox", { name: /^Model/ }).fill(MODEL);
  await panel.getByLabel("Max concurrency").fill("1");
  await panel.getByText("Prompt template").click();
  await panel.getByLabel("Characters kept of each text").fill("120");
  return panel;
}

test("two saved reward models vote, the LLM judge estimates, runs, is cancelled and reruns from its cache", async ({
  page,
}) => {
  // Three tiny audits and three judge runs on a shared 2-core machine: whatever --timeout says.
  test.setTimeout(12 * 60_000);
  const stamp = Date.now();
  const savingName = `rm-saving-${stamp}`;
  const name = `evidence-${stamp}`;
  const rows = hhRecords(N_SAVING + N_JUDGED);
  // Pairs not seen by the saving audits, and two planted ones: an identical pair and a copy.
  const first = rows[N_SAVING];
  const evidence = [...rows.slice(N_SAVING), { chosen: first.chosen, rejected: first.chosen }, rows[N_SAVING + 1]];
  const nPairs = evidence.length;

  await page.goto("/login");
  await page.getByLabel("Username").fill("e2e");
  await page.getByLabel("Password").fill("e2e-password");
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByRole("heading", { name: "Datasets", exact: true })).toBeVisible();

  const saved: number[] = [];
  await test.step("two tiny LoRA audits save their reward models (API)", async () => {
    const savingId = await uploadRows(page, rows.slice(0, N_SAVING), savingName);
    for (const seed of [0, 1]) {
      const launched = await page.request.post(`/api/v1/datasets/${savingId}/jobs`, {
        headers: { "X-CSRF-Token": await csrfToken(page) },
        data: {
          kind: "audit", model: "tiny", epochs: 1, batch_size: 8, max_length: 64, seed,
          methods: ["loss"], hessian: "exact", save_model: true,
        },
      });
      expect(launched.status(), await launched.text()).toBe(202);
      saved.push((await launched.json()).id as number);
    }
    for (const jobId of saved) {
      await expect.poll(() => jobStatus(page, jobId), { timeout: 4 * 60_000, intervals: [1_000] }).toBe("succeeded");
    }
  });

  const datasetId = await uploadRows(page, evidence, name);
  await page.goto(`/datasets/${datasetId}`);
  await expect(page.getByRole("heading", { name, level: 1 })).toBeVisible();

  await test.step("an audit that picks both saved models in the reward-models field", async () => {
    await page.getByLabel("Model preset").selectOption("tiny");
    await page.getByText("Advanced options").click();
    await page.getByLabel("Training mode").selectOption("head");
    const field = page.getByRole("group", { name: /Reward models that vote/ });
    for (const jobId of saved) await field.getByLabel(`Audit #${jobId}: tiny on ${savingName}`).check();
    await page.getByRole("button", { name: "Launch audit" }).click();
    await expect(page.getByRole("region", { name: /^Audit \(job \d+\)/ }).getByText("Succeeded", { exact: true })).toBeVisible({
      timeout: 4 * 60_000,
    });
  });

  const table = page.getByRole("table", { name: "Pairs ranked by harm" });
  await test.step("the reward models' columns in the pairs table, sortable", async () => {
    await page.getByLabel("Sort by").selectOption("rm_mean");
    await expect(table.getByRole("columnheader", { name: /reward models' mean margin/ })).toBeVisible();
    await page.getByLabel("Sort by").selectOption("rm_votes_against");
    await expect(table.getByRole("columnheader", { name: /reward models against the label/ })).toBeVisible();
    const jobs = (await (await page.request.get(`/api/v1/datasets/${datasetId}/jobs`)).json()).items;
    const audit = jobs[0] as { id: number; config: { reward_models: string[] } };
    expect(audit.config.reward_models).toHaveLength(2);
    const scored = (await (await page.request.get(`/api/v1/datasets/${datasetId}/pairs?job_id=${audit.id}&limit=100`)).json())
      .items as { scores: Record<string, number | null> }[];
    expect(scored.length).toBeGreaterThanOrEqual(4);
    for (const pair of scored) expect(typeof pair.scores.rm_mean).toBe("number");
  });

  await test.step("an exact-check tag filters the list", async () => {
    await page.getByRole("combobox", { name: /^Split/ }).selectOption("all");
    await expect(page.getByTestId("match-count")).toHaveText(String(nPairs));
    await page.getByRole("combobox", { name: /^Check/ }).selectOption("identical");
    await expect(page.getByTestId("match-count")).toHaveText("1");
    await page.getByRole("combobox", { name: /^Check/ }).selectOption("duplicate");
    await expect(page.getByTestId("match-count")).toHaveText("1");
    await page.getByRole("combobox", { name: /^Check/ }).selectOption("");
    // The other way round: every pair but the duplicate (not_tag), kept in the URL.
    await page.getByRole("combobox", { name: /^Except/ }).selectOption("duplicate");
    await expect(page.getByTestId("match-count")).toHaveText(String(nPairs - 1));
    await expect(page).toHaveURL(/not_tag=duplicate/);
    await page.getByRole("combobox", { name: /^Except/ }).selectOption("");
    await page.getByRole("combobox", { name: /^Split/ }).selectOption("train");
  });

  let judgeId = 0;
  await test.step("the judge's estimate before launch, then the run with its progress", async () => {
    await waitForJudge();
    const panel = await fillJudge(page);
    await expect(panel.getByRole("button", { name: "Launch judge job" })).toBeDisabled();
    await panel.getByLabel(/Probe the server/).check();
    await panel.getByRole("button", { name: "Estimate" }).click();
    // The probe asks the server (its first requests, on a loaded machine: give it time).
    await expect(panel.getByTestId("judge-requests")).toHaveText(`${2 * nPairs} requests (${nPairs} pairs, both orders)`, {
      timeout: 120_000,
    });
    await expect(panel.getByTestId("judge-cached")).toHaveText("0 requests answered already (free)");
    await expect(panel.getByTestId("judge-prompt-tokens")).toContainText(/\d/);
    await expect(panel.getByTestId("judge-time")).toContainText("s per request");
    await panel.getByRole("button", { name: "Launch judge job" }).click();
    judgeId = await queuedJudge(page);
    const card = jobCard(page, "Judge", judgeId);
    await expect(card.getByText("Stage: judging")).toBeVisible({ timeout: 120_000 });
    await expect(card.getByText("Succeeded", { exact: true })).toBeVisible({ timeout: 5 * 60_000 });
    // The planted copy repeats requests asked before: answered from the cache, not sent again.
    const cost = /^(\d+) requests? sent · (\d+) answers? from the cache$/.exec(
      (await card.getByTestId("judge-requests-sent").textContent()) ?? "",
    );
    expect(cost, "the judge's cost line").not.toBeNull();
    expect(Number(cost![1]) + Number(cost![2])).toBe(2 * nPairs);
    expect(Number(cost![2])).toBeGreaterThanOrEqual(2);
  });

  await test.step("the judge's columns in the pairs table, and a tag filter on them", async () => {
    // The finished judge job is selected: its list opens ranked by the judge.
    await expect(page.getByLabel("Sort by")).toHaveValue("judge_against");
    await expect(table.getByRole("columnheader", { name: /judge orders against the label/ })).toBeVisible();
    await expect(page.getByTestId("match-count")).toHaveText(String(nPairs));
    await page.getByLabel("Sort by").selectOption("judge_p_chosen");
    await expect(table.getByRole("columnheader", { name: /judge: P\(chosen better\)/ })).toBeVisible();
    await page.getByRole("combobox", { name: /^Check/ }).selectOption("identical");
    await expect(page.getByTestId("match-count")).toHaveText("1");
    // The judge's own tag: pairs whose two orders got different verdicts.
    const url = `/api/v1/datasets/${datasetId}/pairs?job_id=${judgeId}&tag=ambiguous&limit=1`;
    const ambiguous = (await (await page.request.get(url)).json()).total as number;
    await page.getByRole("combobox", { name: /^Check/ }).selectOption("ambiguous");
    await expect(page.getByTestId("match-count")).toHaveText(String(ambiguous));
    await page.getByRole("combobox", { name: /^Check/ }).selectOption("");
  });

  await test.step("a second run (another prompt: nothing cached) is cancelled mid-judging", async () => {
    const panel = page.getByRole("form", { name: "LLM judge" });
    await panel.getByLabel("System message").fill("Judge strictly. Answer A or B.");
    // Longer texts than the first run's: each answer takes longer, so the run is still going
    // when it is cancelled, even on an idle machine.
    await panel.getByLabel("Characters kept of each text").fill("600");
    await panel.getByLabel(/Probe the server/).uncheck();
    await panel.getByRole("button", { name: "Estimate" }).click();
    await expect(panel.getByTestId("judge-cached")).toHaveText("0 requests answered already (free)");
    await expect(panel.getByTestId("judge-time")).toContainText("s per request"); // the first run's rate
    await panel.getByRole("button", { name: "Launch judge job" }).click();
    const jobId = await queuedJudge(page);
    const card = jobCard(page, "Judge", jobId);
    const progress = card.getByRole("progressbar", { name: `Job ${jobId} progress` });
    await expect.poll(async () => Number(await progress.getAttribute("aria-valuenow")), { timeout: 120_000 }).toBeGreaterThan(0);
    await card.getByRole("button", { name: "Cancel", exact: true }).click();
    await expect(card.getByText("Cancelled", { exact: true })).toBeVisible({ timeout: 5_000 });
    expect(await jobStatus(page, jobId)).toBe("cancelled");
  });

  await test.step("the first run's config again: every answer cached, no request sent", async () => {
    await page.reload(); // the form back at its defaults
    const panel = await fillJudge(page);
    await panel.getByRole("button", { name: "Estimate" }).click();
    await expect(panel.getByTestId("judge-cached")).toHaveText(`${2 * nPairs} requests answered already (free)`);
    await expect(panel.getByTestId("judge-time")).toContainText(/^0 s/);
    await panel.getByRole("button", { name: "Launch judge job" }).click();
    const card = jobCard(page, "Judge", await queuedJudge(page));
    await expect(card.getByTestId("judge-requests-sent")).toHaveText(
      `0 requests sent · ${2 * nPairs} answers from the cache`,
      { timeout: 60_000 },
    );
  });
});
