import { expect, test } from "@playwright/test";
import { readFileSync } from "node:fs";

// The export's tag filter and the owner's own judge key, in the real stack: a file with planted
// duplicates and a refusal downloads without the duplicates, then only the refusal; the judge
// key is saved, never shown, survives a reload as "Set", and is cleared.
test("export by tag, and the judge key set and cleared", async ({ page }) => {
  const stamp = Date.now();
  const name = `tagged-${stamp}`;
  const rows = Array.from({ length: 12 }, (_, i) => ({ prompt: `question ${i} ${stamp}`, chosen: `yes ${i}`, rejected: `no ${i}` }));
  rows.push({ ...rows[2] }, { ...rows[3] }); // duplicates: file rows 13 and 14
  rows[5] = { ...rows[5], chosen: "I'm sorry, but I can't help with that." };

  const login = await page.request.post("/api/v1/auth/login", { data: { username: "e2e", password: "e2e-password" } });
  const auth = { Authorization: `Bearer ${(await login.json()).access_token}` };
  const uploaded = await page.request.post("/api/v1/datasets", {
    headers: auth,
    multipart: {
      file: { name: "t.jsonl", mimeType: "application/jsonl", buffer: Buffer.from(rows.map((r) => JSON.stringify(r)).join("\n") + "\n") },
      name,
    },
  });
  expect(uploaded.status()).toBe(201);

  await page.goto("/");
  await page.getByLabel("Username").fill("e2e");
  await page.getByLabel("Password").fill("e2e-password");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("link", { name }).click();

  const exporter = page.getByRole("group", { name: "Export cleaned dataset" });
  const download = async (): Promise<{ prompt: string; chosen: string }[]> => {
    const downloading = page.waitForEvent("download");
    await exporter.getByRole("button", { name: "JSONL" }).click();
    const text = readFileSync((await (await downloading).path())!, "utf8");
    return text.split("\n").filter((line) => line.trim() !== "").map((line) => JSON.parse(line));
  };

  await exporter.getByText("Filter and soft labels").click();
  await expect(exporter.getByLabel("only pairs tagged")).toContainText("duplicate (2)");
  await exporter.getByLabel("leave out pairs tagged").selectOption("duplicate");
  const clean = await download();
  expect(clean).toHaveLength(12); // 14 rows less the two repeats (the first copies stay)
  await exporter.getByLabel("leave out pairs tagged").selectOption("");
  await exporter.getByLabel("only pairs tagged").selectOption("refusal");
  const refusals = await download();
  expect(refusals.map((r) => r.prompt)).toEqual([rows[5].prompt]);

  const key = page.getByRole("group", { name: "Your judge API key" });
  await expect(key).toContainText("Not set");
  await key.getByLabel("Key").fill(`sk-e2e-${stamp}`);
  await key.getByRole("button", { name: "Save key" }).click();
  await expect(key).toContainText("Set (");
  await page.reload();
  const reloaded = page.getByRole("group", { name: "Your judge API key" });
  await expect(reloaded).toContainText("Set (");
  expect(await page.content()).not.toContain(`sk-e2e-${stamp}`);
  await reloaded.getByRole("button", { name: "Clear key" }).click();
  await expect(reloaded).toContainText("Not set");
});
