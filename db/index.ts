import "server-only";
import path from "node:path";
import { sql } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { awaitHandoff, lockDataFolder, pgliteFolder } from "./lock";
import * as schema from "./schema";

export { DatabaseLockedError, HANDOFF_ENV, lockDataFolder, pgliteFolder } from "./lock";

// One place chooses the driver: PGlite in <dataDir>/pglite when DATABASE_URL is unset,
// PostgreSQL otherwise. Opened lazily, once per process, migrated before the first query.

export type Database = PgDatabase<PgQueryResultHKT, typeof schema>;
export type Tx = Parameters<Parameters<Database["transaction"]>[0]>[0];
export type DbOrTx = Database | Tx;

/** Runs `work` in the caller's transaction when given one, else in a new one. */
export function inTransaction<T>(db: DbOrTx, work: (tx: DbOrTx) => Promise<T>): Promise<T> {
  return "rollback" in db ? work(db) : db.transaction(work);
}

/** PostgreSQL's SQLSTATE of an error, also through drizzle's wrapper (its `cause`). */
export function sqlState(error: unknown): string | null {
  for (let e = error, depth = 0; e && typeof e === "object" && depth < 3; depth++) {
    const code = (e as { code?: unknown }).code;
    // Five digits and capitals with a digit among them: Node's own codes (EPIPE) are not one.
    if (typeof code === "string" && /^(?=.*\d)[0-9A-Z]{5}$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}

/**
 * Runs `work` (a whole transaction) again when PostgreSQL ended it as a deadlock's victim
 * (40P01): a transaction that locks many rows of an organisation (erasure) against the send
 * path's grouped statements, which lock several rows each (db/grouped.ts).
 */
export async function retryingDeadlocks<T>(work: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (attempt >= attempts || sqlState(error) !== "40P01") throw error;
    }
  }
}

export type DbConfig = { databaseUrl?: string; dataDir: string };

const MIGRATIONS = path.join(process.cwd(), "db", "migrations");

type Handle = { db: Database; close: () => Promise<void>; driver: "pglite" | "postgres" };

// Survives module reloads in `next dev`: a second PGlite on the same folder in one process
// would corrupt it just as a second process would.
const holder = globalThis as typeof globalThis & { __mailwardenDb?: Promise<Handle> };

async function openPglite(dataDir: string): Promise<Handle> {
  const folder = pgliteFolder(dataDir);
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
 * For scripts/run.ts, which took the folder with lockDataFolder: creates and migrates the
 * embedded database, closes it and releases the folder.
 */
export async function prepareEmbeddedDatabase(dataDir: string, release: () => void) {
  const handle = await openLockedPglite(pgliteFolder(dataDir), release);
  await handle.close();
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

/** The process's database if something has already opened it; never opens one itself. */
export async function openedDb(): Promise<Database | undefined> {
  const handle = holder.__mailwardenDb;
  if (!handle) return undefined;
  try {
    return (await handle).db;
  } catch {
    return undefined;
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

// Names of the run locks this process holds: PGlite is one process (its folder is locked), and
// on PostgreSQL a second run in this process would otherwise wait on nothing.
const heldRunLocks = new Set<string>();

/**
 * Runs `work` while no other run named `name` runs, in this process or (on PostgreSQL) any
 * other; returns null without running it when one does. On PostgreSQL the lock is a
 * session-level advisory lock on a connection set aside for the run, so it outlives the
 * transactions `work` commits one batch at a time, and dies with the process.
 */
export async function withRunLock<T>(
  db: Database,
  name: string,
  work: () => Promise<T>,
): Promise<T | null> {
  if (heldRunLocks.has(name)) return null;
  heldRunLocks.add(name);
  try {
    const { Pool } = await import("pg");
    const client = (db as unknown as { $client: unknown }).$client;
    if (!(client instanceof Pool)) return await work();
    const connection = await client.connect();
    try {
      const result = await connection.query<{ locked: boolean }>(
        "select pg_try_advisory_lock(hashtextextended($1, 0)) as locked",
        [name],
      );
      if (!result.rows[0]?.locked) return null;
      try {
        return await work();
      } finally {
        await connection.query("select pg_advisory_unlock(hashtextextended($1, 0))", [name]);
      }
    } finally {
      connection.release();
    }
  } finally {
    heldRunLocks.delete(name);
  }
}
