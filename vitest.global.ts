import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";

// One data folder per run (PGlite); on PostgreSQL, clean schemas (the app's, drizzle's and the
// job queue's) so that migrations and the queue's own schema creation are tested from scratch.
export default async function setup() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailwarden-test-"));
  process.env.MAILWARDEN_DATA_DIR = dir;
  if (process.env.DATABASE_URL) {
    const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await client.connect();
    await client.query(
      "drop schema if exists public cascade; drop schema if exists drizzle cascade; drop schema if exists pgboss cascade; create schema public;",
    );
    await client.end();
  }
  return () => fs.rmSync(dir, { recursive: true, force: true });
}
