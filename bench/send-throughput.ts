// Send throughput: BENCH_MESSAGES messages through POST /api/v1/messages (the route handler
// called in-process with real Request objects) versus bare nodemailer, pooled the same way
// (5 connections, XOAUTH2), to the same demo SMTP server, in the same run; on PostgreSQL it also
// counts the database statements per message. What the figures mean: bench/README.md.
//
//   npx tsx --conditions=react-server bench/send-throughput.ts             # PGlite
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> REDIS_URL=redis://127.0.0.1:6379 \
//     npx tsx --conditions=react-server bench/send-throughput.ts           # PostgreSQL (+ Redis)
//
// Settings: BENCH_MESSAGES (2000 per round and path), BENCH_CONCURRENCY (20), BENCH_ROUNDS (3:
// bare and route interleaved, the median round reported), BENCH_HISTORY (20000 earlier messages
// in the database before the first send; 0 for a new, empty one). Loopback only.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { sql } from "drizzle-orm";
import nodemailer from "nodemailer";
import pg from "pg";
import { closeDb, getDb } from "@/db";
import { generateKeySpec } from "@/lib/crypto/keyring";
import {
  databaseName,
  drive,
  intSetting,
  machine,
  medianRun,
  percentile,
  processCpuMs,
  readResults,
  storeResult,
  type Throughput,
  writeReadmeSection,
} from "./lib";

const SCRIPT = "send-throughput";
const WARMUP = 100;
// The machine's database and rate-limit store, by process name (bench/lib.ts processCpuMs).
const SERVICES = { postgres: "postgres", redis: "redis-server" };

type RunResult = {
  database: string;
  rateLimits: string;
  route: Throughput;
  bare: Throughput;
  ratio: number;
  /** CPU time of the bench process per message (SMTP server included), bare and route. */
  cpuMs: { bare: number; route: number };
  /**
   * CPU per message of the machine's PostgreSQL and Redis processes during the route's rounds
   * (null where /proc cannot tell, or on PGlite): they share the machine with the route.
   */
  servicesCpuMs?: { postgres: number; redis: number } | null;
  /** Event-loop utilisation of the bench process during the rounds (1: never idle). */
  eventLoop?: { bare: number; route: number };
  /** Statements sent to PostgreSQL per message through the route (null on PGlite). */
  statementsPerMessage: number | null;
  runAt: string;
  machine: string;
  messages: number;
  concurrency: number;
  /** Interleaved rounds of bare and route; the figures above are their medians. */
  rounds?: number;
  ratios?: number[];
  /** Earlier messages in the database before the first send (absent: none). */
  history?: number;
  /** The 1-minute load average before and after the rounds. */
  loadAverage?: [number, number];
};

// Every statement node-postgres sends goes through Client#query (the pool's included).
let statements = 0;
const query = pg.Client.prototype.query;
pg.Client.prototype.query = function counted(this: pg.Client, ...args: unknown[]) {
  statements++;
  return (query as (...a: unknown[]) => unknown).apply(this, args);
} as typeof query;

function fmt(stats: Throughput): string {
  return `${stats.perSecond.toFixed(0)} msg/s · p50 ${stats.p50.toFixed(1)} ms · p99 ${stats.p99.toFixed(1)} ms · ${stats.seconds.toFixed(1)} s`;
}

async function main() {
  const messages = intSetting("BENCH_MESSAGES", 2000);
  const concurrency = intSetting("BENCH_CONCURRENCY", 20);
  const rounds = intSetting("BENCH_ROUNDS", 3, 1, 15);
  const history = intSetting("BENCH_HISTORY", 20_000, 0, 1_000_000);
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
    const database = await databaseName(db);
    const limiterBackend = rateLimits().backend;

    // A database that has been in use: another organisation's earlier messages, analysed as
    // autovacuum would within a minute. On a new, empty database PostgreSQL plans each prepared
    // statement for empty tables, and a connection keeps that plan until the next analyse,
    // which autovacuum does not get to within the bench's rounds: every round would run on the
    // plans of an empty database while the tables grow (the rounds fell 0.48 → 0.33 that way).
    if (history > 0) {
      const earlier = await createOwner("history");
      await db.execute(sql`insert into messages
          (id, org_id, sender_type, sender_id, recipients, recipient_count, subject, status)
        select gen_random_uuid()::text, ${earlier.orgId}, 'api_key', 'history',
          '{"to":["rcpt@example.test"],"cc":[],"bcc":[]}'::jsonb, 1, 'Earlier', 'sent'
        from generate_series(1, ${history})`);
      await db.execute(sql`analyze`);
    }
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
    // Rounds of bare and route, interleaved, so that a burst of other work on the shared
    // machine weighs on both; the median round of each is reported.
    const bareRounds: Array<Throughput & { cpuMs: number; elu: number }> = [];
    const routeRounds: Array<Throughput & { cpuMs: number; elu: number }> = [];
    const ratios: number[] = [];
    const loadBefore = os.loadavg()[0] ?? 0;
    const servicesRounds: Array<{ postgres: number; redis: number } | null> = [];
    let routeStatements = 0;
    for (let round = 0; round < rounds; round++) {
      const cpu0 = process.cpuUsage();
      const elu0 = performance.eventLoopUtilization();
      const bareRound = await drive(messages, concurrency, viaBare);
      const cpuBare = process.cpuUsage(cpu0);
      bareRounds.push({
        ...bareRound,
        cpuMs: (cpuBare.user + cpuBare.system) / 1000 / messages,
        elu: performance.eventLoopUtilization(elu0).utilization,
      });
      console.info(`round ${round + 1} bare nodemailer: ${fmt(bareRound)}`);
      const before = statements;
      const services0 = process.env.DATABASE_URL ? processCpuMs(SERVICES) : null;
      const cpu1 = process.cpuUsage();
      const elu1 = performance.eventLoopUtilization();
      const routeRound = await drive(messages, concurrency, viaRoute);
      const cpuRoute = process.cpuUsage(cpu1);
      const services1 = services0 && processCpuMs(SERVICES);
      servicesRounds.push(
        services0 && services1
          ? {
              postgres: (services1.postgres - services0.postgres) / messages,
              redis: (services1.redis - services0.redis) / messages,
            }
          : null,
      );
      routeRounds.push({
        ...routeRound,
        cpuMs: (cpuRoute.user + cpuRoute.system) / 1000 / messages,
        elu: performance.eventLoopUtilization(elu1).utilization,
      });
      // The sealer's work for these messages belongs to them too: wait until it is done.
      await waitForSealing(db, owner.orgId);
      routeStatements += statements - before;
      console.info(`round ${round + 1} through the route: ${fmt(routeRound)}`);
      ratios.push(routeRound.perSecond / bareRound.perSecond);
    }
    const loadAfter = os.loadavg()[0] ?? 0;
    const bareStats = medianRun(bareRounds);
    const routeStats = medianRun(routeRounds);
    const median = (values: number[]) => percentile(values, 50);
    const bareCpuMs = median(bareRounds.map((r) => r.cpuMs));
    const routeCpuMs = median(routeRounds.map((r) => r.cpuMs));
    console.info(
      `CPU of this process per message: bare ${bareCpuMs.toFixed(2)} ms, route ${routeCpuMs.toFixed(2)} ms`,
    );
    const eventLoop = {
      bare: median(bareRounds.map((r) => r.elu)),
      route: median(routeRounds.map((r) => r.elu)),
    };
    console.info(
      `event-loop utilisation: bare ${eventLoop.bare.toFixed(2)}, route ${eventLoop.route.toFixed(2)}`,
    );
    const measured = servicesRounds.filter((r) => r !== null);
    const servicesCpuMs =
      measured.length === rounds
        ? {
            postgres: median(measured.map((r) => r.postgres)),
            redis: median(measured.map((r) => r.redis)),
          }
        : null;
    if (servicesCpuMs) {
      console.info(
        `CPU of this machine's PostgreSQL and Redis per message through the route: ${servicesCpuMs.postgres.toFixed(2)} ms, ${servicesCpuMs.redis.toFixed(2)} ms`,
      );
    }
    const statementsPerMessage = process.env.DATABASE_URL
      ? routeStatements / (messages * rounds)
      : null;
    if (statementsPerMessage !== null) {
      console.info(`statements per message: ${statementsPerMessage.toFixed(2)}`);
    }
    const ratio = median(ratios);
    console.info(`ratio per round: ${ratios.map((r) => r.toFixed(2)).join(", ")}`);
    console.info(`ratio (median round): ${ratio.toFixed(2)} of bare nodemailer`);

    const inbox = await bed.inboxCount();
    const expected = 2 * (messages * rounds + WARMUP);
    if (inbox !== expected) throw new Error(`inbox holds ${inbox} messages, expected ${expected}`);

    bare.close();
    const result: RunResult = {
      database,
      rateLimits: limiterBackend,
      route: routeStats,
      bare: bareStats,
      ratio,
      statementsPerMessage,
      cpuMs: { bare: bareCpuMs, route: routeCpuMs },
      servicesCpuMs,
      eventLoop,
      rounds,
      ratios,
      history,
      loadAverage: [loadBefore, loadAfter],
      runAt: new Date().toISOString(),
      machine: machine(),
      messages,
      concurrency,
    };
    const stored = storeResult(
      SCRIPT,
      database.startsWith("PGlite") ? "pglite" : "postgres",
      result,
    );
    renderReadme(stored);
  } finally {
    closeAllMailboxTransports();
    await restoreLimits();
    await bed.close();
    await closeDb();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

async function waitForSealing(db: Awaited<ReturnType<typeof getDb>>, chain: string) {
  for (let i = 0; i < 200; i++) {
    const answer = (await db.execute(
      sql`select count(*)::int as n from audit_events where seq is null and chain = ${chain}`,
    )) as unknown as { rows: Array<{ n: number }> };
    if ((answer.rows[0]?.n ?? 0) === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function renderReadme(stored: Record<string, RunResult>) {
  const rows = Object.values(stored).flatMap((r) => [
    `| ${r.database} | bare nodemailer (pooled, 5 connections) | ${r.bare.perSecond.toFixed(0)} | ${r.bare.p50.toFixed(1)} | ${r.bare.p99.toFixed(1)} | — | — |`,
    `| ${r.database} | \`POST /api/v1/messages\` (rate limits: ${r.rateLimits}) | ${r.route.perSecond.toFixed(0)} | ${r.route.p50.toFixed(1)} | ${r.route.p99.toFixed(1)} | ${r.statementsPerMessage === null || r.statementsPerMessage === undefined ? "—" : r.statementsPerMessage.toFixed(2)} | **${r.ratio.toFixed(2)}** |`,
  ]);
  const runs = Object.values(stored).map(
    (r) =>
      `- ${r.database}: ${r.rounds ? `${r.rounds} interleaved rounds of ${r.messages} messages per path, median round shown (ratio per round: ${(r.ratios ?? []).map((x) => x.toFixed(2)).join(", ")})` : `${r.messages} messages each`}, concurrency ${r.concurrency}; ${r.history ? `${r.history} earlier messages in the database` : "a new, empty database"}; CPU of the bench process per message ${r.cpuMs ? `${r.cpuMs.bare.toFixed(2)} ms bare, ${r.cpuMs.route.toFixed(2)} ms through the route` : "not measured"}; ${r.servicesCpuMs ? `CPU of the machine's PostgreSQL ${r.servicesCpuMs.postgres.toFixed(2)} ms and Redis ${r.servicesCpuMs.redis.toFixed(2)} ms per message through the route; ` : ""}${r.eventLoop ? `event-loop utilisation ${r.eventLoop.bare.toFixed(2)} bare, ${r.eventLoop.route.toFixed(2)} through the route; ` : ""}${r.loadAverage ? `1-minute load average ${r.loadAverage[0].toFixed(1)} before, ${r.loadAverage[1].toFixed(1)} after; ` : ""}${r.machine}, run ${r.runAt}`,
  );
  writeReadmeSection(
    SCRIPT,
    [
      "| database | path | messages/s | p50 ms | p99 ms | statements / message | ratio |",
      "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
      ...rows,
      "",
      ...runs,
    ].join("\n"),
  );
}

if (process.argv.includes("--render")) {
  renderReadme(readResults<RunResult>(SCRIPT));
  process.exit(0);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
