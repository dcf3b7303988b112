import { expect, test, type Browser, type Page, type TestInfo } from "@playwright/test";
import { hhRecords, searchWord, uploadAndAudit } from "./audited";

// The browser used the way people use it (issue 22): every page of the app, reached by clicks,
// must look the same — the same user, the same role's controls, the same data — when its URL is
// loaded cold after login, reloaded, opened in a new tab, or opened from a copied link in a
// second browser context of the same signed-in user; and a signed-out deep link lands on its
// page after login. (A full page load used to lose the user: the app cleared its query cache
// under the pages' first fetches, which then waited forever.)
const N_PAIRS = 40;
const USER = "e2e";
const PASSWORD = "e2e-password";

async function logIn(page: Page) {
  await page.getByLabel("Username").fill(USER);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
}

/** What a page shows that a full load could lose: who is signed in and the admin's link. */
async function header(page: Page) {
  return {
    user: await page.getByText(/^Signed in as /).allTextContents(),
    usersLink: await page.getByRole("link", { name: "Users", exact: true }).count(),
    loading: await page.getByText("Loading…").count(),
  };
}

const count = (page: Page, role: Parameters<Page["getByRole"]>[0], name: string) =>
  page.getByRole(role, { name, exact: true }).count();

type View = Record<string, unknown>;

interface Route {
  name: string;
  /** What a person sees on it: compared, field by field, between every way of getting there. */
  view: (page: Page) => Promise<View>;
}

function datasetsRoute(datasetName: string): Route {
  return {
    name: "datasets",
    view: async (page) => ({
      ...(await header(page)),
      heading: await page.getByRole("heading", { level: 1 }).allTextContents(),
      controls: {
        upload: await page.getByTestId("dropzone").count(),
        deleteOwn: await count(page, "button", `Delete ${datasetName}`),
      },
      rows: await page.locator("table.datasets tbody tr").allInnerTexts(),
    }),
  };
}

function datasetRoute(): Route {
  return {
    name: "dataset",
    view: async (page) => ({
      ...(await header(page)),
      heading: await page.getByRole("heading", { level: 1 }).allTextContents(),
      controls: {
        launchAudit: await count(page, "button", "Launch audit"),
        bulk: await count(page, "group", "Bulk actions"),
        flagTop: await page.getByRole("button", { name: /^Flag top/ }).count(),
        clearFlags: await count(page, "button", "Clear all flags"),
        sharing: await count(page, "region", "Sharing"),
        sharedRole: await page.getByTestId("shared-role").count(),
        followOnly: await page.getByText("Its owner launches audits").count(),
      },
      filters: await page
        .getByRole("search", { name: "Filter pairs" })
        .locator("input:not([type=checkbox]), select")
        .evaluateAll((els) => els.map((el) => `${el.closest("label")?.firstChild?.textContent?.trim()}=${(el as HTMLInputElement).value}`)),
      matches: await page.getByTestId("match-count").allTextContents(),
      // The first rows of the ranking, by their row index (a reload may restore a scroll).
      rows: await page
        .getByRole("table", { name: "Pairs ranked by harm" })
        .locator("tbody tr[data-row-index]")
        .evaluateAll((trs) =>
          trs
            .map((tr) => [Number(tr.getAttribute("data-row-index")), (tr as HTMLElement).innerText] as const)
            .filter(([index]) => index < 5)
            .sort(([a], [b]) => a - b)
            .map(([, text]) => text),
        ),
    }),
  };
}

const adminRoute: Route = {
  name: "admin",
  view: async (page) => ({
    ...(await header(page)),
    heading: await page.getByRole("heading", { level: 1 }).allTextContents(),
    controls: { createAccount: await count(page, "button", "Create account") },
    accounts: await page.getByRole("table", { name: "Accounts" }).locator("tbody tr").allInnerTexts(),
  }),
};

const tokensRoute: Route = {
  name: "tokens",
  view: async (page) => ({
    ...(await header(page)),
    heading: await page.getByRole("heading", { level: 1 }).allTextContents(),
    controls: { create: await page.getByRole("form", { name: "Create a token" }).count() },
    // Name and prefix ("last used" moves on by itself).
    tokens: await page
      .getByRole("table", { name: "API tokens" })
      .locator("tbody tr")
      .evaluateAll((trs) => trs.map((tr) => Array.from(tr.querySelectorAll("td")).slice(0, 2).map((td) => td.textContent).join(" "))),
  }),
};

async function shot(page: Page, info: TestInfo, name: string) {
  await page.screenshot({ path: info.outputPath(`${name}.png`), fullPage: true });
}

/** The page shows what it showed when reached by clicks (waiting for it to load). */
async function expectSame(page: Page, route: Route, baseline: View, info: TestInfo, how: string) {
  await expect
    .poll(() => route.view(page), { message: `${route.name}, ${how}`, timeout: 20_000 })
    .toEqual(baseline);
  await shot(page, info, `${route.name}-${how.replace(/\W+/g, "-")}`);
}

/** Waits until the view stops changing (its data loaded) and returns it. */
async function settledView(page: Page, route: Route, ready: (view: View) => boolean): Promise<View> {
  let last: View = {};
  await expect
    .poll(
      async () => {
        last = await route.view(page);
        return last.loading === 0 && ready(last);
      },
      { message: `${route.name} never loaded`, timeout: 30_000 },
    )
    .toBe(true);
  return last;
}

test("every page survives a cold load, a reload, a new tab, a copied link, and a signed-out deep link", async ({
  page,
  browser,
}, info) => {
  const rows = hhRecords(N_PAIRS);
  const name = `reload-${Date.now()}`;
  const word = searchWord(rows);
  const api = async (path: string) => {
    const response = await page.request.get(`/api/v1${path}`); // with the page's session cookie
    expect(response.status(), path).toBe(200);
    return response.json();
  };

  await page.goto("/");
  await expect(page).toHaveURL(/\/login$/); // "/" is no page to return to
  await logIn(page);
  await expect(page.getByRole("heading", { name: "Datasets", exact: true })).toBeVisible();
  await expect(page).toHaveURL(/\/datasets$/);

  const [datasetId, jobId] = await test.step("upload a small dataset and audit it (tiny model, head mode)", () =>
    uploadAndAudit(page, rows, name),
  );

  // The filters a shared link carries: sort by loss, a search, and a loss range that keeps
  // about half of the search's hits.
  const hits = await api(`/datasets/${datasetId}/pairs?job_id=${jobId}&q=${word}&sort=-loss&limit=100`);
  const losses = (hits.items as { scores: { loss: number } }[]).map((pair) => pair.scores.loss);
  expect(losses.length).toBeGreaterThan(0);
  const min = (Math.floor(losses[Math.floor((losses.length - 1) / 2)] * 1000) / 1000).toFixed(3);
  const expected = await api(`/datasets/${datasetId}/pairs?job_id=${jobId}&q=${word}&sort=-loss&score=loss:${min}:&limit=100`);
  expect(expected.total).toBeGreaterThan(0);

  const routes = { datasets: datasetsRoute(name), dataset: datasetRoute(), admin: adminRoute, tokens: tokensRoute };
  const visits: { route: Route; url: string; baseline: View }[] = [];

  await test.step("by clicks: each page as navigating there shows it", async () => {
    // (The list open since login predates the upload through the API: leave it and come back.)
    await page.getByRole("link", { name: "API tokens" }).click();
    await page.getByRole("link", { name: "prefaudit" }).click();
    let view = await settledView(page, routes.datasets, (v) => (v.rows as string[]).some((r) => r.includes(name)));
    expect(view).toMatchObject({ user: [`Signed in as ${USER}`], usersLink: 1, controls: { upload: 1, deleteOwn: 1 } });
    visits.push({ route: routes.datasets, url: page.url(), baseline: view });
    await shot(page, info, "datasets-clicked");

    await page.getByRole("link", { name }).click();
    await expect(page.getByRole("table", { name: "Pairs ranked by harm" }).locator("tbody tr[data-row-index]").first()).toBeVisible();
    await page.getByLabel("Sort by").selectOption("loss");
    await expect(page).toHaveURL(/sort=-loss/);
    await page.getByLabel("Search").fill(word);
    await page.getByLabel("Range column").selectOption("loss");
    await page.getByLabel("Range min").fill(min);
    await page.getByRole("button", { name: "Apply filters" }).click();
    await expect(page).toHaveURL(new RegExp(`q=${word}`));
    await expect(page).toHaveURL(/range=loss/);
    await expect(page.getByTestId("match-count")).toHaveText(String(expected.total));
    view = await settledView(page, routes.dataset, (v) => (v.rows as string[]).length === Math.min(5, expected.total));
    expect(view).toMatchObject({
      user: [`Signed in as ${USER}`],
      usersLink: 1,
      heading: [name],
      controls: { launchAudit: 1, bulk: 1, flagTop: 1, clearFlags: 1, sharing: 1, sharedRole: 0, followOnly: 0 },
      matches: [String(expected.total)],
    });
    const params = new URL(page.url()).searchParams;
    expect([params.get("sort"), params.get("q"), params.get("range")]).toEqual(["-loss", word, `loss:${min}:`]);
    visits.push({ route: routes.dataset, url: page.url(), baseline: view });
    await shot(page, info, "dataset-clicked");

    // The open pair is in the URL (?pair=): a reload or a copied link opens the same pair.
    await page.getByRole("table", { name: "Pairs ranked by harm" }).locator("tbody tr[data-row-index]").first().click();
    await expect(page).toHaveURL(/[?&]pair=\d+/);
    const pairRoute: Route = {
      name: "pair",
      view: async (p) => ({
        ...(await routes.dataset.view(p)),
        pair: await p.locator("article.pair-detail h3").allInnerTexts(),
        prompt: await p.getByLabel("Prompt text").allInnerTexts(),
      }),
    };
    view = await settledView(page, pairRoute, (v) => (v.pair as string[]).length === 1);
    expect((view.pair as string[])[0]).toMatch(/^Pair at row \d+/);
    visits.push({ route: pairRoute, url: page.url(), baseline: view });
    await shot(page, info, "pair-clicked");

    await page.getByRole("link", { name: "Users", exact: true }).click();
    view = await settledView(page, routes.admin, (v) => (v.accounts as string[]).some((r) => r.includes(`${USER} (you)`)));
    expect(view).toMatchObject({ usersLink: 1, heading: ["Users"], controls: { createAccount: 1 } });
    visits.push({ route: routes.admin, url: page.url(), baseline: view });
    await shot(page, info, "admin-clicked");

    await page.getByRole("link", { name: "API tokens" }).click();
    view = await settledView(page, routes.tokens, (v) => (v.tokens as string[]).length > 0);
    expect(view).toMatchObject({ usersLink: 1, heading: ["API tokens"], controls: { create: 1 } });
    visits.push({ route: routes.tokens, url: page.url(), baseline: view });
    await shot(page, info, "tokens-clicked");
  });

  for (const { route, url, baseline } of visits) {
    await test.step(`${route.name}: cold load, reload, new tab, copied link in a second context`, async () => {
      await page.goto(url);
      await expectSame(page, route, baseline, info, "cold");
      await page.reload();
      await expect(page).toHaveURL(url);
      await expectSame(page, route, baseline, info, "reloaded");

      const tab = await page.context().newPage();
      await tab.goto(url);
      await expectSame(tab, route, baseline, info, "new tab");
      await tab.close();

      const second = await openSignedIn(browser, page);
      await second.goto(url);
      await expect(second).toHaveURL(url);
      await expectSame(second, route, baseline, info, "second context");
      await second.context().close();
    });
  }

  // Logging in creates a session (a token row), so these come after the tokens page's checks.
  for (const { route, url, baseline } of visits.filter((v) => v.route.name !== "tokens")) {
    await test.step(`${route.name}: a signed-out deep link lands on it after login`, async () => {
      const context = await browser.newContext();
      const fresh = await context.newPage();
      await fresh.goto(url);
      const path = url.slice(new URL(url).origin.length);
      await expect(fresh).toHaveURL(`/login?next=${encodeURIComponent(path)}`);
      await shot(fresh, info, `${route.name}-signed-out-link`);
      await logIn(fresh);
      await expect(fresh).toHaveURL(url);
      await expectSame(fresh, route, baseline, info, "after login");
      await context.close();
    });
  }

  await test.step("a next that is not a page of the app goes to the datasets", async () => {
    const context = await browser.newContext();
    const fresh = await context.newPage();
    await fresh.goto(`/login?next=${encodeURIComponent("//example.com/datasets")}`);
    await logIn(fresh);
    await expect(fresh).toHaveURL(/\/datasets$/);
    await expect(fresh.getByText(`Signed in as ${USER}`)).toBeVisible();
    await context.close();
  });
});

test("Back and Forward step through the list, the dataset, the open pair, a sort and a search", async ({
  page,
}, info) => {
  const rows = hhRecords(N_PAIRS);
  const name = `history-${Date.now()}`;
  const word = searchWord(rows);
  await page.goto("/login");
  await logIn(page);
  await expect(page.getByRole("heading", { name: "Datasets", exact: true })).toBeVisible();
  const [datasetId, jobId] = await test.step("upload a small dataset and audit it (tiny model, head mode)", () =>
    uploadAndAudit(page, rows, name),
  );
  const searched = await page.request.get(`/api/v1/datasets/${datasetId}/pairs?job_id=${jobId}&q=${word}&sort=-loss&limit=1`);
  const expectedHits = String((await searched.json()).total);

  const list = datasetsRoute(name);
  const review: Route = {
    name: "review",
    view: async (p) => ({
      ...(await datasetRoute().view(p)),
      sort: await p.getByLabel("Sort by").inputValue(),
      pair: await p.locator("article.pair-detail h3").allInnerTexts(),
    }),
  };
  const table = page.getByRole("table", { name: "Pairs ranked by harm" }).locator("tbody tr[data-row-index]");
  // Each step: what it did to the URL and what the page showed then.
  const steps: { what: string; route: Route; url: string; view: View }[] = [];
  const remember = async (what: string, route: Route, ready: (view: View) => boolean) => {
    const view = await settledView(page, route, ready);
    steps.push({ what, route, url: page.url(), view });
    await shot(page, info, `history-${steps.length}-${what.replace(/\W+/g, "-")}`);
  };

  await test.step("forward by clicks: list, dataset, pair, sort, search", async () => {
    await page.goto("/datasets"); // a fresh entry: the list as it is after the upload
    await remember("list", list, (v) => (v.rows as string[]).some((r) => r.includes(name)));

    await page.getByRole("link", { name }).click();
    await expect(page).toHaveURL(new RegExp(`/datasets/${datasetId}$`));
    await remember("dataset", review, (v) => (v.rows as string[]).length === 5);

    await table.first().click();
    await expect(page).toHaveURL(/[?&]pair=\d+/);
    await remember("pair", review, (v) => (v.pair as string[]).length === 1);

    await page.getByLabel("Sort by").selectOption("loss");
    await expect(page).toHaveURL(/sort=-loss/);
    await remember("sort", review, (v) => v.sort === "loss" && (v.pair as string[]).length === 1);

    await page.getByLabel("Search").fill(word);
    await page.getByRole("button", { name: "Apply filters" }).click();
    await expect(page).toHaveURL(new RegExp(`q=${word}`));
    await remember("search", review, (v) => (v.matches as string[])[0] === expectedHits);
  });
  // Every step changed what the page shows (else going back to it would prove nothing).
  for (let k = 1; k < steps.length; k++) {
    expect(steps[k].view, `${steps[k].what} vs ${steps[k - 1].what}`).not.toEqual(steps[k - 1].view);
  }
  const [, dataset, pair, sort, search] = steps;
  expect(new URL(pair.url).searchParams.get("pair")).toMatch(/^\d+$/);
  expect(new URL(sort.url).searchParams.get("pair")).toBe(new URL(pair.url).searchParams.get("pair"));
  expect(new URL(search.url).searchParams.get("sort")).toBe("-loss");
  expect(new URL(dataset.url).search).toBe("");

  for (let k = steps.length - 2; k >= 0; k--) {
    await test.step(`Back to the ${steps[k].what}`, async () => {
      await page.goBack();
      await expect(page).toHaveURL(steps[k].url);
      await expectSame(page, steps[k].route, steps[k].view, info, `back to ${steps[k].what}`);
    });
  }
  for (let k = 1; k < steps.length; k++) {
    await test.step(`Forward to the ${steps[k].what}`, async () => {
      await page.goForward();
      await expect(page).toHaveURL(steps[k].url);
      await expectSame(page, steps[k].route, steps[k].view, info, `forward to ${steps[k].what}`);
    });
  }
});

/** A second browser context holding this page's session (cookies and storage), as a copied
 * profile or a second window of the same signed-in browser would. */
async function openSignedIn(browser: Browser, page: Page): Promise<Page> {
  const context = await browser.newContext({ storageState: await page.context().storageState() });
  return context.newPage();
}
