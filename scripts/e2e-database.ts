// The PostgreSQL e2e run (playwright.postgres.config.ts) starts from an empty database: this
// drops and creates the one DATABASE_URL names, through the server's `postgres` database.
import pg from "pg";

const url = new URL(process.env.DATABASE_URL ?? "");
const name = decodeURIComponent(url.pathname.slice(1));
if (!/^[a-z0-9_]+$/.test(name)) {
  console.error(`DATABASE_URL must name a database of [a-z0-9_] to recreate; got "${name}"`);
  process.exit(1);
}
url.pathname = "/postgres";
const client = new pg.Client({ connectionString: url.toString() });
await client.connect();
try {
  await client.query(`drop database if exists ${name} with (force)`);
  await client.query(`create database ${name}`);
  console.info(`e2e database ${name} created anew`);
} finally {
  await client.end();
}
