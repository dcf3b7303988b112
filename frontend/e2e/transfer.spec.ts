import { expect, test } from "@playwright/test";

// Handing a dataset on in the browser: the owner transfers it from its Sharing panel, lands on
// the dataset list without it, and the new owner holds it (checked through the API).
test("an owner transfers a dataset to another account", async ({ page }) => {
  const stamp = Date.now();
  const heir = `heir-${stamp}`;
  const name = `handed-on-${stamp}`;

  const login = await page.request.post("/api/v1/auth/login", {
    data: { username: "e2e", password: "e2e-password" },
  });
  const admin = { Authorization: `Bearer ${(await login.json()).access_token}` };
  const created = await page.request.post("/api/v1/admin/users", {
    headers: admin,
    data: { username: heir, password: "heir-password" },
  });
  expect(created.status()).toBe(201);
  const rows = [0, 1, 2].map((i) => JSON.stringify({ prompt: `q${i}`, chosen: "yes", rejected: "no" }));
  const uploaded = await page.request.post("/api/v1/datasets", {
    headers: admin,
    multipart: {
      file: { name: "pairs.jsonl", mimeType: "application/jsonl", buffer: Buffer.from(rows.join("\n") + "\n") },
      name,
    },
  });
  expect(uploaded.status()).toBe(201);
  const datasetId = (await uploaded.json()).id as number;

  await page.goto("/");
  await page.getByLabel("Username").fill("e2e");
  await page.getByLabel("Password").fill("e2e-password");
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByRole("heading", { name: "Datasets", exact: true })).toBeVisible();
  await page.getByRole("link", { name }).click();
  const form = page.getByRole("form", { name: "Transfer ownership" });
  await form.getByLabel("New owner").fill(heir);
  page.once("dialog", (dialog) => void dialog.accept());
  await form.getByRole("button", { name: "Transfer ownership" }).click();
  await expect(page).toHaveURL(/\/datasets$/);
  await expect(page.getByRole("heading", { name: "Datasets", exact: true })).toBeVisible();
  await expect(page.getByRole("link", { name })).toHaveCount(0);

  const heirLogin = await page.request.post("/api/v1/auth/login", {
    data: { username: heir, password: "heir-password" },
  });
  const heirAuth = { Authorization: `Bearer ${(await heirLogin.json()).access_token}` };
  const held = await page.request.get(`/api/v1/datasets/${datasetId}`, { headers: heirAuth });
  expect(held.status()).toBe(200);
  expect((await held.json()).role).toBe("owner");
  const gone = await page.request.get(`/api/v1/datasets/${datasetId}`, { headers: admin });
  expect(gone.status()).toBe(404);
});
