// `npm test`: lint, typecheck, unit + integration tests (PGlite, then PostgreSQL when
// DATABASE_URL is set), then the Playwright suite in Debian's Chromium (and its @postgres
// journeys on PostgreSQL + Redis when DATABASE_URL is set).
import { execSync, spawnSync } from "node:child_process";
import fs from "node:fs";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

function run(title: string, command: string, args: string[], env: Record<string, string> = {}) {
  console.info(`\n▶ ${title}`);
  const result = spawnSync(command, args, { stdio: "inherit", env: { ...process.env, ...env } });
  if (result.status !== 0) {
    console.error(`✖ ${title} failed`);
    process.exit(result.status ?? 1);
  }
}

function ensureChromium() {
  if (fs.existsSync(CHROMIUM)) return;
  const install = "apt-get update && apt-get install -y chromium";
  if (process.getuid?.() !== 0) {
    console.error(`Chromium is missing at ${CHROMIUM}. Install it with:\n  sudo ${install}`);
    process.exit(1);
  }
  console.info(`▶ installing Debian's Chromium: ${install}`);
  execSync(install, {
    stdio: "inherit",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
}

// npm puts node_modules/.bin first on this script's PATH, so each `npx` below runs on the Node
// that `npm ci` installed there (Linux x64), as this script does.
console.info(`Node ${process.version} (${process.execPath})`);
run("lint", "npx", ["biome", "check", "."]);
run("typecheck", "npx", ["tsc", "--noEmit"]);
run("unit + integration (PGlite)", "npx", ["vitest", "run"], { DATABASE_URL: "" });
if (process.env.DATABASE_URL) {
  run("integration (PostgreSQL)", "npx", ["vitest", "run"]);
}
ensureChromium();
run("e2e (Chromium)", "npx", ["playwright", "test"], { DATABASE_URL: "" });
if (process.env.DATABASE_URL) {
  run("e2e journeys on PostgreSQL + Redis (Chromium)", "npx", [
    "playwright",
    "test",
    "--config",
    "playwright.postgres.config.ts",
  ]);
}
console.info("\n✔ all test stages passed");
