// Export throughput and memory: BENCH_EVENTS (1,000,000) events of one organisation exported
// through exportStream (the export route's stream: keyset batches of EXPORT_BATCH rows, 250 for
// CSV and 1,000 for JSON Lines, one batch read per pull; CSV also in batches of 1,000 as before)
// as CSV and as JSON Lines, the bytes read and discarded as a client would. Measures MB/s
// and the peak RSS growth over the RSS before the export (sampled every 20 ms, after a GC when
// --expose-gc is given). Baseline in the same run: load every row, then stringify it all, on
// BENCH_NAIVE_EVENTS (100,000) events so as not to exhaust the machine.
//
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/wt_activity \
//     npx tsx --expose-gc --conditions=react-server bench/audit-export.ts
//
// BENCH_REUSE=1 keeps the seeded events in the database at the end and reuses them in the next
// run (found by their bench user agent and count), so a re-run skips the seeding; use a
// database of its own for it (e.g. wt_<name>_export).
//
// Figures go to bench/audit-export.results.json and bench/README.md.

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { asc, eq, sql } from "drizzle-orm";
import { closeDb, getDb } from "@/db";
import { auditEvents } from "@/db/schema";

const HERE = fileURLToPath(import.meta.url);
const README = path.join(path.dirname(HERE), "README.md");
const RESULTS = path.join(path.dirname(HERE), "audit-export.results.json");
const START = "<!-- audit-export -->";
const END = "<!-- /audit-export -->";

type Row = {
  database: string;
  variant: string;
  events: number;
  mb: number;
  seconds: number;
  mbPerSecond: number;
  peakRssGrowthMb: number;
};

async function measure(run: () => Promise<number>) {
  (globalThis as { gc?: () => void }).gc?.();
  const base = process.memoryUsage().rss;
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  const t0 = performance.now();
  const bytes = await run();
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().rss);
  const mb = bytes / 1e6;
  return { mb, seconds, mbPerSecond: mb / seconds, peakRssGrowthMb: (peak - base) / 1e6 };
}

async function drain(stream: ReadableStream<Uint8Array>): Promise<number> {
  let bytes = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return bytes;
    bytes += value.byteLength;
  }
}

async function insertEvents(org: string, size: number) {
  const db = await getDb();
  for (let from = 1; from <= size; from += 200_000) {
    const to = Math.min(size, from + 200_000 - 1);
    await db.execute(sql`
      insert into audit_events (chain, seq, org_id, occurred_at, actor_type, actor_id, actor_label,
        action, target_type, target_id, outcome, ip, user_agent, metadata, prev_hash, hash)
      select ${org}, g + 1, ${org}, now() - ((${size} - g) * interval '1 second'), 'user',
        'user-' || (g % 10), 'person' || (g % 10) || '@example.test',
        (array['message.sent','message.failed','member.invited'])[1 + g % 3],
        'mailbox', 'mailbox-' || (g % 20), 'success'::audit_outcome,
        '203.0.113.' || (g % 250), ${BENCH_USER_AGENT}, jsonb_build_object('n', g, 'to', 'x@example.test'),
        md5(g::text) || md5(g::text), md5((g + 1)::text) || md5((g + 1)::text)
      from generate_series(${from}::int, ${to}::int) as g`);
  }
}

const BENCH_USER_AGENT = "Mozilla/5.0 (bench)";

/** A chain holding exactly `size` seeded events from an earlier run (BENCH_REUSE), if any. */
async function seededChain(size: number): Promise<string | null> {
  const db = await getDb();
  const answer = (await db.execute(sql`
    select chain from audit_events where user_agent = ${BENCH_USER_AGENT}
    group by chain having count(*) = ${size} limit 1`)) as unknown as {
    rows: Array<{ chain: string }>;
  };
  return answer.rows[0]?.chain ?? null;
}

async function seed(prefix: string, size: number, reuse: boolean): Promise<string> {
  const found = reuse ? await seededChain(size) : null;
  if (found) return found;
  // Imported here: the factories read the environment main() sets first.
  const { createOwner } = await import("@/lib/testing/factories");
  const { orgId } = await createOwner(prefix);
  await insertEvents(orgId, size);
  return orgId;
}

type Measured = Awaited<ReturnType<typeof measure>>;

function measureInChild(format: "csv" | "jsonl", batch: number, events: number): Measured {
  const out = execFileSync(process.execPath, [...process.execArgv, HERE], {
    env: { ...process.env, BENCH_ONLY: `${format}:${batch}:${events}` },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  const line = out.split("\n").find((l) => l.startsWith("RESULT "));
  if (!line) throw new Error(`no result from the ${format} export`);
  return JSON.parse(line.slice("RESULT ".length)) as Measured;
}

/** The child's part: one streamed export of the seeded chain, measured. */
async function only(spec: string) {
  const [format, batch, events] = spec.split(":");
  if ((format !== "csv" && format !== "jsonl") || !batch || !events) throw new Error(spec);
  process.env.MAILWARDEN_DATA_DIR = fs.mkdtempSync(path.join(os.tmpdir(), "bench-audit-export-"));
  const { exportStream } = await import("@/lib/audit/export");
  const db = await getDb();
  try {
    const chain = await seededChain(Number(events));
    if (!chain) throw new Error("no seeded chain");
    const m = await measure(() =>
      drain(
        exportStream({ db, chain, filter: {}, filterParams: {}, format, batch: Number(batch) }),
      ),
    );
    console.info(`RESULT ${JSON.stringify(m)}`);
  } finally {
    await closeDb();
  }
}

async function main() {
  process.env.MAILWARDEN_DATA_DIR = fs.mkdtempSync(path.join(os.tmpdir(), "bench-audit-export-"));
  process.env.DEMO_MODE ??= "true";
  const events = Number(process.env.BENCH_EVENTS ?? 1_000_000);
  const naiveEvents = Number(process.env.BENCH_NAIVE_EVENTS ?? 100_000);
  const reuse = process.env.BENCH_REUSE === "1";
  const { EXPORT_BATCH, toCsv } = await import("@/lib/audit/export");
  const db = await getDb();
  const database = process.env.DATABASE_URL ? "PostgreSQL" : "PGlite";
  const rows: Row[] = [];
  const loadBefore = os.loadavg()[0] ?? 0;
  try {
    const big = await seed("export", events, reuse);
    const small = await seed("naive", naiveEvents, reuse);
    await db.execute(sql`analyze audit_events`);
    // Each streamed export in a fresh process (this script again, BENCH_ONLY set): a heap that
    // an earlier export grew would hide the next one's growth. CSV in batches of 1,000 is how
    // it was read before, for comparison in the same run.
    const runs = [
      { format: "csv", batch: EXPORT_BATCH.csv },
      { format: "jsonl", batch: EXPORT_BATCH.jsonl },
      { format: "csv", batch: 1000 },
    ] as const;
    for (const { format, batch } of runs) {
      const m = measureInChild(format, batch, events);
      const variant = `exportStream ${format}, batches of ${batch.toLocaleString("en")}${batch === EXPORT_BATCH[format] ? "" : " (before)"}`;
      rows.push({ database, variant, events, ...m });
      console.error(rows[rows.length - 1]);
    }
    for (const format of ["csv", "jsonl"] as const) {
      const m = await measure(async () => {
        const all = await db
          .select()
          .from(auditEvents)
          .where(eq(auditEvents.chain, small))
          .orderBy(asc(auditEvents.seq));
        const text =
          format === "csv"
            ? toCsv(
                all.map((r) =>
                  Object.values(r).map((v) =>
                    v instanceof Date
                      ? v.toISOString()
                      : typeof v === "object" && v !== null
                        ? JSON.stringify(v)
                        : (v as string | number | null),
                  ),
                ),
              )
            : all.map((r) => JSON.stringify(r)).join("\n");
        return Buffer.byteLength(text);
      });
      rows.push({ database, variant: `naive load-all ${format}`, events: naiveEvents, ...m });
      console.error(rows[rows.length - 1]);
    }
    if (!reuse) {
      await db.execute(sql`delete from audit_events where chain in (${big}, ${small})`);
    }
  } finally {
    await closeDb();
  }
  const previous = fs.existsSync(RESULTS)
    ? (JSON.parse(fs.readFileSync(RESULTS, "utf8")) as Row[])
    : [];
  const merged = [...previous.filter((p) => p.database !== database), ...rows];
  fs.writeFileSync(RESULTS, `${JSON.stringify(merged, null, 2)}\n`);
  const table = [
    "| database | variant | events | MB | s | MB/s | peak RSS growth (MB) |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ...merged.map(
      (r) =>
        `| ${r.database} | ${r.variant} | ${r.events.toLocaleString("en")} | ${r.mb.toFixed(0)} | ${r.seconds.toFixed(1)} | ${r.mbPerSecond.toFixed(1)} | ${r.peakRssGrowthMb.toFixed(0)} |`,
    ),
  ].join("\n");
  const section = `${START}\n## Activity export (\`bench/audit-export.ts\`)\n\nThe export route's stream (\`exportStream\`, keyset batches of 250 rows for CSV and 1,000 for JSON Lines, one read per pull; CSV in batches of 1,000 as before for comparison) drained as a client would, versus loading every row and stringifying it at once (on fewer events). Goal: peak RSS growth at most 100 MB for 1,000,000 events.\n\n${table}\n\n- Machine: nproc ${os.cpus().length}, Node ${process.version}; 1-minute load average ${loadBefore.toFixed(1)} before, ${(os.loadavg()[0] ?? 0).toFixed(1)} after; run ${new Date().toISOString()}\n${END}`;
  const text = fs.readFileSync(README, "utf8");
  fs.writeFileSync(
    README,
    text.includes(START)
      ? text.replace(new RegExp(`${START}[\\s\\S]*?${END}`), section)
      : `${text.trimEnd()}\n\n${section}\n`,
  );
}

(process.env.BENCH_ONLY ? only(process.env.BENCH_ONLY).then(() => process.exit(0)) : main()).catch(
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
