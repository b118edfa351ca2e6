import { defineConfig } from "@playwright/test";

// E2E runs against a production build in demo mode, on its own ports and data folder so that a
// developer's `npm run dev` can keep running. E2E_PORT moves all three ports (app, demo
// provider, demo SMTP) so that two checkouts can run the suite side by side.
const PORT = Number(process.env.E2E_PORT ?? 3100);
export const E2E_DATA_DIR = ".data/e2e";
/** Sign-ins (and Auth.js callbacks) allowed per address and minute while the suite runs. */
export const E2E_SIGN_IN_LIMIT = 500;

export default defineConfig({
  testDir: "e2e",
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  use: {
    baseURL: `http://localhost:${PORT}`,
    trace: "retain-on-failure",
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
      ],
    },
  },
  webServer: {
    // npx and npm start run the Node that npm ci installed (node_modules/.bin/node).
    command: `rm -rf ${E2E_DATA_DIR} && npx next build && npm start`,
    url: `http://localhost:${PORT}/api/health`,
    timeout: 480_000,
    reuseExistingServer: false,
    stdout: "pipe",
    env: {
      APP_URL: `http://localhost:${PORT}`,
      MAILWARDEN_DATA_DIR: E2E_DATA_DIR,
      DEMO_OIDC_PORT: String(PORT + 1),
      DEMO_SMTP_PORT: String(PORT + 2),
      DATABASE_URL: "",
      DEMO_MODE: "true",
      // Every test signs in from the same loopback address within a minute or two.
      RATE_LIMITS: JSON.stringify({
        signIn: { tokens: E2E_SIGN_IN_LIMIT, window: "1 m" },
        signInCallback: { tokens: E2E_SIGN_IN_LIMIT, window: "1 m" },
      }),
      // Notification digests within seconds, so a test sees the email arrive.
      NOTIFICATION_DIGEST_SECONDS: "2",
      // A queued message outlives a provider's 24-hour limit (default 24 h: it would fail at
      // once with the reason), so e2e/limits.spec.ts sees it wait and cancels it.
      QUEUE_DEADLINE_HOURS: "48",
      NEXT_TELEMETRY_DISABLED: "1",
    },
  },
});
