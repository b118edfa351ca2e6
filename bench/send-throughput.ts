// Send throughput: BENCH_MESSAGES messages through POST /api/v1/messages (the route handler
// called in-process with real Request objects: key check, switches, rate limits, validation,
// mailbox lookup, message row, SMTP, audit event) versus bare nodemailer, pooled the same way
// (5 connections, XOAUTH2), to the same demo SMTP server, in the same run.
//
//   npx tsx --conditions=react-server bench/send-throughput.ts             # PGlite
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379 \
//     npx tsx --conditions=react-server bench/send-throughput.ts           # PostgreSQL (+ Redis)
//
// Each run stores its figures in bench/send-throughput.results.json (keyed by database) and
// rewrites the section between the <!-- send-throughput --> markers of bench/README.md from all
// stored results. Settings: BENCH_MESSAGES (2000), BENCH_CONCURRENCY (20). Loopback only.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import nodemailer from "nodemailer";
import { closeDb, getDb } from "@/db";
import { generateKeySpec } from "@/lib/crypto/keyring";

const HERE = fileURLToPath(import.meta.url);
const README = path.join(path.dirname(HERE), "README.md");
const RESULTS = path.join(path.dirname(HERE), "send-throughput.results.json");
const START = "<!-- send-throughput -->";
const END = "<!-- /send-throughput -->";
const WARMUP = 100;

type Stats = { messages: number; seconds: number; perSecond: number; p50: number; p99: number };
type RunResult = {
  database: string;
  rateLimits: string;
  route: Stats;
  bare: Stats;
  ratio: number;
  runAt: string;
  machine: string;
  messages: number;
  concurrency: number;
};

function intSetting(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  return Number.isInteger(value) && value > 0 ? value : fallback;
}

function percentile(sorted: number[], p: number): number {
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? 0;
}

/** Runs `total` jobs with `concurrency` workers; returns wall time and per-job latencies. */
async function drive(
  total: number,
  concurrency: number,
  job: (i: number) => Promise<void>,
): Promise<Stats> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < total; i = next++) {
        const t0 = performance.now();
        await job(i);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    messages: total,
    seconds,
    perSecond: total / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}

function fmt(stats: Stats): string {
  return `${stats.perSecond.toFixed(0)} msg/s · p50 ${stats.p50.toFixed(1)} ms · p99 ${stats.p99.toFixed(1)} ms · ${stats.seconds.toFixed(1)} s`;
}

async function main() {
  const messages = intSetting("BENCH_MESSAGES", 2000);
  const concurrency = intSetting("BENCH_CONCURRENCY", 20);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "mailwarden-bench-"));
  process.env.MAILWARDEN_DATA_DIR = dataDir;
  process.env.TOKEN_ENCRYPTION_KEYS = generateKeySpec("bench");

  // Imported after the environment is set: env() is read once.
  const { POST } = await import("@/app/api/v1/messages/route");
  const testing = await import("@/lib/mail/testing");
  const { closeAllMailboxTransports } = await import("@/lib/mail/transport");
  const { getAccessToken } = await import("@/lib/oauth/tokens");
  const { createOwner } = await import("@/lib/testing/factories");
  const { rateLimits } = await import("@/lib/ratelimit/runtime");

  const bed = await testing.startSendTestbed();
  const restoreLimits = testing.useRateLimits({
    apiKey: { tokens: 1_000_000, window: "1 m" },
    sendMailboxMinuteDemo: { tokens: 1_000_000, window: "1 m" },
    sendMailboxDayDemo: { tokens: 10_000_000, window: "1 d" },
  });
  try {
    const db = await getDb();
    const version = (await db.execute(sql`show server_version`)) as unknown as {
      rows: Array<{ server_version?: string }>;
    };
    const database = process.env.DATABASE_URL
      ? `PostgreSQL ${version.rows[0]?.server_version ?? ""}`.trim()
      : "PGlite (embedded, in-process)";
    const limiterBackend = rateLimits().backend;

    const owner = await createOwner("bench");
    const address = `bench-${Date.now()}@example.test`;
    const mailboxId = await testing.connectMailbox(owner, address);
    const { token } = await testing.makeApiKey(owner);
    const body = (i: number) => ({
      mailbox: mailboxId,
      to: ["rcpt@example.test"],
      subject: `Bench ${i}`,
      text: "A short message body for the throughput benchmark.",
    });

    const viaRoute = async (i: number) => {
      const response = await POST(testing.sendRequest(body(i), { token }));
      if (response.status !== 201) {
        throw new Error(`route answered ${response.status}: ${await response.text()}`);
      }
    };

    const access = await getAccessToken(mailboxId);
    const bare = nodemailer.createTransport({
      host: "localhost",
      port: bed.endpoint.port,
      secure: true,
      pool: true,
      maxConnections: 5,
      maxMessages: 100,
      tls: { minVersion: "TLSv1.2", rejectUnauthorized: true, ca: bed.ca },
      auth: {
        type: "OAuth2",
        user: address,
        accessToken: access.accessToken,
        expires: access.expiresAt.getTime(),
      },
    });
    const viaBare = async (i: number) => {
      const b = body(i);
      await bare.sendMail({ from: address, to: b.to, subject: b.subject, text: b.text });
    };

    console.info(`database: ${database}; rate limits: ${limiterBackend}`);
    await drive(WARMUP, concurrency, viaRoute);
    await drive(WARMUP, concurrency, viaBare);
    const bareStats = await drive(messages, concurrency, viaBare);
    console.info(`bare nodemailer: ${fmt(bareStats)}`);
    const routeStats = await drive(messages, concurrency, viaRoute);
    console.info(`through the route: ${fmt(routeStats)}`);
    const ratio = routeStats.perSecond / bareStats.perSecond;
    console.info(`ratio: ${ratio.toFixed(2)} of bare nodemailer`);

    const inbox = await bed.inboxCount();
    const expected = 2 * (messages + WARMUP);
    if (inbox !== expected) throw new Error(`inbox holds ${inbox} messages, expected ${expected}`);

    bare.close();
    const result: RunResult = {
      database,
      rateLimits: limiterBackend,
      route: routeStats,
      bare: bareStats,
      ratio,
      runAt: new Date().toISOString(),
      machine: `nproc ${os.cpus().length} (${os.cpus()[0]?.model.trim() ?? "unknown"}), Node ${process.version}`,
      messages,
      concurrency,
    };
    writeResults(result);
  } finally {
    closeAllMailboxTransports();
    await restoreLimits();
    await bed.close();
    await closeDb();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

function readResults(): Record<string, RunResult> {
  return fs.existsSync(RESULTS) ? JSON.parse(fs.readFileSync(RESULTS, "utf8")) : {};
}

function writeResults(result: RunResult) {
  const key = result.database.startsWith("PGlite") ? "pglite" : "postgres";
  const stored = readResults();
  stored[key] = result;
  fs.writeFileSync(RESULTS, `${JSON.stringify(stored, null, 2)}\n`);
  renderReadme(stored);
}

function renderReadme(stored: Record<string, RunResult>) {
  const rows = Object.values(stored).flatMap((r) => [
    `| ${r.database} | bare nodemailer (pooled, 5 connections) | ${r.bare.perSecond.toFixed(0)} | ${r.bare.p50.toFixed(1)} | ${r.bare.p99.toFixed(1)} | — |`,
    `| ${r.database} | \`POST /api/v1/messages\` (rate limits: ${r.rateLimits}) | ${r.route.perSecond.toFixed(0)} | ${r.route.p50.toFixed(1)} | ${r.route.p99.toFixed(1)} | **${r.ratio.toFixed(2)}** |`,
  ]);
  const runs = Object.values(stored).map(
    (r) =>
      `- ${r.database}: ${r.messages} messages each, concurrency ${r.concurrency}, ${r.machine}, run ${r.runAt}`,
  );
  const section = [
    START,
    "## Send throughput (`bench/send-throughput.ts`)",
    "",
    "Messages through `POST /api/v1/messages` — the route handler called in-process with real `Request` objects, so every send pays for the API key check, the incident switch read, the rate limits, validation, the mailbox lookup, the `sending` row written before SMTP, the SMTP conversation and the final row update with its audit event (hash chain) — against bare nodemailer pooled the same way (5 XOAUTH2 connections, TLS verified against the demo CA) to the same local demo SMTP server in the same run. Small text messages, one recipient. Goal: at least 0.7 of bare nodemailer.",
    "",
    "| database | path | messages/s | p50 ms | p99 ms | ratio |",
    "| --- | --- | ---: | ---: | ---: | ---: |",
    ...rows,
    "",
    READING,
    "",
    ...runs,
    "- Commands: `npx tsx --conditions=react-server bench/send-throughput.ts` (PGlite) and `DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379 npx tsx --conditions=react-server bench/send-throughput.ts` (PostgreSQL, Redis-backed rate limits).",
    END,
  ].join("\n");

  const readme = fs.existsSync(README) ? fs.readFileSync(README, "utf8") : "# Benchmarks\n";
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  const next =
    start !== -1 && end > start
      ? `${readme.slice(0, start)}${section}${readme.slice(end + END.length)}`
      : `${readme.trimEnd()}\n\n${section}\n`;
  fs.writeFileSync(README, next);
  // Biome lints Markdown tables: let it pad the columns it checks.
  execFileSync("npx", ["biome", "format", "--write", README], { stdio: "ignore" });
}

// Measured while profiling (same machine, 1,000 messages): with the audit event left out of the
// final transaction the route did 332 msg/s on PostgreSQL and 205 on PGlite, against 273 and ~150
// with it. Kept in the README so the figures are read with their causes.
const READING = [
  "Reading it: the goal of 0.7 is **not met** (about 0.3–0.4). Bare nodemailer does no database work at all; every message through the route makes 11 database statements (key lookup by prefix, switch read and key re-check in parallel, mailbox lookup, the `sending` row, then one transaction: update the row, take the organisation's audit-chain advisory lock, read the chain head, insert the event) and, on the Redis backend, 3 rate-limit round trips. On PGlite everything runs on one WASM thread inside the bench process, so those statements are serialised (~0.7 ms each). On PostgreSQL the audit chain lock serialises the final transaction per organisation, which caps one organisation at roughly 1 / (time inside the lock); leaving the audit event out (a profiling experiment only) gave 332 msg/s on PostgreSQL and 205 on PGlite at 1,000 messages. The machine has 2 cores shared by the bench, the SMTP server (which writes every message to disk), PostgreSQL and Redis, and the bare figure swings between runs (550–960 msg/s seen), so the ratio is noisy.",
  "",
  "Tried and not kept: a group commit of the final step (one chain lock, one head read and one multi-row update + insert per group of concurrent sends, plus a per-process guess of the chain head) together with one statement for the switch read and key re-check: 8 statements per message instead of 11, 5.8 with grouping. It bought about 20% on PostgreSQL (median of 3 runs: 342 → 415 msg/s, ratio 0.34 → 0.41, p99 92 → 149 ms) and nothing on PGlite (0.19 → 0.20), for some 600 more lines in the audit path, the most security-sensitive code we have; the gap to 0.7 stays, so the simple path was kept. A profile of the PGlite run puts about half of the one Node thread in PGlite itself (0.7–1.1 ms a statement) and 7–9% in drizzle; on PostgreSQL drizzle's query building and row mapping is about 13%. Caching the key and switch reads was ruled out: a pause or a revocation must reach every instance on the very next request.",
].join("\n");

if (process.argv.includes("--render")) {
  renderReadme(readResults());
  process.exit(0);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
