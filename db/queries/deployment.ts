import "server-only";
import { gte, sql } from "drizzle-orm";
import type { DbOrTx } from "@/db";
import { encryptionKeys, instances } from "@/db/schema";

// The deployment as a whole, not one organisation's: which processes are alive and when each
// encryption key was first loaded. Neither holds anything of an organisation.

export async function recordInstanceHeartbeat({
  db,
  id,
  host,
  pid,
  startedAt,
  now,
}: {
  db: DbOrTx;
  id: string;
  host: string;
  pid: number;
  startedAt: Date;
  now: Date;
}) {
  await db
    .insert(instances)
    .values({ id, host, pid, startedAt, lastSeenAt: now })
    .onConflictDoUpdate({ target: instances.id, set: { lastSeenAt: now } });
}

export async function countInstancesSeenSince({ db, since }: { db: DbOrTx; since: Date }) {
  const [row] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(instances)
    .where(gte(instances.lastSeenAt, since));
  return Number(row?.n ?? 0);
}

/** Notes each key id the first time any process loads it; later loads change nothing. */
export async function recordEncryptionKeysSeen({ db, ids }: { db: DbOrTx; ids: string[] }) {
  if (ids.length === 0) return;
  await db
    .insert(encryptionKeys)
    .values(ids.map((id) => ({ id })))
    .onConflictDoNothing();
}

export async function listEncryptionKeysSeen({ db }: { db: DbOrTx }) {
  return db
    .select({ id: encryptionKeys.id, firstSeenAt: encryptionKeys.firstSeenAt })
    .from(encryptionKeys);
}
