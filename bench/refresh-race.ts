// Refresh race: N concurrent getAccessToken calls on one mailbox whose access token expired,
// split across two processes, against the real local oidc-provider with refresh-token rotation
// (reusing a rotated refresh token revokes the whole grant). Compared, in the same run, with a
// naive read → refresh → write that has no single-flight, no row lock and no re-check.
//
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//     npx tsx --conditions=react-server bench/refresh-race.ts
//
// Without DATABASE_URL it runs all calls in one process on PGlite (one process per data folder)
// and says so. Only loopback is contacted. Results go to their block of bench/README.md.
// Settings: BENCH_ROUNDS (5), BENCH_CALLS (200), BENCH_PROVIDER_DELAY_MS (100: the counting proxy holds each refresh this long, like a real
// provider's round trip). This same file is the second process when MAILWARDEN_BENCH_WORKER is set.
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface, type Interface } from "node:readline";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { closeDb, getDb } from "@/db";
import { getMailboxWithTokens, updateMailbox } from "@/db/queries/mailboxes";
import { generateKeySpec } from "@/lib/crypto/keyring";
import { MailboxNeedsReconnectError } from "@/lib/oauth/errors";
import { sealGrant } from "@/lib/oauth/grant-columns";
import {
  buildDemoProvider,
  getMailProvider,
  type MailProvider,
  registerMailProvider,
  resetMailProviders,
} from "@/lib/oauth/providers";
import { openMailboxToken } from "@/lib/oauth/sealed";
import { type DemoTestbed, startDemoTestbed } from "@/lib/oauth/testing/demo";
import { connectDemoMailbox, expireAccessToken, readMailbox } from "@/lib/oauth/testing/fixtures";
import { refreshAccessToken } from "@/lib/oauth/token-endpoint";
import { getAccessToken, REFRESH_AHEAD_MS } from "@/lib/oauth/tokens";
import { createOwner } from "@/lib/testing/factories";
import { intSetting, percentile, writeReadmeSection } from "./lib";

type Variant = "mailwarden" | "naive";
type WorkerSettings = {
  issuer: string;
  clientId: string;
  clientSecret: string;
  tokenEndpoint: string;
};
type Command = { variant: Variant; mailboxId: string; calls: number };
type Batch = { latenciesMs: number[]; tokens: string[]; errors: string[] };

const COMMAND =
  "DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npx tsx --conditions=react-server bench/refresh-race.ts";
const BUDGET_MS = 4 * 60 * 1000;
const ROUND_TIMEOUT_MS = 30_000;

/* ------------------------------------------------------------------------------------------ */
/* The naive baseline                                                                          */

class NaiveRefreshError extends Error {
  constructor(readonly code: string) {
    super(`refresh refused: ${code}`);
    this.name = "NaiveRefreshError";
  }
}

/** What many apps do: read the row, refresh if expired, write. No single-flight, lock or re-check. */
async function naiveGetAccessToken(mailboxId: string): Promise<string> {
  const db = await getDb();
  const row = await getMailboxWithTokens({ db, mailboxId });
  if (!row?.refreshTokenEnc) throw new NaiveRefreshError("no_refresh_token");
  if (
    row.accessTokenEnc &&
    row.accessTokenExpiresAt &&
    row.accessTokenExpiresAt.getTime() - Date.now() > REFRESH_AHEAD_MS
  ) {
    return openMailboxToken(row.id, "access_token", row.accessTokenEnc);
  }
  const provider = getMailProvider(row.provider);
  if (!provider) throw new NaiveRefreshError("provider_not_configured");
  const refreshToken = openMailboxToken(row.id, "refresh_token", row.refreshTokenEnc);
  const answer = await refreshAccessToken(provider, refreshToken);
  if (!answer.ok) throw new NaiveRefreshError(errorCode(answer.body, answer.status));
  await updateMailbox({ db, mailboxId, set: sealGrant(row.id, answer.value) });
  return answer.value.accessToken;
}

function errorCode(body: unknown, status: number | null): string {
  const error = (body as { error?: unknown } | null)?.error;
  return typeof error === "string" ? error : `http_${status ?? "network"}`;
}

/* ------------------------------------------------------------------------------------------ */
/* One process's share of a round                                                              */

function describeError(error: unknown): string {
  if (error instanceof MailboxNeedsReconnectError || error instanceof NaiveRefreshError) {
    return `${error.name}: ${error.code}`;
  }
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

async function fire({ variant, mailboxId, calls }: Command): Promise<Batch> {
  const call =
    variant === "mailwarden"
      ? async () => (await getAccessToken(mailboxId)).accessToken
      : () => naiveGetAccessToken(mailboxId);
  const outcomes = await Promise.all(
    Array.from({ length: calls }, async () => {
      const started = performance.now();
      try {
        const token = await call();
        return { ms: performance.now() - started, token };
      } catch (error) {
        return { ms: performance.now() - started, error: describeError(error) };
      }
    }),
  );
  return {
    latenciesMs: outcomes.map((o) => o.ms),
    tokens: [...new Set(outcomes.flatMap((o) => ("token" in o && o.token ? [o.token] : [])))],
    errors: outcomes.flatMap((o) => (o.error ? [o.error] : [])),
  };
}

function registerDemo(settings: WorkerSettings): void {
  registerMailProvider(buildDemoProvider({ ...settings, smtpPort: 2465 }));
}

/** The second process: registers the same provider, then runs each command line it is sent. */
async function worker(settings: WorkerSettings): Promise<void> {
  registerDemo(settings);
  await getDb();
  const lines = createInterface({ input: process.stdin });
  process.stdout.write("ready\n");
  for await (const line of lines) {
    if (!line.trim()) continue;
    const batch = await fire(JSON.parse(line) as Command);
    process.stdout.write(`${JSON.stringify(batch)}\n`);
  }
  await closeDb();
}

type Worker = { run(command: Command): Promise<Batch>; stop(): Promise<void> };

async function startWorker(settings: WorkerSettings): Promise<Worker> {
  const child = spawn(
    process.execPath,
    ["--conditions=react-server", "--import", "tsx", fileURLToPath(import.meta.url)],
    {
      env: { ...process.env, MAILWARDEN_BENCH_WORKER: JSON.stringify(settings) },
      stdio: ["pipe", "pipe", "pipe"],
    },
  ) as ChildProcessWithoutNullStreams;
  childToKill = child;
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const lines: Interface = createInterface({ input: child.stdout });
  const waiting: Array<(line: string) => void> = [];
  lines.on("line", (line) => waiting.shift()?.(line));
  const nextLine = () =>
    Promise.race([
      new Promise<string>((resolve) => waiting.push(resolve)),
      exited.then((code) => {
        throw new Error(`the worker exited (${code}): ${stderr}`);
      }),
    ]);
  if ((await nextLine()) !== "ready") throw new Error(`the worker did not start: ${stderr}`);
  return {
    run: async (command) => {
      const line = nextLine();
      child.stdin.write(`${JSON.stringify(command)}\n`);
      return JSON.parse(await line) as Batch;
    },
    stop: async () => {
      child.stdin.end();
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
      childToKill = null;
    },
  };
}

let childToKill: ChildProcessWithoutNullStreams | null = null;

/* ------------------------------------------------------------------------------------------ */
/* Rounds                                                                                      */

type RoundResult = {
  variant: Variant;
  providerRefreshes: number;
  invalidGrant: number;
  otherErrors: string[];
  okCalls: number;
  distinctTokens: number;
  /** Of those distinct access tokens, how many the provider still calls active afterwards. */
  handedOutActive: number;
  rotatedSaved: boolean;
  grantWorks: boolean;
  finalStatus: string;
  wallMs: number;
  latenciesMs: number[];
};

async function readRefreshToken(mailboxId: string): Promise<string | null> {
  const row = await readMailbox(mailboxId);
  return row.refreshTokenEnc
    ? openMailboxToken(mailboxId, "refresh_token", row.refreshTokenEnc)
    : null;
}

function withTimeout<T>(promise: Promise<T>, label: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${label} took over ${ROUND_TIMEOUT_MS} ms`)),
        ROUND_TIMEOUT_MS,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

async function round(opts: {
  variant: Variant;
  mailboxId: string;
  calls: number;
  testbed: DemoTestbed;
  worker: Worker | null;
  /** The provider without the proxy: the after-round check is not counted as a race refresh. */
  direct: MailProvider;
}): Promise<RoundResult> {
  const { variant, mailboxId, calls, testbed, worker, direct } = opts;
  const oldRefresh = await readRefreshToken(mailboxId);
  await expireAccessToken(mailboxId);
  const before = testbed.proxy.refreshCalls;

  const hereCalls = worker ? Math.ceil(calls / 2) : calls;
  const started = performance.now();
  const there = worker?.run({ variant, mailboxId, calls: calls - hereCalls });
  const [here, other] = await withTimeout(
    Promise.all([fire({ variant, mailboxId, calls: hereCalls }), there]),
    `${variant} round`,
  );
  const wallMs = performance.now() - started;
  const providerRefreshes = testbed.proxy.refreshCalls - before;

  const batches = other ? [here, other] : [here];
  const errors = batches.flatMap((b) => b.errors);
  const invalidGrant = errors.filter((e) => e.endsWith(": invalid_grant")).length;
  const row = await readMailbox(mailboxId);
  const saved = await readRefreshToken(mailboxId);

  // Are the access tokens handed out still good? (Replaying a rotated refresh token revokes
  // the grant, and with it the access tokens already issued from it.)
  let handedOutActive = 0;
  const handedOut = [...new Set(batches.flatMap((b) => b.tokens))];
  for (const token of handedOut) {
    if ((await testbed.introspect(token)).active) handedOutActive++;
  }

  // One more refresh with the saved refresh token, straight at the provider: does the grant live?
  let grantWorks = false;
  if (saved) {
    const answer = await refreshAccessToken(direct, saved);
    grantWorks = answer.ok;
    if (answer.ok && answer.value.refreshToken) {
      // The check itself rotated the token: keep the new one, as getAccessToken would.
      await updateMailbox({
        db: await getDb(),
        mailboxId,
        set: sealGrant(mailboxId, answer.value),
      });
    }
  }

  return {
    variant,
    providerRefreshes,
    invalidGrant,
    otherErrors: errors.filter((e) => !e.endsWith(": invalid_grant")),
    okCalls: batches.reduce((n, b) => n + b.latenciesMs.length - b.errors.length, 0),
    distinctTokens: handedOut.length,
    handedOutActive,
    rotatedSaved: saved !== null && saved !== oldRefresh,
    grantWorks,
    finalStatus: row.status,
    wallMs,
    latenciesMs: batches.flatMap((b) => b.latenciesMs),
  };
}

/* ------------------------------------------------------------------------------------------ */
/* Report                                                                                      */

const ms = (value: number) => `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`;

function summaryRows(results: RoundResult[], callsPerRound: number): string[][] {
  const count = (pick: (r: RoundResult) => boolean) =>
    `${results.filter(pick).length}/${results.length}`;
  const all = results.flatMap((r) => r.latenciesMs);
  const walls = results.map((r) => r.wallMs);
  const otherErrors = results.flatMap((r) => r.otherErrors);
  return [
    ["refreshes at the provider, per round", results.map((r) => r.providerRefreshes).join(", ")],
    [
      "`invalid_grant` answers (all rounds)",
      String(results.reduce((n, r) => n + r.invalidGrant, 0)),
    ],
    [
      "other errors (all rounds)",
      otherErrors.length === 0
        ? "0"
        : `${otherErrors.length} (${[...new Set(otherErrors)].join("; ")})`,
    ],
    [
      "calls that got a token",
      `${results.reduce((n, r) => n + r.okCalls, 0)}/${callsPerRound * results.length}`,
    ],
    [
      "distinct access tokens handed out, per round",
      results.map((r) => r.distinctTokens).join(", "),
    ],
    [
      "handed-out access tokens still active afterwards (introspection)",
      `${results.reduce((n, r) => n + r.handedOutActive, 0)}/${results.reduce((n, r) => n + r.distinctTokens, 0)}`,
    ],
    ["rotated refresh token saved", count((r) => r.rotatedSaved)],
    ["saved refresh token still refreshes afterwards", count((r) => r.grantWorks)],
    ["mailbox status afterwards", [...new Set(results.map((r) => r.finalStatus))].join(", ")],
    [
      "wall time per round, median (min–max)",
      `${ms(percentile(walls, 50))} (${ms(Math.min(...walls))}–${ms(Math.max(...walls))})`,
    ],
    ["latency per call, p50 / p99", `${ms(percentile(all, 50))} / ${ms(percentile(all, 99))}`],
  ];
}

/** Columns padded to one width, as the formatter (biome) lays out Markdown tables. */
function markdownTable(header: string[], rows: string[][]): string {
  const width = (cell: string) => [...cell].length;
  const widths = header.map((h, i) => Math.max(width(h), ...rows.map((r) => width(r[i] ?? ""))));
  const pad = (cell: string, i: number) => cell + " ".repeat((widths[i] ?? 0) - width(cell));
  const line = (cells: string[]) => `| ${cells.map(pad).join(" | ")} |`;
  return [
    line(header),
    `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`,
    ...rows.map(line),
  ].join("\n");
}

async function databaseFacts(twoProcesses: boolean): Promise<string> {
  if (!twoProcesses) {
    const { version } = JSON.parse(
      fs.readFileSync(path.join("node_modules", "@electric-sql", "pglite", "package.json"), "utf8"),
    ) as { version: string };
    return `PGlite ${version} (embedded; one process per data folder, so both halves ran in one process)`;
  }
  const answer = (await (await getDb()).execute(sql`show server_version`)) as unknown as
    | { rows: Array<{ server_version: string }> }
    | Array<{ server_version: string }>;
  const rows = Array.isArray(answer) ? answer : answer.rows;
  return `PostgreSQL ${rows[0]?.server_version ?? "?"} on 127.0.0.1 (pool of 10 connections per process)`;
}

/* ------------------------------------------------------------------------------------------ */
/* Main                                                                                        */

function assertLoopbackDatabase(url: string | undefined): void {
  if (!url) return;
  const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
  if (!["127.0.0.1", "localhost", "::1"].includes(host)) {
    throw new Error(`DATABASE_URL must point at loopback for this benchmark (got ${host})`);
  }
}

async function main(): Promise<number> {
  const rounds = intSetting("BENCH_ROUNDS", 5, 1, 8);
  const calls = intSetting("BENCH_CALLS", 200, 2, 2000);
  const delayMs = intSetting("BENCH_PROVIDER_DELAY_MS", 100, 0, 5000);
  assertLoopbackDatabase(process.env.DATABASE_URL);
  const twoProcesses = Boolean(process.env.DATABASE_URL);

  // Loopback only, and nothing of the developer's own data: in-memory rate limits, a throwaway
  // data folder (PGlite, demo secrets) and a throwaway encryption key shared with the worker.
  for (const name of ["UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN", "REDIS_URL"]) {
    delete process.env[name];
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "mailwarden-bench-"));
  process.env.MAILWARDEN_DATA_DIR = dataDir;
  process.env.TOKEN_ENCRYPTION_KEYS = generateKeySpec("bench");

  let testbed: DemoTestbed | null = null;
  let worker: Worker | null = null;
  try {
    console.log(
      twoProcesses
        ? `Two processes on PostgreSQL: ${calls} calls per round, split ${Math.ceil(calls / 2)} + ${Math.floor(calls / 2)}.`
        : `DATABASE_URL is not set: one process on PGlite (PGlite is one process per folder), ${calls} calls per round.`,
    );
    testbed = await startDemoTestbed();
    testbed.proxy.refreshDelayMs = delayMs;
    registerMailProvider(testbed.provider);
    const direct = buildDemoProvider({
      issuer: testbed.issuer,
      clientId: testbed.clientId,
      clientSecret: testbed.clientSecret,
      smtpPort: 2465,
    });
    await getDb();
    if (twoProcesses) {
      worker = await startWorker({
        issuer: testbed.issuer,
        clientId: testbed.clientId,
        clientSecret: testbed.clientSecret,
        tokenEndpoint: testbed.provider.tokenEndpoint,
      });
    }

    const connect = async (label: string) => {
      const owner = await createOwner(`bench-${label}`);
      const { result } = await connectDemoMailbox(owner, { email: `${label}@example.test` });
      if (result.kind !== "connected") throw new Error(`${label}: not connected (${result.kind})`);
      return result.mailboxId;
    };

    const mailwardenMailbox = await connect("refresh-race-mailwarden");
    const results: RoundResult[] = [];
    for (let r = 1; r <= rounds; r++) {
      // Interleaved, so both variants see the same machine; a fresh mailbox per naive round,
      // because the naive version kills its grant.
      for (const variant of ["mailwarden", "naive"] as const) {
        const mailboxId =
          variant === "mailwarden" ? mailwardenMailbox : await connect(`refresh-race-naive-${r}`);
        const result = await round({ variant, mailboxId, calls, testbed, worker, direct });
        results.push(result);
        console.log(
          `round ${r} ${variant.padEnd(10)} refreshes=${result.providerRefreshes} invalid_grant=${result.invalidGrant} ` +
            `other_errors=${result.otherErrors.length} tokens=${result.distinctTokens} active=${result.handedOutActive} ` +
            `rotated_saved=${result.rotatedSaved} grant_works=${result.grantWorks} ` +
            `wall=${ms(result.wallMs)} p50=${ms(percentile(result.latenciesMs, 50))} p99=${ms(percentile(result.latenciesMs, 99))}`,
        );
      }
    }

    const mine = results.filter((r) => r.variant === "mailwarden");
    const naive = results.filter((r) => r.variant === "naive");
    const left = summaryRows(mine, calls);
    const right = summaryRows(naive, calls);
    const table = markdownTable(
      ["per variant", "Mailwarden `getAccessToken`", "naive read → refresh → write"],
      left.map(([label = "", value = ""], i) => [label, value, right[i]?.[1] ?? ""]),
    );
    const cpu = os.cpus()[0]?.model.trim() ?? "unknown CPU";
    const split = twoProcesses
      ? `${Math.ceil(calls / 2)} in the bench process and ${Math.floor(calls / 2)} in a second (tsx child) process`
      : `all ${calls} in one process`;
    const section = [
      "## Refresh race (`bench/refresh-race.ts`)",
      "",
      `${calls} concurrent \`getAccessToken\` calls on one mailbox whose access token has expired, ${split}, ` +
        "against the real local oidc-provider with `rotateRefreshToken` on (reusing a rotated refresh " +
        "token revokes the whole grant), through a counting proxy in front of its token endpoint. " +
        "Baseline, in the same run: a naive version that reads the row, refreshes if expired and writes " +
        "the result — no single-flight, no row lock, no re-check. " +
        `${rounds} rounds of each, interleaved, with a fresh expiry each round; the Mailwarden rounds ` +
        "reuse one mailbox throughout, each naive round gets a freshly connected mailbox. After each " +
        "round the saved refresh token is tried once more against the provider (not counted above).",
      ...(twoProcesses
        ? []
        : [
            "",
            "**One process only:** DATABASE_URL was not set, and PGlite is one process per data " +
              "folder, so this run does not cover the cross-process case. Run the command below " +
              "against PostgreSQL for that.",
          ]),
      "",
      table,
      "",
      `- Command: \`${twoProcesses ? COMMAND : "npx tsx --conditions=react-server bench/refresh-race.ts"}\``,
      `- Machine: nproc ${os.availableParallelism()} (${cpu}), Node ${process.version}, ${process.platform} ${os.release()}`,
      `- Database: ${await databaseFacts(twoProcesses)}`,
      `- Provider latency: the proxy holds each refresh ${delayMs} ms before forwarding (BENCH_PROVIDER_DELAY_MS), standing in for a real provider's round trip`,
      `- Run: ${new Date().toISOString()}`,
    ].join("\n");

    console.log(`\n${section}\n`);
    writeReadmeSection("refresh-race", section);
    console.log("Written to bench/README.md.");

    const failed = mine.filter(
      (r) =>
        r.providerRefreshes !== 1 ||
        r.invalidGrant > 0 ||
        r.otherErrors.length > 0 ||
        !r.rotatedSaved ||
        !r.grantWorks,
    );
    if (failed.length > 0) {
      console.error(`Mailwarden's getAccessToken missed the goal in ${failed.length} round(s).`);
      return 1;
    }
    return 0;
  } finally {
    await worker?.stop().catch(() => undefined);
    resetMailProviders();
    await closeDb().catch(() => undefined);
    await testbed?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

const workerSettings = process.env.MAILWARDEN_BENCH_WORKER;
if (workerSettings) {
  worker(JSON.parse(workerSettings) as WorkerSettings).catch((error) => {
    process.stderr.write(`${(error as Error).stack ?? error}\n`);
    process.exit(1);
  });
} else {
  // Bounded: whatever hangs, the run ends (and takes its worker with it).
  const watchdog = setTimeout(() => {
    console.error(`refresh-race: gave up after ${BUDGET_MS / 1000} s`);
    childToKill?.kill("SIGKILL");
    process.exit(2);
  }, BUDGET_MS);
  main()
    .then((code) => process.exit(code))
    .catch((error) => {
      console.error(error);
      childToKill?.kill("SIGKILL");
      process.exit(1);
    })
    .finally(() => clearTimeout(watchdog));
}
