// Helpers every benchmark shares: settings from the environment, timing and percentiles, the
// machine description, stored results, and the writer of a script's section of bench/README.md.
// Each script writes only the block between its own markers; the prose that reads the figures
// lives in bench/README.md around those blocks.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import type { DbOrTx } from "@/db";

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const README = path.join(BENCH_DIR, "README.md");

/** An integer setting from the environment; out of range or not an integer is an error. */
export function intSetting(name: string, fallback: number, min = 1, max = 10_000_000): number {
  const raw = process.env[name];
  const value = raw === undefined || raw === "" ? fallback : Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max}`);
  }
  return value;
}

/** The p-th percentile (nearest rank) of the values, in any order; NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

export type Throughput = {
  count: number;
  seconds: number;
  perSecond: number;
  p50: number;
  p99: number;
};

/** Runs `total` jobs on `concurrency` workers: wall time, rate and per-job latency. */
export async function drive(
  total: number,
  concurrency: number,
  job: (i: number) => Promise<unknown>,
): Promise<Throughput> {
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
  return {
    count: total,
    seconds,
    perSecond: total / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}

/** The run with the median rate. */
export function medianRun<T extends { perSecond: number }>(runs: readonly T[]): T {
  const sorted = [...runs].sort((a, b) => a.perSecond - b.perSecond);
  const middle = sorted[Math.floor(sorted.length / 2)];
  if (!middle) throw new Error("no runs");
  return middle;
}

/**
 * CPU time (ms) used so far by this machine's processes, summed per key of `names` (a process
 * counts for a key when its name starts with the key's value), read from Linux /proc in one
 * pass with the clock tick taken as 100 Hz; null where /proc cannot tell (another system).
 */
export function processCpuMs<K extends string>(names: Record<K, string>): Record<K, number> | null {
  const keys = Object.keys(names) as K[];
  const totals = Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
  let pids: string[];
  try {
    pids = fs.readdirSync("/proc").filter((pid) => /^\d+$/.test(pid));
  } catch {
    return null;
  }
  for (const pid of pids) {
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      continue; // ended meanwhile
    }
    const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const key = keys.find((k) => name.startsWith(names[k]));
    if (key === undefined) continue;
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    totals[key] += (Number(fields[11]) + Number(fields[12])) * 10; // utime + stime, in ticks
  }
  return totals;
}

export function machine(): string {
  const cpu = os.cpus()[0]?.model.trim() ?? "unknown CPU";
  return `nproc ${os.cpus().length} (${cpu}), Node ${process.version}`;
}

/** The database the figures come from, as the README names it. */
export async function databaseName(db: DbOrTx): Promise<string> {
  const version = (await db.execute(sql`show server_version`)) as unknown as {
    rows: Array<{ server_version?: string }>;
  };
  return process.env.DATABASE_URL
    ? `PostgreSQL ${version.rows[0]?.server_version ?? ""}`.trim()
    : "PGlite (embedded, in-process)";
}

/** Results of one script, stored per database ("pglite" / "postgres") beside the script. */
export function storeResult<T>(script: string, key: string, result: T): Record<string, T> {
  const file = path.join(BENCH_DIR, `${script}.results.json`);
  const stored: Record<string, T> = fs.existsSync(file)
    ? JSON.parse(fs.readFileSync(file, "utf8"))
    : {};
  stored[key] = result;
  fs.writeFileSync(file, `${JSON.stringify(stored, null, 2)}\n`);
  return stored;
}

export function readResults<T>(script: string): Record<string, T> {
  const file = path.join(BENCH_DIR, `${script}.results.json`);
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")) : {};
}

/**
 * Replaces the block between `<!-- name -->` and `<!-- /name -->` in bench/README.md (appends
 * it when missing). The file is read right before writing, since other scripts write theirs,
 * and then formatted by Biome, which pads Markdown tables.
 */
export function writeReadmeSection(name: string, body: string): void {
  const start = `<!-- ${name} -->`;
  const end = `<!-- /${name} -->`;
  const block = `${start}\n${body}\n${end}`;
  const current = fs.existsSync(README) ? fs.readFileSync(README, "utf8") : "# Benchmarks\n";
  const from = current.indexOf(start);
  const to = current.indexOf(end, from);
  const next =
    from !== -1 && to !== -1
      ? `${current.slice(0, from)}${block}${current.slice(to + end.length)}`
      : `${current.trimEnd()}\n\n${block}\n`;
  fs.writeFileSync(README, next);
  execFileSync("npx", ["biome", "format", "--write", README], { stdio: "ignore" });
}
