// Revoke every mailbox: BENCH_MAILBOXES (1,000) demo mailboxes, each connected for real through
// the local oidc-provider, revoked by the revoke-all job in a child process that is killed
// (SIGKILL) half-way; a second child process takes the job over once the lease has expired and
// finishes it. A counting proxy in front of the provider's revocation endpoint records every
// token it was asked to revoke, so a mailbox revoked twice would show; afterwards every issued
// access and refresh token is introspected at the provider.
//
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/wt_console \
//     npx tsx --conditions=react-server bench/revoke-all.ts
//
// PostgreSQL only (two processes share the database). Writes bench/revoke-all.results.json (the
// figures and a result per mailbox) and the section between the <!-- revoke-all --> markers of
// bench/README.md. Settings: BENCH_MAILBOXES (1000), BENCH_LEASE_MS (2000).

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { closeDb, getDb } from "@/db";
import { countItemResults, getJob, listJobItems } from "@/db/queries/jobs";
import { stopAuditSealer } from "@/lib/audit/sealer";
import { useRateLimits } from "@/lib/mail/testing";
import { buildDemoProvider, registerMailProvider } from "@/lib/oauth/providers";
import { startDemoTestbed } from "@/lib/oauth/testing/demo";
import { connectDemoMailbox } from "@/lib/oauth/testing/fixtures";
import { createOwner } from "@/lib/testing/factories";

const HERE = fileURLToPath(import.meta.url);
const README = path.join(path.dirname(HERE), "README.md");
const RESULTS = path.join(path.dirname(HERE), "revoke-all.results.json");
const START = "<!-- revoke-all -->";
const END = "<!-- /revoke-all -->";

type WorkerSettings = {
  issuer: string;
  clientId: string;
  clientSecret: string;
  tokenEndpoint: string;
  revocationEndpoint: string;
  jobId: string;
  leaseMs: number;
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function intSetting(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  return Number.isInteger(value) && value > 0 ? value : fallback;
}

async function pool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>) {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
    }),
  );
}

// ---- The child: takes the job (now, or once the dead process's lease expired) and runs it ----

async function worker() {
  const s = JSON.parse(process.env.BENCH_REVOKE_WORKER ?? "{}") as WorkerSettings;
  registerMailProvider(
    buildDemoProvider({
      issuer: s.issuer,
      clientId: s.clientId,
      clientSecret: s.clientSecret,
      smtpPort: 2465,
      tokenEndpoint: s.tokenEndpoint,
      revocationEndpoint: s.revocationEndpoint,
    }),
  );
  const { runJob } = await import("@/lib/jobs");
  const db = await getDb();
  process.stdout.write("ready\n");
  for (;;) {
    const job = await runJob(db, s.jobId, { leaseMs: s.leaseMs });
    if (job) {
      process.stdout.write(`${JSON.stringify({ status: job.status })}\n`);
      break;
    }
    await sleep(100);
  }
  await stopAuditSealer();
  await closeDb();
  process.exit(0);
}

/** The child, and when it was ready to work (tsx compiles the app's modules at start-up). */
function startWorker(settings: WorkerSettings): { child: ChildProcess; ready: Promise<number> } {
  // node itself (not npx) runs the child, so that SIGKILL reaches the process doing the work.
  const child = spawn(
    process.execPath,
    ["--conditions=react-server", "--import", "tsx", HERE, "worker"],
    {
      env: { ...process.env, BENCH_REVOKE_WORKER: JSON.stringify(settings) },
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const ready = new Promise<number>((resolve) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      if (line === "ready") resolve(performance.now());
    });
  });
  return { child, ready };
}

// ---- The bench ----

async function main() {
  if (!process.env.DATABASE_URL) {
    throw new Error("set DATABASE_URL to a PostgreSQL database: two processes share the job");
  }
  const total = intSetting("BENCH_MAILBOXES", 1000);
  const leaseMs = intSetting("BENCH_LEASE_MS", 2000);
  const testbed = await startDemoTestbed();
  registerMailProvider(testbed.provider);
  const plenty = { tokens: 1_000_000, window: "1 m" };
  const restoreLimits = useRateLimits({ oauthStart: plenty, oauthCallback: plenty });
  const db = await getDb();
  const owner = await createOwner("bench-revoke");

  const setupStarted = performance.now();
  const indexes = Array.from({ length: total }, (_, i) => i);
  await pool(indexes, 8, async (i) => {
    const { result } = await connectDemoMailbox(owner, { email: `bench-${i}@example.test` });
    if (result.kind !== "connected") throw new Error(`mailbox ${i} not connected: ${result.kind}`);
  });
  const setupMs = performance.now() - setupStarted;
  const issued = [...testbed.proxy.issued];
  console.info(`${total} mailboxes connected in ${(setupMs / 1000).toFixed(1)} s`);
  const tokens = issued.flatMap((t) => [
    t.accessToken,
    ...(t.refreshToken ? [t.refreshToken] : []),
  ]);
  const countActive = async () => {
    let active = 0;
    await pool(tokens, 16, async (token) => {
      if ((await testbed.introspect(token)).active) active++;
    });
    return active;
  };
  // The "after" figure means something only if the tokens were alive before.
  const activeBefore = await countActive();

  const { startRevokeAll } = await import("@/lib/jobs/revoke-all");
  const job = await startRevokeAll({
    db,
    ctx: {
      orgId: owner.orgId,
      actor: { type: "user", id: owner.user.id, label: "bench/revoke-all" },
      role: "owner",
      request: { ip: null, userAgent: "bench" },
      allowedMailboxIds: null,
    },
    reason: "benchmark",
  });
  const settings: WorkerSettings = {
    issuer: testbed.issuer,
    clientId: testbed.clientId,
    clientSecret: testbed.clientSecret,
    tokenEndpoint: testbed.provider.tokenEndpoint,
    revocationEndpoint: `${testbed.proxy.url}/token/revocation`,
    jobId: job.id,
    leaseMs,
  };
  const finished = async () =>
    (await countItemResults({ db, jobId: job.id })).reduce((n, c) => n + c.count, 0);

  const started = performance.now();
  const first = startWorker(settings);
  const firstReady = await first.ready;
  while ((await finished()) < total / 2) await sleep(20);
  first.child.kill("SIGKILL");
  await new Promise((resolve) => first.child.once("exit", resolve));
  const killedAt = performance.now();
  const killedAfterMs = killedAt - started;
  const finishedAtKill = await finished();
  const callsAtKill = testbed.proxy.revocationCalls;
  console.info(`killed the first process after ${finishedAtKill} mailboxes`);

  const second = startWorker(settings);
  const secondReady = await second.ready;
  const secondExit = await new Promise<number | null>((resolve) =>
    second.child.once("exit", resolve),
  );
  const totalMs = performance.now() - started;
  // Revoking only: the first process from ready to the kill, the second from ready to the end
  // (its wait for the dead process's lease included).
  const workingMs = killedAt - firstReady + (performance.now() - secondReady);
  if (secondExit !== 0) throw new Error(`second process failed (${secondExit})`);

  const finalJob = await getJob({ db, jobId: job.id });
  const counts = await countItemResults({ db, jobId: job.id });
  const items = await listJobItems({ db, jobId: job.id });
  const repeated = [...testbed.proxy.revokedTokens.values()].filter((n) => n > 1).length;

  const stillActive = await countActive();

  const figures = {
    mailboxes: total,
    concurrency: 8,
    leaseMs,
    setupSeconds: Number((setupMs / 1000).toFixed(1)),
    totalSeconds: Number((totalMs / 1000).toFixed(2)),
    workingSeconds: Number((workingMs / 1000).toFixed(2)),
    startupSeconds: Number(((firstReady - started + (secondReady - killedAt)) / 1000).toFixed(2)),
    killedAfterSeconds: Number((killedAfterMs / 1000).toFixed(2)),
    finishedAtKill,
    revocationCallsAtKill: callsAtKill,
    revocationCalls: testbed.proxy.revocationCalls,
    tokensRevokedMoreThanOnce: repeated,
    jobStatus: finalJob?.status ?? "missing",
    results: Object.fromEntries(counts.map((c) => [c.result, c.count])),
    tokensIntrospected: tokens.length,
    tokensActiveBefore: activeBefore,
    tokensStillActive: stillActive,
    machine: `nproc ${os.availableParallelism()} (${os.cpus()[0]?.model.trim().split(" ").slice(0, 2).join(" ") ?? "?"}), Node ${process.version}`,
    database: postgresVersion(),
    runAt: new Date().toISOString(),
  };
  console.info(JSON.stringify(figures, null, 2));
  fs.writeFileSync(
    RESULTS,
    `${JSON.stringify(
      { ...figures, perMailbox: items.map((i) => ({ mailbox: i.label, result: i.result })) },
      null,
      1,
    )}\n`,
  );
  writeReadme(figures);

  await restoreLimits();
  await testbed.close();
  await stopAuditSealer();
  await closeDb();
}

function postgresVersion(): string {
  try {
    return execFileSync("psql", [process.env.DATABASE_URL ?? "", "-Atc", "show server_version"], {
      encoding: "utf8",
    }).trim();
  } catch {
    return "PostgreSQL";
  }
}

function writeReadme(f: {
  mailboxes: number;
  concurrency: number;
  leaseMs: number;
  totalSeconds: number;
  workingSeconds: number;
  startupSeconds: number;
  killedAfterSeconds: number;
  finishedAtKill: number;
  revocationCalls: number;
  revocationCallsAtKill: number;
  tokensRevokedMoreThanOnce: number;
  jobStatus: string;
  results: Record<string, number>;
  tokensIntrospected: number;
  tokensActiveBefore: number;
  tokensStillActive: number;
  setupSeconds: number;
  machine: string;
  database: string;
  runAt: string;
}) {
  const section = `${START}
## Revoke every mailbox (\`bench/revoke-all.ts\`)

${f.mailboxes.toLocaleString("en")} demo mailboxes of one organisation, each connected for real through the local oidc-provider (setup, not timed: ${f.setupSeconds} s), revoked by the revoke-all job (${f.concurrency} at a time) in a child process that is killed with SIGKILL once half the mailboxes are done; a second child process takes the job over when the first one's lease (${f.leaseMs / 1000} s) has expired and finishes it. A counting proxy in front of the provider's revocation endpoint records each token it is asked to revoke. Goal: under 30 s.

| figure                                                        | value |
| ------------------------------------------------------------- | ----: |
| total time, first process started → job done (kill, lease wait and restart included) | **${f.totalSeconds} s** |
| of which the two processes' start-ups (tsx compiling the app)  | ${f.startupSeconds} s |
| revoking, both processes (the wait for the lease included)    | ${f.workingSeconds} s |
| first process killed after                                    | ${f.killedAfterSeconds} s (${f.finishedAtKill} mailboxes finished) |
| revocation requests at the provider                           | ${f.revocationCalls} (${f.revocationCallsAtKill} before the kill) |
| tokens the provider was asked to revoke more than once        | ${f.tokensRevokedMoreThanOnce} |
| job status                                                    | ${f.jobStatus} |
| result per mailbox                                            | ${Object.entries(f.results)
    .map(([k, v]) => `${k}: ${v}`)
    .join(", ")} |
| issued access and refresh tokens active before (introspection) | ${f.tokensActiveBefore} / ${f.tokensIntrospected} |
| issued access and refresh tokens still active after           | ${f.tokensStillActive} / ${f.tokensIntrospected} |

The result of every mailbox is in \`bench/revoke-all.results.json\`.

- Command: \`DATABASE_URL=postgres://postgres@127.0.0.1:5432/wt_console npx tsx --conditions=react-server bench/revoke-all.ts\`
- Machine: ${f.machine}; database: PostgreSQL ${f.database} on 127.0.0.1
- Run: ${f.runAt}
${END}`;
  const readme = fs.readFileSync(README, "utf8");
  const at = readme.indexOf(START);
  const end = readme.indexOf(END);
  const next =
    at >= 0 && end > at
      ? `${readme.slice(0, at)}${section}${readme.slice(end + END.length)}`
      : `${readme.trimEnd()}\n\n${section}\n`;
  fs.writeFileSync(README, next);
}

const run = process.argv[2] === "worker" ? worker : main;
run().catch((error) => {
  console.error(error);
  process.exit(1);
});
