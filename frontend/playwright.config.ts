import { defineConfig } from "@playwright/test";

// End-to-end against the real stack (API + Celery worker over the filesystem broker + SQLite),
// in the system's Chromium: `playwright install` cannot download browsers here.
const port = Number(process.env.E2E_PORT ?? 8765);
const baseURL = `http://127.0.0.1:${port}`;

export default defineConfig({
  testDir: "e2e",
  // An audit trains a (tiny) reward model on a shared 2-core machine.
  timeout: 8 * 60_000,
  expect: { timeout: 20_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: process.env.CI ? [["list"], ["html", { open: "never" }]] : "list",
  use: {
    baseURL,
    headless: true,
    viewport: { width: 1360, height: 1000 },
    acceptDownloads: true,
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-gpu",
        "--no-first-run",
        "--disable-sync",
      ],
    },
  },
  webServer: {
    command: "bash e2e/start-stack.sh",
    url: `${baseURL}/api/v1/health`,
    env: { E2E_PORT: String(port) },
    timeout: 4 * 60_000,
    reuseExistingServer: false,
    stdout: "pipe",
    stderr: "pipe",
    gracefulShutdown: { signal: "SIGTERM", timeout: 15_000 },
  },
});
