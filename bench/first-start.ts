// First start: what a new user waits for after `npm ci && npm run dev` on a fresh clone, cold
// (no .data, no .next) and warm (the second start, .data and .next left by the first).
//
//   npx tsx bench/first-start.ts                          # this commit only
//   npx tsx bench/first-start.ts --baseline HEAD~3        # and a baseline, interleaved
//
// Each run clones the committed HEAD of this checkout (and the baseline) into a temporary
// folder, runs `npm ci`, then starts `npm run dev` twice. After each start a client waits for
// the port, asks for `/` as a browser would (following the redirect to the sign-in page) and
// then for every script and stylesheet that page names. Uncommitted changes are not measured.
// Settings: BENCH_RUNS (3; the median is reported), BENCH_PORT (3710; the demo provider and
// SMTP server take the next two ports). Results go to bench/README.md between the
// <!-- first-start --> markers. Loopback only; each clone is deleted after its run.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import { connect } from "node:net";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";

const HERE = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(HERE), "..");
const README = path.join(ROOT, "bench", "README.md");
const START = "<!-- first-start -->";
const END = "<!-- /first-start -->";
const START_TIMEOUT_MS = 240_000;
// Next.js writes its compile cache to .next in the background; a warm start only finds what the
// first start wrote, so the first one is left running until that is done (or this long).
const CACHE_WRITE_WAIT_MS = 60_000;
// Settings a developer may have exported that would take the app out of the zero-configuration
// demo mode the README promises.
const APP_SETTINGS =
  /^(APP_URL|AUTH_SECRET|DATABASE_URL|MAILWARDEN_DATA_DIR|TOKEN_ENCRYPTION_KEYS|GOOGLE_.*|MICROSOFT_.*|UPSTASH_.*|REDIS_URL|RATE_LIMITS|DEMO_.*|.*_FILE)$/;

type Start = {
  load: number;
  listening: number;
  redirect: number;
  signIn: number;
  page: number;
  assets: number;
};
type Run = { variant: string; npmCi: number; npmCiWarnings: string[]; cold: Start; warm: Start };

function intSetting(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  return Number.isInteger(value) && value > 0 ? value : fallback;
}

function argument(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index === -1 ? undefined : process.argv[index + 1];
}

function git(...args: string[]): string {
  return execFileSync("git", ["-C", ROOT, ...args], { encoding: "utf8" }).trim();
}

const seconds = (ms: number) => ms / 1000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: "localhost" });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

function benchEnv(port: number): NodeJS.ProcessEnv {
  // Undefined values are left out of a child's environment.
  const cleared = Object.fromEntries(
    Object.keys(process.env)
      .filter((name) => APP_SETTINGS.test(name))
      .map((name) => [name, undefined]),
  );
  return {
    ...process.env,
    ...cleared,
    // Not the README's :3000, so that a developer's own `npm run dev` may keep running.
    APP_URL: `http://localhost:${port}`,
    DEMO_OIDC_PORT: String(port + 1),
    DEMO_SMTP_PORT: String(port + 2),
    NEXT_TELEMETRY_DISABLED: "1",
  };
}

/** What a browser loads after a page's HTML: the scripts and stylesheets it names, in parallel. */
async function loadAssets(pageUrl: string, html: string): Promise<number> {
  const origin = new URL(pageUrl).origin;
  const assets = [...html.matchAll(/<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)"[^>]*>/g)]
    .filter(([tag = ""]) => tag.startsWith("<script") || /rel="stylesheet"/.test(tag))
    .map(([, href = ""]) => new URL(href.replaceAll("&amp;", "&"), pageUrl).href)
    .filter((href) => href.startsWith(origin));
  const unique = [...new Set(assets)];
  await Promise.all(
    unique.map(async (href) => {
      const asset = await fetch(href, { signal: AbortSignal.timeout(START_TIMEOUT_MS) });
      await asset.arrayBuffer();
      if (!asset.ok) throw new Error(`${href} answered ${asset.status}`);
    }),
  );
  return unique.length;
}

async function startOnce(
  dir: string,
  port: number,
  logFile: string,
  awaitCacheWrite: boolean,
): Promise<Start> {
  for (const p of [port, port + 1, port + 2]) {
    if (await portOpen(p)) throw new Error(`Port ${p} is in use: set BENCH_PORT`);
  }
  const load = os.loadavg()[0] ?? 0;
  const log = fs.openSync(logFile, "a");
  const t0 = performance.now();
  const child = spawn("npm", ["run", "dev"], {
    cwd: dir,
    env: benchEnv(port),
    stdio: ["ignore", log, log],
    detached: true,
  });
  let exited = false;
  child.on("exit", () => {
    exited = true;
  });
  const since = () => performance.now() - t0;
  try {
    while (!(await portOpen(port))) {
      if (exited) throw new Error(`npm run dev exited early; see ${logFile}`);
      if (since() > START_TIMEOUT_MS) throw new Error(`No server after ${START_TIMEOUT_MS} ms`);
      await sleep(50);
    }
    const listening = since();
    const origin = `http://localhost:${port}`;
    const first = await fetch(`${origin}/`, {
      redirect: "manual",
      signal: AbortSignal.timeout(START_TIMEOUT_MS),
    });
    await first.arrayBuffer();
    const redirect = since();
    const location = first.headers.get("location");
    if (first.status !== 307 || !location) throw new Error(`/ answered ${first.status}`);
    const signInUrl = new URL(location, origin).href;
    const signIn = await fetch(signInUrl, { signal: AbortSignal.timeout(START_TIMEOUT_MS) });
    const html = await signIn.text();
    const signInAt = since();
    if (signIn.status !== 200) throw new Error(`${signInUrl} answered ${signIn.status}`);
    const assets = await loadAssets(signInUrl, html);
    const page = since();
    if (awaitCacheWrite) await waitForCacheWrite(logFile);
    return { load, listening, redirect, signIn: signInAt, page, assets };
  } finally {
    await stop(child.pid, port);
    fs.closeSync(log);
  }
}

async function waitForCacheWrite(logFile: string): Promise<void> {
  const until = performance.now() + CACHE_WRITE_WAIT_MS;
  const mark = fs.readFileSync(logFile, "utf8").lastIndexOf("npm run dev");
  while (performance.now() < until) {
    if (/filesystem cache/.test(fs.readFileSync(logFile, "utf8").slice(mark))) return;
    await sleep(250);
  }
}

/** Stops the whole process group of `npm run dev` (started detached, so only ours). */
async function stop(pid: number | undefined, port: number): Promise<void> {
  if (!pid) return;
  try {
    process.kill(-pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = performance.now() + 15_000;
  while (performance.now() < deadline) {
    try {
      process.kill(-pid, 0);
    } catch {
      break;
    }
    await sleep(100);
  }
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
  while ((await portOpen(port)) || (await portOpen(port + 1)) || (await portOpen(port + 2))) {
    await sleep(100);
  }
}

async function runVariant(
  variant: string,
  commit: string,
  workDir: string,
  port: number,
): Promise<Run> {
  const dir = path.join(workDir, variant);
  fs.rmSync(dir, { recursive: true, force: true });
  execFileSync("git", ["clone", "--quiet", "--no-checkout", ROOT, dir]);
  execFileSync("git", ["-C", dir, "checkout", "--quiet", commit]);
  const logFile = path.join(workDir, `${variant}.log`);
  try {
    const t0 = performance.now();
    const ci = spawnSync("npm", ["ci"], { cwd: dir, env: benchEnv(port), encoding: "utf8" });
    const npmCi = performance.now() - t0;
    if (ci.status !== 0) throw new Error(`npm ci failed in ${dir}:\n${ci.stderr}`);
    // npm writes its warnings to stderr.
    const warnings = `${ci.stdout}\n${ci.stderr}`
      .split("\n")
      .filter((line) => /^npm warn/i.test(line.trim()));
    const cold = await startOnce(dir, port, logFile, true);
    const warm = await startOnce(dir, port, logFile, false);
    return { variant, npmCi, npmCiWarnings: warnings, cold, warm };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const runs = intSetting("BENCH_RUNS", 3);
  const port = intSetting("BENCH_PORT", 3710);
  const baselineRef = argument("--baseline");
  if (git("status", "--porcelain", "--untracked-files=no")) {
    console.warn("Uncommitted changes are not measured: the bench clones the committed HEAD.");
  }
  const head = git("rev-parse", "HEAD");
  const variants: Array<{ name: string; commit: string }> = [{ name: "head", commit: head }];
  if (baselineRef) {
    variants.unshift({ name: "baseline", commit: git("rev-parse", `${baselineRef}^{commit}`) });
  }
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "mailwarden-first-start-"));
  const results: Run[] = [];
  try {
    for (let round = 0; round < runs; round++) {
      // Interleaved, and the order flips each round, so a busy spell hits both alike.
      const order = round % 2 ? [...variants].reverse() : variants;
      for (const { name, commit } of order) {
        console.log(`round ${round + 1}/${runs}: ${name} (${commit.slice(0, 7)})`);
        const run = await runVariant(name, commit, workDir, port);
        console.log(JSON.stringify(run));
        results.push(run);
      }
    }
  } catch (error) {
    console.error(`Stopped; the dev server logs are in ${workDir}`);
    throw error;
  }
  fs.rmSync(workDir, { recursive: true, force: true });
  writeSection(section(variants, results, runs));
  console.log(`Written to ${path.relative(process.cwd(), README)}.`);
}

function cell(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const fmt = (ms: number) => seconds(ms).toFixed(1);
  return `${fmt(median(values))} s (${sorted.map(fmt).join(", ")})`;
}

function markdownTable(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

function section(
  variants: Array<{ name: string; commit: string }>,
  results: Run[],
  runs: number,
): string {
  const of = (name: string) => results.filter((r) => r.variant === name);
  const label = (v: { name: string; commit: string }) =>
    v.name === "baseline" ? `baseline \`${v.commit.slice(0, 7)}\`` : `\`${v.commit.slice(0, 7)}\``;
  const rows: Array<[string, (r: Run) => number]> = [
    ["cold: server listening", (r) => r.cold.listening],
    ["cold: `/` answered (307 to `/sign-in`)", (r) => r.cold.redirect],
    ["cold: `/sign-in` 200", (r) => r.cold.signIn],
    ["cold: **first page** (HTML + scripts + stylesheets)", (r) => r.cold.page],
    ["warm: server listening", (r) => r.warm.listening],
    ["warm: `/` answered (307 to `/sign-in`)", (r) => r.warm.redirect],
    ["warm: `/sign-in` 200", (r) => r.warm.signIn],
    ["warm: **first page** (HTML + scripts + stylesheets)", (r) => r.warm.page],
    ["`npm ci` (npm cache warm)", (r) => r.npmCi],
  ];
  const table = markdownTable(
    [`seconds from \`npm run dev\`, median (all ${runs} runs)`, ...variants.map(label)],
    [
      ...rows.map(([name, pick]) => [name, ...variants.map((v) => cell(of(v.name).map(pick)))]),
      [
        "load average (1 min) at each start",
        ...variants.map((v) =>
          of(v.name)
            .flatMap((r) => [r.cold.load, r.warm.load])
            .map((l) => l.toFixed(1))
            .join(", "),
        ),
      ],
      [
        "`npm ci` warnings",
        ...variants.map((v) => {
          const lines = new Set(of(v.name).flatMap((r) => r.npmCiWarnings));
          return lines.size ? `${lines.size} lines, first: \`${[...lines][0]?.trim()}\`` : "none";
        }),
      ],
    ],
  );
  const cpu = os.cpus()[0]?.model.trim() ?? "unknown CPU";
  const command = `npx tsx bench/first-start.ts${variants.length > 1 ? ` --baseline ${variants[0]?.commit.slice(0, 7)}` : ""}`;
  return [
    "## First start (`bench/first-start.ts`)",
    "",
    "`npm ci && npm run dev` on a fresh clone, as the README's quick start says, with no " +
      "configuration (demo mode, PGlite). Cold: the first start, no `.data` and no `.next`. " +
      "Warm: the second start of the same clone, after the first had written its compile cache. " +
      "Times are from spawning `npm run dev`: the client waits for the port, asks for `/` as a " +
      "browser does, follows its redirect to `/sign-in`, then loads every script and " +
      "stylesheet that page names (the first page a person sees, fully loaded). " +
      `${variants.length > 1 ? "The two commits ran interleaved, the order flipping each round. " : ""}` +
      "Goal: cold first page under 15 s, warm under 8 s.",
    "",
    table,
    "",
    `- Command: \`${command}\` (BENCH_RUNS=${runs}, ports ${intSetting("BENCH_PORT", 3710)}–${intSetting("BENCH_PORT", 3710) + 2})`,
    `- Machine: nproc ${os.availableParallelism()} (${cpu}), Node ${process.version}, npm ${execFileSync("npm", ["--version"], { encoding: "utf8" }).trim()}, ${process.platform} ${os.release()}`,
    `- Run: ${new Date().toISOString()}`,
  ].join("\n");
}

function writeSection(text: string): void {
  const block = `${START}\n${text}\n${END}`;
  // Read right before writing, and replace only this section: other benches write theirs.
  const current = fs.readFileSync(README, "utf8");
  const from = current.indexOf(START);
  const to = current.indexOf(END, from);
  const next =
    from !== -1 && to !== -1
      ? `${current.slice(0, from)}${block}${current.slice(to + END.length)}`
      : `${current.replace(/\s*$/, "")}\n\n${block}\n`;
  fs.writeFileSync(README, next);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
