// Activity page server time: the page's own query functions (loadActivityPage: the keyset read
// plus the batched target labels) for the first page, a filtered page (one action, a date
// range), page 50 (following the "Older" cursor 49 times, then timing the 50th) and a text
// search, at each size in BENCH_SIZES events of one organisation. Baseline in the same run:
// OFFSET paging (order by occurred_at desc, id desc offset 49*50), what a naive page 50 does.
//
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/wt_activity \
//     npx tsx --conditions=react-server bench/audit-page.ts                      # PostgreSQL
//   BENCH_SIZES=10000,100000 npx tsx --conditions=react-server bench/audit-page.ts  # PGlite
//
// Events are bulk-inserted with generate_series, one a second, sealed-looking (seq and a
// placeholder hash: the page never re-hashes, and a healthy log has nothing unsealed). Figures
// go to bench/audit-page.results.json (keyed by database and size) and bench/README.md.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { closeDb, getDb } from "@/db";

const HERE = fileURLToPath(import.meta.url);
const README = path.join(path.dirname(HERE), "README.md");
const RESULTS = path.join(path.dirname(HERE), "audit-page.results.json");
const START = "<!-- audit-page -->";
const END = "<!-- /audit-page -->";
// Pages take 1–3 ms here: a median of 7 moved by a third between runs on this shared machine.
const RUNS = 25;

type Row = { database: string; size: number; case: string; ms: number; baselineMs: number | null };

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

async function time(run: () => Promise<unknown>): Promise<number> {
  await run();
  await run();
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await run();
    samples.push(performance.now() - t0);
  }
  return median(samples);
}

async function main() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-audit-page-"));
  process.env.MAILWARDEN_DATA_DIR = dataDir;
  process.env.DEMO_MODE ??= "true";
  const sizes = (process.env.BENCH_SIZES ?? "10000,1000000").split(",").map(Number);
  const { createOwner } = await import("@/lib/testing/factories");
  const { loadActivityPage } = await import("@/lib/audit/activity");
  const { parseActivityQuery } = await import("@/lib/audit/activity-filter");
  const db = await getDb();
  const database = process.env.DATABASE_URL
    ? (String(
        ((await db.execute(sql`select version() as v`)) as unknown as { rows: { v: string }[] })
          .rows[0]?.v,
      ).split(" on ")[0] ?? "PostgreSQL")
    : "PGlite";
  const rows: Row[] = [];
  try {
    for (const size of sizes) {
      const owner = await createOwner(`bench${size}`);
      const org = owner.orgId;
      const t0 = performance.now();
      const batch = 200_000;
      for (let from = 1; from <= size; from += batch) {
        const to = Math.min(size, from + batch - 1);
        await db.execute(sql`
          insert into audit_events (chain, seq, org_id, occurred_at, actor_type, actor_id, actor_label,
            action, target_type, target_id, outcome, ip, user_agent, metadata, prev_hash, hash)
          select ${org}, g + 1, ${org}, now() - ((${size} - g) * interval '1 second'), 'user',
            'user-' || (g % 10), 'person' || (g % 10) || '@example.test',
            (array['message.sent','message.sent','message.sent','message.failed','member.invited','api_key.created'])[1 + g % 6],
            'mailbox', 'mailbox-' || (g % 20), case when g % 6 = 3 then 'failure'::audit_outcome else 'success'::audit_outcome end,
            '203.0.113.' || (g % 250), 'bench', jsonb_build_object('n', g), md5((g - 1)::text), md5(g::text)
          from generate_series(${from}::int, ${to}::int) as g`);
      }
      await db.execute(sql`analyze audit_events`);
      console.error(`${database} ${size}: inserted in ${Math.round(performance.now() - t0)} ms`);
      const parse = (params: Record<string, string>) => {
        const parsed = parseActivityQuery(params);
        if (!parsed.ok) throw new Error("bad query");
        return parsed.query;
      };
      const all = parse({});
      const day = new Date(Date.now() - 3 * 3600_000).toISOString().slice(0, 10);
      const filtered = parse({
        action: "member.invited",
        from: day,
        to: new Date().toISOString().slice(0, 10),
      });
      const text = parse({ q: "person3@" });
      const page50 = async () => {
        let query = all;
        for (let i = 0; i < 49; i++) {
          const page = await loadActivityPage({ db, chain: org, query });
          if (!page.older) throw new Error("ran out of pages");
          query = { ...all, cursor: page.older, direction: "older" };
        }
        return query;
      };
      const at50 = await page50();
      const offset = (where: ReturnType<typeof sql>) => async () =>
        db.execute(sql`select id, occurred_at, actor_label, action, target_type, target_id, outcome
          from audit_events where chain = ${org} ${where}
          order by occurred_at desc, id desc offset ${49 * 50} limit 50`);
      // Halfway down the log: the cursor a reader paging there would hold, read once.
      const half = Math.floor(size / 2);
      const deepRows =
        (await db.execute(sql`select to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at, id
          from audit_events where chain = ${org} order by occurred_at desc, id desc offset ${half - 1} limit 1`)) as unknown as {
          rows: { at: string; id: number }[];
        };
      const deepCursor = deepRows.rows[0];
      if (!deepCursor) throw new Error("no row halfway");
      const deep = {
        ...all,
        cursor: { at: deepCursor.at, id: Number(deepCursor.id) },
        direction: "older" as const,
      };
      const deepOffset = async () =>
        db.execute(sql`select id, occurred_at, actor_label, action, target_type, target_id, outcome
          from audit_events where chain = ${org}
          order by occurred_at desc, id desc offset ${half} limit 50`);
      const cases: [string, () => Promise<unknown>, (() => Promise<unknown>) | null][] = [
        ["first page", () => loadActivityPage({ db, chain: org, query: all }), null],
        [
          "filtered page (action + date range)",
          () => loadActivityPage({ db, chain: org, query: filtered }),
          null,
        ],
        ["page 50", () => loadActivityPage({ db, chain: org, query: at50 }), offset(sql``)],
        [
          "halfway down the log (events/2 in)",
          () => loadActivityPage({ db, chain: org, query: deep }),
          deepOffset,
        ],
        ["text search, first page", () => loadActivityPage({ db, chain: org, query: text }), null],
      ];
      for (const [name, run, baseline] of cases) {
        const ms = await time(run);
        const baselineMs = baseline ? await time(baseline) : null;
        rows.push({ database, size, case: name, ms, baselineMs });
        console.error(
          `${database} ${size} ${name}: ${ms.toFixed(2)} ms${baselineMs === null ? "" : ` (OFFSET: ${baselineMs.toFixed(2)} ms)`}`,
        );
      }
      await db.execute(sql`delete from audit_events where chain = ${org}`);
    }
  } finally {
    await closeDb();
  }
  const previous = fs.existsSync(RESULTS)
    ? (JSON.parse(fs.readFileSync(RESULTS, "utf8")) as Row[])
    : [];
  const merged = [
    ...previous.filter((p) => !rows.some((r) => r.database === p.database && r.size === p.size)),
    ...rows,
  ];
  fs.writeFileSync(RESULTS, `${JSON.stringify(merged, null, 2)}\n`);
  const table = [
    "| database | events | case | keyset (ms) | OFFSET baseline (ms) |",
    "| --- | ---: | --- | ---: | ---: |",
    ...merged.map(
      (r) =>
        `| ${r.database} | ${r.size.toLocaleString("en")} | ${r.case} | ${r.ms.toFixed(2)} | ${r.baselineMs === null ? "—" : r.baselineMs.toFixed(2)} |`,
    ),
  ].join("\n");
  // The goal, per database: each case at its largest size against the same at its smallest.
  const ratios = [...new Set(merged.map((r) => r.database))].flatMap((database) => {
    const own = merged.filter((r) => r.database === database);
    const sizes = own.map((r) => r.size);
    const [small, large] = [Math.min(...sizes), Math.max(...sizes)];
    if (small === large) return [];
    const at = (size: number, name: string) =>
      own.find((r) => r.size === size && r.case === name)?.ms;
    const cases = [...new Set(own.map((r) => r.case))].map((name) => {
      const [a, b] = [at(small, name), at(large, name)];
      return a && b ? `${name} ${(b / a).toFixed(2)}×` : null;
    });
    return [
      `- ${database}, ${large.toLocaleString("en")} against ${small.toLocaleString("en")} events: ${cases.filter(Boolean).join(", ")}`,
    ];
  });
  const text = fs.readFileSync(README, "utf8");
  const section = `${START}\n## Activity page (\`bench/audit-page.ts\`)\n\nServer time of the activity page's query functions (\`loadActivityPage\`: keyset read on (occurred_at, id) plus the batched target labels), median of ${RUNS} after 2 warm-ups, one organisation holding the given number of events. Baseline: the same rows by OFFSET (bare SQL, no labels) for page 50 and for a page halfway down the log. Goal: each case at 1M within 1.5× of the same at 10k.\n\n${table}\n\n${ratios.join("\n")}\n- Machine: nproc ${os.cpus().length}, Node ${process.version}; run ${new Date().toISOString()}\n${END}`;
  const next = text.includes(START)
    ? text.replace(new RegExp(`${START}[\\s\\S]*?${END}`), section)
    : `${text.trimEnd()}\n\n${section}\n`;
  fs.writeFileSync(README, next);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
