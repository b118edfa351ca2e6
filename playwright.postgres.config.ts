import { defineConfig } from "@playwright/test";
import base, { E2E_DATA_DIR } from "./playwright.config";

// The journeys that matter most (sign-in, connect, send, the console's switches: tests tagged
// @postgres) against PostgreSQL and Redis, where production runs, instead of PGlite and the
// in-process limiter. The database named by E2E_DATABASE_URL is dropped and created anew first.
const DATABASE_URL =
  process.env.E2E_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/mailwarden_e2e";
const REDIS_URL = process.env.E2E_REDIS_URL ?? "redis://127.0.0.1:6379";

if (!base.webServer || Array.isArray(base.webServer)) throw new Error("one web server expected");

export default defineConfig({
  ...base,
  grep: /@postgres/,
  webServer: {
    ...base.webServer,
    command: `rm -rf ${E2E_DATA_DIR} && npx tsx scripts/e2e-database.ts && npx next build && npm start`,
    env: { ...base.webServer.env, DATABASE_URL, REDIS_URL },
  },
});
