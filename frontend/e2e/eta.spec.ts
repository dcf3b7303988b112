import { expect, test } from "@playwright/test";
import { hhRecords, launchAudit, uploadAndAudit, uploadRows } from "./audited";

// The time left a person reads in the jobs list while an audit runs (issue 22): a sentence they
// can read, that counts down towards the end, and that is roughly the time the job then took.
// A first audit of the same kind and size gives the server recorded stage rates to estimate
// from. The same size: the head fit barely grows with the pairs while the ETA scales every stage
// by them (seen here: a 40-pair record made a 120-pair audit say "about 2 min left" 17 s before
// it ended; tests/jobs/test_eta.py times same-size jobs for the same reason). 300 pairs: about
// 30 s of audit, long enough for the time left to count down through a few readings (80 pairs
// ran 13 s, "a few seconds left" all along).
const N_PAIRS = 300;
const USER = "e2e";
const PASSWORD = "e2e-password";

/** What the list may say: "37% · about 25 s left", "5% · estimating time left…". */
const PHRASE = /^(\d{1,3})% · (?:(estimating time left…)|(a few seconds|about \d+ s|about \d+ min|about \d+ h(?: \d+ min)?) left)$/;

/** The seconds an ETA phrase can stand for (formatEta rounds to 5 s under a minute, then to minutes). */
function secondsRange(phrase: string): [number, number] {
  if (phrase === "a few seconds") return [0, 10];
  const [, n, unit, rest] = /^about (\d+) (s|min|h)(?: (\d+) min)?$/.exec(phrase)!;
  const value = Number(n);
  if (unit === "s") return [value - 2.5, value + 2.5];
  if (unit === "min") return [Math.max(60, value * 60 - 30), value * 60 + 30];
  const minutes = value * 60 + Number(rest ?? 0);
  return [minutes * 60 - 30, minutes * 60 + 30];
}

interface Sample {
  /** ms since the epoch, on this machine (the server's clock too: the stack runs here). */
  at: number;
  text: string;
}

test("the jobs list shows a readable time left that counts down to roughly when the audit ends", async ({ page }, info) => {
  const rows = hhRecords(N_PAIRS);
  await page.goto("/login");
  await page.getByLabel("Username").fill(USER);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByRole("heading", { name: "Datasets", exact: true })).toBeVisible();

  await test.step("a first audit of the kind records its stage rates", () =>
    uploadAndAudit(page, rows, `eta-seed-${Date.now()}`),
  );

  const datasetId = await uploadRows(page, rows, `eta-${Date.now()}`);
  const jobId = await launchAudit(page, datasetId);
  await page.goto(`/datasets/${datasetId}`); // its newest job is selected and polled every second
  const progress = page.getByTestId(`job-${jobId}-progress`);
  await expect(progress).toBeVisible();

  const samples: Sample[] = [];
  let finishedAt = 0;
  await test.step("read the list's progress line until the job ends", async () => {
    const deadline = Date.now() + 6 * 60_000;
    while (Date.now() < deadline) {
      const text = (await progress.allTextContents())[0];
      if (text !== undefined) samples.push({ at: Date.now(), text: text.trim() });
      const job = await (await page.request.get(`/api/v1/jobs/${jobId}`)).json();
      if (job.status !== "queued" && job.status !== "running") {
        expect(job.status, job.error ?? "").toBe("succeeded");
        const stamp = job.finished_at as string;
        finishedAt = Date.parse(/(Z|[+-]\d\d:\d\d)$/.test(stamp) ? stamp : `${stamp}Z`);
        break;
      }
      await page.waitForTimeout(500);
    }
    expect(finishedAt, "the audit did not finish within 6 minutes").toBeGreaterThan(0);
  });
  await info.attach("samples.json", { body: JSON.stringify(samples, null, 1), contentType: "application/json" });

  // Once it has ended the list says so: no progress line, no time left.
  await expect(progress).toHaveCount(0);
  await expect(page.getByRole("button", { name: new RegExp(`Audit \\(job ${jobId}\\)`) })).toContainText(/succeeded/i);

  // What was read, each change once, against the time the job then really had left.
  const changes = samples.filter((s, k) => k === 0 || s.text !== samples[k - 1].text);
  console.log(changes.map((s) => `${((finishedAt - s.at) / 1000).toFixed(1)} s left: "${s.text}"`).join("\n"));

  for (const { text } of samples) {
    // A running job's line is "N% · …"; a queued one's is its percentage alone.
    expect(text, "a progress line as a person reads it").toMatch(/^\d{1,3}%( · .+)?$/);
    if (text.includes("·")) expect(text).toMatch(PHRASE);
  }
  const timed = samples
    .map(({ at, text }) => ({ at, text, eta: PHRASE.exec(text)?.[3] }))
    .filter((s): s is Sample & { eta: string } => s.eta !== undefined);
  expect(timed.length, `no sample with a time left: ${JSON.stringify(samples)}`).toBeGreaterThanOrEqual(1);

  // It counts down: the last time left read is shorter than the longest, and "a few seconds" or
  // under a minute by then. Only where the job had more than "a few seconds" left when the first
  // time was read: on a quick machine the whole audit takes ~4 s and every reading is rightly
  // "a few seconds" (the accuracy checks below still hold it to the truth).
  const upper = timed.map((s) => secondsRange(s.eta)[1]);
  const last = timed.at(-1)!;
  const longest = Math.max(...timed.map((s) => (finishedAt - s.at) / 1000));
  if (longest > 15) {
    expect(timed.length, `too few samples with a time left: ${JSON.stringify(samples)}`).toBeGreaterThanOrEqual(3);
    expect(upper.at(-1)!, `${JSON.stringify(timed.map((s) => s.eta))}`).toBeLessThan(Math.max(...upper));
  } else {
    console.log(`the audit had ${longest.toFixed(1)} s left at the first reading: no countdown to see`);
  }
  expect(secondsRange(last.eta)[1]).toBeLessThanOrEqual(62.5);

  // And it is roughly the truth: each time left read is within a factor of 4 (and 15 s) of the
  // time the job then took (a busy shared machine slows stages after the reading).
  for (const { at, eta } of timed) {
    const truth = Math.max(0, (finishedAt - at) / 1000);
    const [low, high] = secondsRange(eta);
    const says = `"${eta} left" read ${truth.toFixed(1)} s before the job ended`;
    expect(high, says).toBeGreaterThanOrEqual(truth / 4 - 15);
    expect(low, says).toBeLessThanOrEqual(truth * 4 + 15);
  }
});
