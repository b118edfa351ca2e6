// `npm run db:check`: opens the configured database, applies migrations, and reports. Against
// the embedded database it fails with a clear message while the app holds the folder.
import { sql } from "drizzle-orm";
import { openDatabase } from "@/db";
import { organizations } from "@/db/schema";
import { EnvError, env } from "@/lib/env";

async function main() {
  const e = env();
  const handle = await openDatabase({ databaseUrl: e.DATABASE_URL, dataDir: e.dataDir });
  const [row] = await handle.db.select({ n: sql<number>`count(*)::int` }).from(organizations);
  console.info(`database ok (${handle.driver}), organisations: ${row?.n ?? 0}`);
  await handle.close();
}

main().catch((error) => {
  console.error(
    error instanceof EnvError
      ? error.message
      : `database check failed: ${(error as Error).message}`,
  );
  process.exit(1);
});
