import "server-only";
import fs from "node:fs";
import path from "node:path";
import { sql } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import * as schema from "./schema";

// One place chooses the driver: PGlite in <dataDir>/pglite when DATABASE_URL is unset,
// PostgreSQL otherwise. Opened lazily, once per process, migrated before the first query.

export type Database = PgDatabase<PgQueryResultHKT, typeof schema>;
export type Tx = Parameters<Parameters<Database["transaction"]>[0]>[0];
export type DbOrTx = Database | Tx;

/** Runs `work` in the caller's transaction when given one, else in a new one. */
export function inTransaction<T>(db: DbOrTx, work: (tx: DbOrTx) => Promise<T>): Promise<T> {
  return "rollback" in db ? work(db) : db.transaction(work);
}

export type DbConfig = { databaseUrl?: string; dataDir: string };

export class DatabaseLockedError extends Error {
  constructor(folder: string, pid: number) {
    super(
      `The embedded database in ${folder} is in use by another process (pid ${pid}). ` +
        "PGlite allows one process per data folder: stop that process, or set DATABASE_URL " +
        "to use PostgreSQL.",
    );
    this.name = "DatabaseLockedError";
  }
}

const MIGRATIONS = path.join(process.cwd(), "db", "migrations");

type Handle = { db: Database; close: () => Promise<void>; driver: "pglite" | "postgres" };

// Survives module reloads in `next dev`: a second PGlite on the same folder in one process
// would corrupt it just as a second process would.
const holder = globalThis as typeof globalThis & { __mailwardenDb?: Promise<Handle> };

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Takes an exclusive lock file beside the PGlite folder; a stale lock (dead pid) is taken over. */
export function lockDataFolder(folder: string): () => void {
  const lockPath = `${folder}.lock`;
  fs.mkdirSync(path.dirname(lockPath), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(lockPath, "wx", 0o600);
      fs.writeSync(fd, String(process.pid));
      fs.closeSync(fd);
      const release = () => {
        try {
          if (fs.readFileSync(lockPath, "utf8") === String(process.pid)) fs.unlinkSync(lockPath);
        } catch {
          // already gone
        }
      };
      process.once("exit", release);
      return release;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const pid = Number(fs.readFileSync(lockPath, "utf8"));
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new DatabaseLockedError(folder, pid);
      }
      fs.unlinkSync(lockPath);
    }
  }
  throw new Error(`Could not lock ${folder}`);
}

// `npm run dev` / `npm start` (scripts/run.ts) create and migrate the embedded database in their
// own process while Next.js compiles, then close it. They take the folder before they start the
// server and name themselves in this variable, so the server waits for that hand-over instead
// of refusing the folder; any other holder is still refused at once.
export const HANDOFF_ENV = "MAILWARDEN_DB_HANDOFF_PID";
const HANDOFF_TIMEOUT_MS = 120_000;

function lockHolder(folder: string): number | undefined {
  try {
    return Number(fs.readFileSync(`${folder}.lock`, "utf8"));
  } catch {
    return undefined;
  }
}

async function awaitHandoff(folder: string): Promise<void> {
  const launcher = Number(process.env[HANDOFF_ENV]);
  if (!Number.isInteger(launcher) || launcher <= 0 || launcher === process.pid) return;
  const deadline = Date.now() + HANDOFF_TIMEOUT_MS;
  while (lockHolder(folder) === launcher && isAlive(launcher) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function openPglite(dataDir: string): Promise<Handle> {
  const folder = path.join(dataDir, "pglite");
  await awaitHandoff(folder);
  return openLockedPglite(folder, lockDataFolder(folder));
}

async function openLockedPglite(folder: string, release: () => void): Promise<Handle> {
  try {
    const { PGlite } = await import("@electric-sql/pglite");
    const { drizzle } = await import("drizzle-orm/pglite");
    const { migrate } = await import("drizzle-orm/pglite/migrator");
    const client = await PGlite.create(folder);
    const db = drizzle(client, { schema });
    await migrate(db, { migrationsFolder: MIGRATIONS });
    return {
      db: db as unknown as Database,
      driver: "pglite",
      close: async () => {
        await client.close();
        release();
      },
    };
  } catch (error) {
    release();
    throw error;
  }
}

/**
 * For scripts/run.ts: takes the embedded database's folder now (throws DatabaseLockedError if
 * another process holds it) and resolves once the folder is created, migrated and released.
 */
export function prepareEmbeddedDatabase(dataDir: string): Promise<void> {
  const folder = path.join(dataDir, "pglite");
  const release = lockDataFolder(folder);
  return openLockedPglite(folder, release).then((handle) => handle.close());
}

async function openPostgres(url: string): Promise<Handle> {
  const { Pool } = await import("pg");
  const { drizzle } = await import("drizzle-orm/node-postgres");
  const { migrate } = await import("drizzle-orm/node-postgres/migrator");
  const pool = new Pool({ connectionString: url, max: 10 });
  const db = drizzle(pool, { schema });
  // Several app instances may start at once: one migrates, the others wait.
  const client = await pool.connect();
  try {
    await client.query("select pg_advisory_lock(72173)");
    await migrate(db, { migrationsFolder: MIGRATIONS });
  } finally {
    await client.query("select pg_advisory_unlock(72173)");
    client.release();
  }
  return { db: db as unknown as Database, driver: "postgres", close: () => pool.end() };
}

export function openDatabase(config: DbConfig): Promise<Handle> {
  return config.databaseUrl ? openPostgres(config.databaseUrl) : openPglite(config.dataDir);
}

async function defaultConfig(): Promise<DbConfig> {
  const { env, isBuildPhase } = await import("@/lib/env");
  if (isBuildPhase()) throw new Error("The database is not opened during `next build`.");
  const e = env();
  return { databaseUrl: e.DATABASE_URL, dataDir: e.dataDir };
}

export async function getDb(): Promise<Database> {
  holder.__mailwardenDb ??= defaultConfig().then(openDatabase);
  try {
    return (await holder.__mailwardenDb).db;
  } catch (error) {
    holder.__mailwardenDb = undefined;
    throw error;
  }
}

export async function closeDb(): Promise<void> {
  const handle = holder.__mailwardenDb;
  holder.__mailwardenDb = undefined;
  if (handle) await (await handle).close();
}

export async function pingDb(): Promise<{ ok: boolean; driver?: string }> {
  try {
    await getDb();
    const handle = await holder.__mailwardenDb;
    await handle?.db.execute(sql`select 1`);
    return { ok: true, driver: handle?.driver };
  } catch {
    return { ok: false };
  }
}
