import AxeBuilder from "@axe-core/playwright";
import { expect, test, type Browser, type Page, type TestInfo } from "@playwright/test";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { hhRecords, uploadAndAudit } from "./audited";

// Every view of the app checked with axe (axe-core, injected by @axe-core/playwright) in light
// and dark mode, at a desktop width and at a phone's 390 px: no serious or critical violation,
// no page wider than the screen, "Launch audit" fully visible (issue 22). Each view is
// screenshotted under test-results; with DOCS_SHOTS=1 the review list and the open pair are also
// written to docs/ for the README.
const here = dirname(fileURLToPath(import.meta.url));
const DOCS = resolve(here, "../../docs");
const N_PAIRS = 40;
const USER = "e2e";
const PASSWORD = "e2e-password";

interface Mode {
  name: string;
  colorScheme: "light" | "dark";
  width: number;
  height: number;
}

const MODES: Mode[] = [
  { name: "light", colorScheme: "light", width: 1400, height: 900 },
  { name: "dark", colorScheme: "dark", width: 1400, height: 900 },
  { name: "phone-light", colorScheme: "light", width: 390, height: 844 },
  { name: "phone-dark", colorScheme: "dark", width: 390, height: 844 },
];

/** Serious and critical axe violations on the page, one line each (empty: none). */
async function seriousViolations(page: Page, view: string): Promise<string[]> {
  const results = await new AxeBuilder({ page }).analyze();
  return results.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map(
      (v) =>
        `${view}: ${v.id} (${v.impact}) ${v.help} — ${v.nodes
          .slice(0, 3)
          .map((n) => `${n.target.join(" ")} ${n.failureSummary?.split("\n")[1] ?? ""}`)
          .join(" | ")}`,
    );
}

/** How far the page is wider than the window (0: it fits). */
async function overflow(page: Page): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
}

/** The innermost elements reaching past the window's right edge (to say what to fix). */
async function overhanging(page: Page): Promise<string> {
  return page.evaluate(() => {
    const out: string[] = [];
    for (const el of Array.from(document.querySelectorAll("body *"))) {
      const box = el.getBoundingClientRect();
      if (box.right <= window.innerWidth + 1 || box.width === 0) continue;
      if (Array.from(el.children).some((c) => c.getBoundingClientRect().right > window.innerWidth + 1)) continue;
      out.push(`${el.tagName.toLowerCase()}.${el.className || ""}[${Math.round(box.right)}]`);
    }
    return out.slice(0, 4).join(", ");
  });
}

async function shot(page: Page, info: TestInfo, name: string) {
  await page.screenshot({ path: info.outputPath(`${name}.png`), fullPage: true });
}

async function logIn(page: Page) {
  await page.getByLabel("Username").fill(USER);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByRole("heading", { name: "Datasets", exact: true })).toBeVisible();
}

async function newPage(browser: Browser, mode: Mode, storageState?: string): Promise<Page> {
  const context = await browser.newContext({
    viewport: { width: mode.width, height: mode.height },
    colorScheme: mode.colorScheme,
    storageState: storageState ? JSON.parse(storageState) : undefined,
  });
  return context.newPage();
}

const pairRows = (page: Page) =>
  page.getByRole("table", { name: "Pairs ranked by harm" }).locator("tbody tr[data-row-index]");

test("axe: no serious or critical violation on any view, light and dark, desktop and 390 px", async ({
  page,
  browser,
}, info) => {
  const rows = hhRecords(N_PAIRS);
  const name = `a11y-${Date.now()}`;
  await page.goto("/login");
  await logIn(page);

  const [datasetId, jobId] = await test.step("upload a small dataset and audit it (tiny model, head mode)", () =>
    uploadAndAudit(page, rows, name),
  );

  const pairs = await (await page.request.get(`/api/v1/datasets/${datasetId}/pairs?job_id=${jobId}&sort=-harm&limit=3`)).json();
  const openPair = pairs.items[1].id as number;
  const session = JSON.stringify(await page.context().storageState());
  const problems: string[] = [];

  const views: { name: string; url: string; ready: (p: Page) => Promise<void> }[] = [
    {
      name: "datasets",
      url: "/datasets",
      ready: async (p) => {
        await expect(p.getByRole("link", { name, exact: true })).toBeVisible();
      },
    },
    {
      name: "dataset",
      url: `/datasets/${datasetId}`,
      ready: async (p) => {
        await expect(pairRows(p).first()).toBeVisible();
      },
    },
    {
      name: "pair",
      url: `/datasets/${datasetId}?pair=${openPair}`,
      ready: async (p) => {
        await expect(p.locator("article.pair-detail h3")).toContainText("Pair at row");
        await expect(pairRows(p).first()).toBeVisible();
      },
    },
    { name: "admin", url: "/admin", ready: async (p) => void (await expect(p.getByRole("table", { name: "Accounts" })).toBeVisible()) },
    { name: "tokens", url: "/tokens", ready: async (p) => void (await expect(p.getByRole("table", { name: "API tokens" })).toBeVisible()) },
  ];

  for (const mode of MODES) {
    await test.step(`${mode.name} (${mode.width} px)`, async () => {
      const signedOut = await newPage(browser, mode);
      await signedOut.goto("/login");
      await expect(signedOut.getByRole("button", { name: "Log in" })).toBeVisible();
      problems.push(...(await seriousViolations(signedOut, `login/${mode.name}`)));
      if ((await overflow(signedOut)) > 0) problems.push(`login/${mode.name}: ${await overflow(signedOut)} px too wide`);
      await shot(signedOut, info, `login-${mode.name}`);
      await signedOut.context().close();

      const p = await newPage(browser, mode, session);
      for (const view of views) {
        await p.goto(view.url);
        await view.ready(p);
        await p.waitForTimeout(300); // let the histogram and the pair's history settle
        problems.push(...(await seriousViolations(p, `${view.name}/${mode.name}`)));
        const wider = await overflow(p);
        if (wider > 0) {
          problems.push(`${view.name}/${mode.name}: the page is ${wider} px wider than the window: ${await overhanging(p)}`);
        }
        if (view.name === "dataset") {
          const launch = await p.getByRole("button", { name: "Launch audit" }).boundingBox();
          if (!launch || launch.x < 0 || launch.x + launch.width > mode.width) {
            problems.push(`${view.name}/${mode.name}: "Launch audit" is cut off (${JSON.stringify(launch)})`);
          }
        }
        await shot(p, info, `${view.name}-${mode.name}`);
      }
      // The keyboard help is an overlay: axe it open, and Escape closes it.
      await p.goto(`/datasets/${datasetId}?pair=${openPair}`);
      await views[2].ready(p);
      await p.keyboard.press("?");
      const help = p.getByRole("dialog", { name: "Keyboard shortcuts" });
      await expect(help).toBeVisible();
      problems.push(...(await seriousViolations(p, `help/${mode.name}`)));
      await p.keyboard.press("Escape");
      await expect(help).toBeHidden();
      await p.context().close();
    });
  }

  if (process.env.DOCS_SHOTS) {
    await test.step("screenshots for the README (docs/)", async () => {
      mkdirSync(DOCS, { recursive: true });
      const p = await newPage(browser, { name: "docs", colorScheme: "light", width: 1600, height: 1000 }, session);
      await p.goto(`/datasets/${datasetId}`);
      await expect(pairRows(p).first()).toBeVisible();
      await p.getByRole("region", { name: /^Pairs/ }).scrollIntoViewIfNeeded();
      await p.screenshot({ path: resolve(DOCS, "review-list.png"), fullPage: false });
      await pairRows(p).nth(1).click();
      await expect(p).toHaveURL(/[?&]pair=\d+/);
      await expect(p.locator("article.pair-detail h3")).toContainText("Pair at row");
      await p.locator("article.pair-detail").scrollIntoViewIfNeeded();
      await p.screenshot({ path: resolve(DOCS, "pair-view.png"), fullPage: false });
      await p.context().close();
    });
  }

  expect(problems).toEqual([]);
});
