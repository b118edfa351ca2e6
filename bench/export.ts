// Subject export: the streamed export of one person with BENCH_EVENTS audit events and
// BENCH_MESSAGES messages (half sent by them, half addressed to them), versus a naive export in
// the same run (read every list whole, build one object, JSON.stringify it). Measures time,
// throughput and the peak growth of the process's memory (RSS, and V8 heap + external + array
// buffers) over what it used before, sampled every 5 ms.
//
//   npx tsx --conditions=react-server bench/export.ts                                  # PGlite
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/wt_privacy \
//     npx tsx --conditions=react-server bench/export.ts                                # PostgreSQL
//
// Each run stores its figures in bench/export.results.json (keyed by database) and rewrites the
// section between the <!-- export --> markers of bench/README.md.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { closeDb, getDb } from "@/db";

const HERE = fileURLToPath(import.meta.url);
const README = path.join(path.dirname(HERE), "README.md");
const RESULTS = path.join(path.dirname(HERE), "export.results.json");
const START = "<!-- export -->";
const END = "<!-- /export -->";
const MB = 1024 * 1024;

type Measure = { seconds: number; bytes: number; peakRssMb: number; peakHeapMb: number };
type RunResult = {
  database: string;
  events: number;
  messages: number;
  streamed: Measure;
  naive: Measure;
  runAt: string;
  machine: string;
};

function intSetting(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  return Number.isInteger(value) && value > 0 ? value : fallback;
}

function heapNow() {
  const m = process.memoryUsage();
  return m.heapUsed + m.external + m.arrayBuffers;
}

function settle() {
  (globalThis as { gc?: () => void }).gc?.();
}

/** Runs `work`, sampling memory meanwhile; growth is over what was in use just before. */
async function measure(work: () => Promise<number>): Promise<Measure> {
  settle();
  const rss0 = process.memoryUsage().rss;
  const heap0 = heapNow();
  let peakRss = rss0;
  let peakHeap = heap0;
  const sample = () => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    peakHeap = Math.max(peakHeap, heapNow());
  };
  const timer = setInterval(sample, 5);
  const started = performance.now();
  const bytes = await work();
  const seconds = (performance.now() - started) / 1000;
  sample();
  clearInterval(timer);
  return {
    seconds,
    bytes,
    peakRssMb: (peakRss - rss0) / MB,
    peakHeapMb: (peakHeap - heap0) / MB,
  };
}

async function main() {
  const events = intSetting("BENCH_EVENTS", 100_000);
  const messageCount = intSetting("BENCH_MESSAGES", 100_000);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "mailwarden-bench-"));
  process.env.MAILWARDEN_DATA_DIR = dataDir;
  // Imported after the environment is set: env() is read once.
  const { exportStream, subjectExport } = await import("@/lib/privacy/export");
  const q = await import("@/db/queries/privacy");
  const { createOwner, createUser, joinOrganization } = await import("@/lib/testing/factories");
  try {
    const db = await getDb();
    const version = (await db.execute(sql`show server_version`)) as unknown as {
      rows: Array<{ server_version?: string }>;
    };
    const database = process.env.DATABASE_URL
      ? `PostgreSQL ${version.rows[0]?.server_version ?? ""}`.trim()
      : "PGlite (embedded, in-process)";
    const owner = await createOwner("bench-owner");
    const person = await createUser("bench-person");
    await joinOrganization({
      orgId: owner.orgId,
      inviterId: owner.user.id,
      user: person,
      role: "admin",
    });
    const email = person.email ?? "";
    const orgId = owner.orgId;

    const seedStarted = performance.now();
    // Plain inserts, as the sealer would find them: the export reads sealed and pending alike.
    await db.execute(sql`
      insert into audit_events (chain, org_id, occurred_at, actor_type, actor_id, actor_label,
        action, target_type, target_id, outcome, ip, user_agent, metadata, personal)
      select ${orgId}, ${orgId}, now() - (i || ' seconds')::interval, 'user', ${person.id}, ${email},
        'message.sent', 'message', 'm-' || i, 'success', '203.0.113.7',
        'Mozilla/5.0 (X11; Linux x86_64) bench', jsonb_build_object('mailboxId', 'box', 'recipientCount', 2, 'purpose', 'api', 'smtpResponse', '250 2.0.0 OK queued as ' || md5(i::text)),
        '{}'::jsonb
      from generate_series(1, ${events}) as i`);
    const half = Math.floor(messageCount / 2);
    await db.execute(sql`
      insert into messages (id, org_id, sender_type, sender_id, recipients, recipient_count, subject,
        status, smtp_response, created_at, sent_at)
      select gen_random_uuid()::text, ${orgId}, 'user',
        case when i <= ${half} then ${person.id}::text else ${owner.user.id}::text end,
        case when i <= ${half}
          then jsonb_build_object('to', jsonb_build_array('customer-' || i || '@example.test'), 'cc', '[]'::jsonb, 'bcc', '[]'::jsonb)
          else jsonb_build_object('to', jsonb_build_array(${email}::text), 'cc', jsonb_build_array('other-' || i || '@example.test'), 'bcc', '[]'::jsonb) end,
        2, 'Invoice ' || i || ' for your order', 'sent', '250 2.0.0 OK', now(), now()
      from generate_series(1, ${messageCount}) as i`);
    // As autovacuum would after a bulk load: planner statistics for the new rows.
    await db.execute(sql`analyze audit_events`);
    await db.execute(sql`analyze messages`);
    const seedSeconds = (performance.now() - seedStarted) / 1000;
    console.error(
      `seeded ${events} events and ${messageCount} messages in ${seedSeconds.toFixed(1)} s`,
    );

    const scope = {
      kind: "organization" as const,
      orgId,
      orgName: "Bench",
      email,
      userId: person.id,
    };
    const streamed = await measure(async () => {
      const reader = exportStream(subjectExport(db, scope)).getReader();
      let bytes = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        bytes += value.byteLength;
      }
      return bytes;
    });
    console.error(`streamed: ${JSON.stringify(streamed)}`);
    const naive = await measure(async () => {
      const all = 10_000_000;
      const document = {
        schemaVersion: 1,
        profile: await q.getUserProfile({ db, userId: person.id }),
        memberships: await q.listMembershipsWithOrg({ db, userId: person.id }),
        sessions: await q.listSessionMetadata({ db, userId: person.id }),
        organizations: [
          {
            orgId,
            mailboxes: await q.listSubjectMailboxes({ db, orgId, userId: person.id, email }),
            apiKeys: await q.listSubjectApiKeys({ db, orgId, userId: person.id }),
            messagesSent: await q.listMessagesSentBy({
              db,
              orgId,
              userId: person.id,
              after: "",
              limit: all,
            }),
            messagesAddressed: await q.listMessagesAddressedTo({
              db,
              orgId,
              email,
              after: "",
              limit: all,
            }),
            auditEvents: await q.listAuditEventsOfSubject({
              db,
              orgId,
              userId: person.id,
              email,
              afterId: 0,
              limit: all,
            }),
          },
        ],
      };
      return Buffer.byteLength(JSON.stringify(document));
    });
    console.error(`naive: ${JSON.stringify(naive)}`);

    const result: RunResult = {
      database,
      events,
      messages: messageCount,
      streamed,
      naive,
      runAt: new Date().toISOString(),
      machine: `nproc ${os.cpus().length} (${os.cpus()[0]?.model.trim() ?? "unknown"}), Node ${process.version}`,
    };
    writeResults(result);
  } finally {
    await closeDb();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

function row(label: string, m: Measure) {
  const mb = m.bytes / MB;
  return `| ${label} | ${m.seconds.toFixed(1)} s | ${mb.toFixed(1)} MB | ${(mb / m.seconds).toFixed(1)} MB/s | ${m.peakRssMb.toFixed(0)} MB | ${m.peakHeapMb.toFixed(0)} MB |`;
}

function writeResults(result: RunResult) {
  const stored: Record<string, RunResult> = fs.existsSync(RESULTS)
    ? (JSON.parse(fs.readFileSync(RESULTS, "utf8")) as Record<string, RunResult>)
    : {};
  stored[result.database] = result;
  fs.writeFileSync(RESULTS, `${JSON.stringify(stored, null, 2)}\n`);
  const runs = Object.values(stored);
  const lines = [
    START,
    "## Subject export (`bench/export.ts`)",
    "",
    "The export of one person holding 100,000 audit events (as actor, with IP, user agent and metadata) and 100,000 messages (50,000 they sent, 50,000 addressed to them), in the organisation's scope, read to the end through the same `ReadableStream` the route returns. Baseline, in the same run: the naive export that reads every list whole, builds one object and calls `JSON.stringify`. Memory is the peak growth over what the process used just before (sampled every 5 ms, after a GC): RSS, and V8 heap + external + array buffers. Goal: the streamed export's growth under 100 MB.",
    "",
    "| database | export | time | size | throughput | peak RSS growth | peak heap growth |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ...runs.flatMap((r) => [
      row(`${r.database} | streamed (keyset batches of 1,000)`, r.streamed),
      row(`${r.database} | naive (whole object, then stringify)`, r.naive),
    ]),
    "",
    "Reading it: the streamed export holds one batch of rows and one 64 KB chunk at a time, and reads the next batch only when the client reads, so its memory does not grow with the person's history; the naive one holds every row as an object and then the whole document as one string. On PGlite the database runs inside the same process, so its own buffers count in the RSS figure too.",
    "",
    ...runs.map(
      (r) =>
        `- ${r.database}: ${r.events} events, ${r.messages} messages; ${r.machine}; run ${r.runAt}`,
    ),
    "- Commands: `node --expose-gc --import tsx --conditions=react-server bench/export.ts` (PGlite) and the same with `DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db>` (PostgreSQL).",
    END,
  ];
  const readme = fs.readFileSync(README, "utf8");
  const section = lines.join("\n");
  const next = readme.includes(START)
    ? readme.replace(new RegExp(`${START}[\\s\\S]*?${END}`), section)
    : `${readme.trimEnd()}\n\n${section}\n`;
  fs.writeFileSync(README, next);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
