// Queue drain: BENCH_MESSAGES messages queued with `Prefer: respond-async` across BENCH_MAILBOXES
// demo mailboxes whose demo SMTP server enforces Microsoft-style limits (3 connections per
// mailbox, answered 432 past that; a per-window message count scaled for the test), drained by
// a separate app process (bench/queue-app.ts) that is killed with SIGKILL half-way and started
// again. It reports whether the server ever answered 432, the drain rate against the allowed
// rate (BENCH_RATE messages a second per mailbox, the queue's pace), and whether every message
// was accepted exactly once (the server's count of accepted Message-IDs). bench/README.md reads
// the figures.
//
//   npx tsx --conditions=react-server bench/queue.ts                          # PGlite
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> \
//     npx tsx --conditions=react-server bench/queue.ts                        # PostgreSQL
//
// Settings: BENCH_MESSAGES (10000), BENCH_MAILBOXES (20), BENCH_RATE (2 per second per mailbox).
// On PostgreSQL the database's public, drizzle and pgboss schemas are dropped first: use a
// database of its own.
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { generateKeySpec } from "@/lib/crypto/keyring";
import { drive, intSetting, machine, storeResult, writeReadmeSection } from "./lib";

const SCRIPT = "queue";
const LEASE_SECONDS = 10;

type Sample = { at: number; accepted: number };

type RunResult = {
  database: string;
  messages: number;
  mailboxes: number;
  allowedPerSecond: number;
  enqueuePerSecond: number;
  /** Steady drain rate before the kill, and after the restart (lease lapsed), msg/s. */
  drainBeforeKill: number;
  drainAfterRestart: number;
  /** Whole run, first to last accept, the restart gap included. */
  drainOverall: number;
  acceptedAtKill: number;
  restartGapSeconds: number;
  refusedConcurrent: number;
  peakConnections: number;
  overRate: number;
  acceptedUnique: number;
  duplicates: number;
  finalStatuses: Record<string, number>;
  loadAverage: [number, number];
  runAt: string;
  machine: string;
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function rateBetween(samples: Sample[], from: number, to: number): number {
  const inside = samples.filter((s) => s.at >= from && s.at <= to);
  const first = inside[0];
  const last = inside[inside.length - 1];
  if (!first || !last || last.at === first.at) return Number.NaN;
  return ((last.accepted - first.accepted) * 1000) / (last.at - first.at);
}

async function resetPostgres(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(
    "drop schema if exists public cascade; drop schema if exists drizzle cascade; drop schema if exists pgboss cascade; create schema public;",
  );
  await client.end();
}

async function main() {
  const total = intSetting("BENCH_MESSAGES", 10_000);
  const mailboxCount = intSetting("BENCH_MAILBOXES", 20, 1, 200);
  const perMailboxPerSecond = intSetting("BENCH_RATE", 2, 1, 100);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "mailwarden-bench-queue-"));
  const appEnv: Record<string, string> = {
    MAILWARDEN_DATA_DIR: dataDir,
    TOKEN_ENCRYPTION_KEYS: generateKeySpec("bench"),
    // The queue's pace is the allowed rate; the chokepoint's own mailbox limits stay out of the
    // way (they are Microsoft's 30 a minute by default), and one key may queue them all.
    SMTP_PER_MINUTE_DEMO: String(perMailboxPerSecond * 60),
    RATE_LIMITS: JSON.stringify({
      apiKey: { tokens: 1_000_000, window: "1 m" },
      oauthStart: { tokens: 1_000, window: "1 m" },
      sendMailboxMinuteDemo: { tokens: 1_000_000, window: "1 m" },
      sendMailboxDayDemo: { tokens: 1_000_000, window: "1 d" },
    }),
    QUEUE_SEND_LEASE_SECONDS: String(LEASE_SECONDS),
    QUEUE_POLL_SECONDS: "0.5",
  };
  Object.assign(process.env, appEnv);
  delete process.env.REDIS_URL;
  if (process.env.DATABASE_URL) await resetPostgres(process.env.DATABASE_URL);

  // Imported after the environment is set: env() is read once.
  const { closeDb, getDb } = await import("@/db");
  const { databaseName } = await import("./lib");
  const { POST } = await import("@/app/api/v1/messages/route");
  const testing = await import("@/lib/mail/testing");
  const { closeAllMailboxTransports } = await import("@/lib/mail/transport");
  const { createOwner } = await import("@/lib/testing/factories");
  const { stopQueue } = await import("@/lib/queue");
  const { stopAuditSealer } = await import("@/lib/audit/sealer");

  const windowMs = 10_000;
  const bed = await testing.startSendTestbed({
    limits: {
      maxConnectionsPerMailbox: 3,
      messagesPerWindow: (perMailboxPerSecond * windowMs) / 1000,
      windowMs,
    },
  });
  const db = await getDb();
  const database = await databaseName(db);
  const owner = await createOwner("bench");
  const mailboxIds: string[] = [];
  for (let i = 0; i < mailboxCount; i++) mailboxIds.push(await testing.connectMailbox(owner));
  const { token } = await testing.makeApiKey(owner);
  console.info(`[bench] ${database}: ${mailboxCount} mailboxes connected; queueing ${total}`);

  const enqueue = await drive(total, 20, async (i) => {
    const response = await POST(
      testing.sendRequest(
        {
          mailbox: mailboxIds[i % mailboxCount],
          to: [`rcpt-${i}@example.test`],
          subject: `Bench ${i}`,
          text: `Message ${i} of the queue bench.`,
        },
        { token, headers: { prefer: "respond-async" } },
      ),
    );
    if (response.status !== 202) throw new Error(`enqueue answered ${response.status}`);
  });
  console.info(`[bench] queued ${total} at ${enqueue.perSecond.toFixed(0)}/s`);
  await stopQueue();
  await stopAuditSealer();
  await closeDb();

  const child = fileURLToPath(new URL("./queue-app.ts", import.meta.url));
  const demoSettings = {
    issuer: bed.oauth.issuer,
    clientId: bed.oauth.clientId,
    clientSecret: bed.oauth.clientSecret,
    tokenEndpoint: bed.oauth.provider.tokenEndpoint,
    revocationEndpoint: bed.oauth.provider.revocationEndpoint,
    smtp: bed.endpoint,
  };
  let statuses: Record<string, number> = {};
  const startApp = (): ChildProcess => {
    const app = spawn("npx", ["tsx", "--conditions=react-server", child], {
      env: {
        ...process.env,
        BENCH_DEMO: JSON.stringify(demoSettings),
        BENCH_INBOX_DIR: bed.dataDir,
      },
      stdio: ["ignore", "pipe", "inherit"],
      detached: true,
    });
    let buffer = "";
    app.stdout?.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      for (let nl = buffer.indexOf("\n"); nl !== -1; nl = buffer.indexOf("\n")) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        try {
          statuses = (JSON.parse(line) as { statuses: Record<string, number> }).statuses;
        } catch {
          if (line.trim()) console.info(`[app] ${line}`);
        }
      }
    });
    return app;
  };
  const accepted = () => {
    const stats = bed.smtp.stats();
    return Object.values(stats.acceptedByMailbox).reduce((a, b) => a + b, 0);
  };

  const loadBefore = os.loadavg()[0] ?? 0;
  const samples: Sample[] = [];
  const sample = () => samples.push({ at: Date.now(), accepted: accepted() });
  let app = startApp();
  const deadline = Date.now() + ((total / (mailboxCount * perMailboxPerSecond)) * 3 + 300) * 1000;
  while (accepted() < total / 2) {
    if (Date.now() > deadline) throw new Error("the first app process did not reach half-way");
    sample();
    await sleep(200);
  }
  // SIGKILL the whole process group (npx → tsx → node): no clean stop, no final updates.
  if (app.pid) process.kill(-app.pid, "SIGKILL");
  const killedAt = Date.now();
  const acceptedAtKill = accepted();
  sample();
  console.info(`[bench] killed the app at ${acceptedAtKill} accepted; starting it again`);
  app = startApp();
  const restartedAt = Date.now();
  let resumedAt: number | null = null;
  for (;;) {
    sample();
    const count = accepted();
    if (resumedAt === null && count > acceptedAtKill + 5) resumedAt = Date.now();
    const waiting = (statuses.queued ?? 0) + (statuses.retrying ?? 0) + (statuses.sending ?? 0) + 0;
    if (count >= total && (statuses.sent ?? 0) + (statuses.failed ?? 0) >= total && waiting === 0)
      break;
    if (Date.now() > deadline) throw new Error(`timed out at ${count} accepted`);
    await sleep(200);
  }
  const loadAfter = os.loadavg()[0] ?? 0;
  const stopped = new Promise((resolve) => app.once("exit", resolve));
  if (app.pid) process.kill(-app.pid, "SIGTERM");
  await Promise.race([stopped, sleep(15_000)]);

  const stats = bed.smtp.stats();
  const counts = [...stats.acceptedMessageIds.values()];
  const firstAt = stats.firstAcceptedAt ?? 0;
  const lastAt = stats.lastAcceptedAt ?? 0;
  const steadyFrom = firstAt + 5_000;
  const afterFrom = (resumedAt ?? restartedAt) + 5_000;
  const nearEnd = samples.find((s) => s.accepted >= total * 0.97)?.at ?? lastAt;
  const result: RunResult = {
    database,
    messages: total,
    mailboxes: mailboxCount,
    allowedPerSecond: mailboxCount * perMailboxPerSecond,
    enqueuePerSecond: enqueue.perSecond,
    drainBeforeKill: rateBetween(samples, steadyFrom, killedAt),
    drainAfterRestart: rateBetween(samples, afterFrom, nearEnd),
    drainOverall: ((total - 1) * 1000) / Math.max(1, lastAt - firstAt),
    acceptedAtKill,
    restartGapSeconds: ((resumedAt ?? restartedAt) - killedAt) / 1000,
    refusedConcurrent: stats.refusedConcurrent,
    peakConnections: Math.max(0, ...Object.values(stats.peakByMailbox)),
    overRate: stats.overRate,
    acceptedUnique: stats.acceptedMessageIds.size,
    duplicates: counts.filter((n) => n > 1).length,
    finalStatuses: statuses,
    loadAverage: [loadBefore, loadAfter],
    runAt: new Date().toISOString(),
    machine: machine(),
  };
  console.info(JSON.stringify(result, null, 2));
  const key = process.env.DATABASE_URL ? "postgres" : "pglite";
  const stored = storeResult(SCRIPT, key, result);
  writeReadmeSection("queue", table(stored));
  closeAllMailboxTransports();
  await bed.close();
  process.exit(0);
}

function table(results: Record<string, RunResult>): string {
  const rows = Object.values(results).map((r) => {
    const pct = (value: number) => `${((value / r.allowedPerSecond - 1) * 100).toFixed(1)} %`;
    return `| ${r.database} | ${r.messages} / ${r.mailboxes} | ${r.allowedPerSecond} | ${r.drainBeforeKill.toFixed(2)} (${pct(r.drainBeforeKill)}) | ${r.drainAfterRestart.toFixed(2)} (${pct(r.drainAfterRestart)}) | ${r.drainOverall.toFixed(2)} | ${r.acceptedAtKill} · ${r.restartGapSeconds.toFixed(1)} s | ${r.refusedConcurrent} | ${r.peakConnections} | ${r.acceptedUnique} · ${r.duplicates} | ${r.overRate} | ${r.enqueuePerSecond.toFixed(0)} | ${r.loadAverage.map((l) => l.toFixed(2)).join(" → ")} | ${r.runAt.slice(0, 16)} |`;
  });
  return [
    "| Database | Messages / mailboxes | Allowed msg/s | Drain before kill, msg/s | After restart, msg/s | Overall incl. restart | Accepted at kill · gap | 432s | Peak connections | Accepted unique · twice | Over window | Enqueue/s (202) | Load 1 min | Run (UTC) |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...rows,
  ].join("\n");
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
