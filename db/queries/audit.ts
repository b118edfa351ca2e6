import "server-only";
import { and, asc, desc, eq, gt, isNotNull, isNull, lte, type SQL, sql } from "drizzle-orm";
import type { AnyPgColumn } from "drizzle-orm/pg-core";
import type { DbOrTx } from "@/db";
import { auditChainHeads, auditCheckpoints, auditEvents } from "@/db/schema";

/** A timestamp as text to the microsecond, UTC: what the audit MACs cover. */
function exactTime(column: AnyPgColumn): SQL<string> {
  return sql<string>`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
}

// Every stored field of an event as the MAC covers it.
const storedEvent = {
  id: auditEvents.id,
  chain: auditEvents.chain,
  orgId: auditEvents.orgId,
  occurredAt: exactTime(auditEvents.occurredAt),
  actorType: auditEvents.actorType,
  actorId: auditEvents.actorId,
  actorLabel: auditEvents.actorLabel,
  action: auditEvents.action,
  targetType: auditEvents.targetType,
  targetId: auditEvents.targetId,
  outcome: sql<string>`${auditEvents.outcome}::text`,
  ip: auditEvents.ip,
  userAgent: auditEvents.userAgent,
  metadata: sql<string>`${auditEvents.metadata}::text`,
};

export async function listAuditEvents({
  db,
  orgId,
  limit = 100,
}: {
  db: DbOrTx;
  orgId: string;
  limit?: number;
}) {
  // By insertion order: unsealed events have no seq yet, and seal order follows id.
  return db
    .select()
    .from(auditEvents)
    .where(eq(auditEvents.orgId, orgId))
    .orderBy(desc(auditEvents.id))
    .limit(limit);
}

export async function insertAuditEvent({
  db,
  values,
}: {
  db: DbOrTx;
  values: typeof auditEvents.$inferInsert;
}) {
  const [row] = await db.insert(auditEvents).values(values).returning({ id: auditEvents.id });
  if (!row) throw new Error("audit event insert returned no row");
  return row;
}

/**
 * Inserts an event in the same statement as `change` (an UPDATE or INSERT): both or neither,
 * in one round trip. A data-modifying WITH runs to completion whether or not it is read.
 */
export async function insertAuditEventWithChange({
  db,
  values,
  change,
}: {
  db: DbOrTx;
  values: typeof auditEvents.$inferInsert;
  change: SQL;
}) {
  const insert = db.insert(auditEvents).values(values).getSQL();
  await db.execute(sql`with change as (${change}) ${insert}`);
}

/** Serialises sealing of one chain across processes; released when the transaction ends. */
export async function lockAuditChain({ db, chain }: { db: DbOrTx; chain: string }) {
  await db.execute(sql`select pg_advisory_xact_lock(hashtextextended(${`audit:${chain}`}, 0))`);
}

export async function getAuditChainHead({ db, chain }: { db: DbOrTx; chain: string }) {
  const [head] = await db
    .select({ seq: auditChainHeads.seq, hash: auditChainHeads.hash, mac: auditChainHeads.mac })
    .from(auditChainHeads)
    .where(eq(auditChainHeads.chain, chain));
  return head;
}

export async function saveAuditChainHead({
  db,
  head,
}: {
  db: DbOrTx;
  head: typeof auditChainHeads.$inferInsert;
}) {
  await db
    .insert(auditChainHeads)
    .values(head)
    .onConflictDoUpdate({
      target: auditChainHeads.chain,
      set: { seq: head.seq, hash: head.hash, updatedAt: head.updatedAt, mac: head.mac },
    });
}

export async function hasSealedAuditEvents({ db, chain }: { db: DbOrTx; chain: string }) {
  const [row] = await db
    .select({ id: auditEvents.id })
    .from(auditEvents)
    .where(and(eq(auditEvents.chain, chain), isNotNull(auditEvents.seq)))
    .limit(1);
  return row !== undefined;
}

export async function listUnsealedAuditEvents({
  db,
  chain,
  limit,
}: {
  db: DbOrTx;
  chain: string;
  limit: number;
}) {
  return db
    .select(storedEvent)
    .from(auditEvents)
    .where(and(eq(auditEvents.chain, chain), isNull(auditEvents.seq)))
    .orderBy(asc(auditEvents.id))
    .limit(limit);
}

/** One statement per batch; `seq is null` makes sealing a row twice impossible. */
export async function sealAuditEvents({
  db,
  seals,
}: {
  db: DbOrTx;
  seals: { id: number; seq: number; prevHash: string; hash: string }[];
}) {
  if (seals.length === 0) return 0;
  const values = sql.join(
    seals.map((s) => sql`(${s.id}::bigint, ${s.seq}::integer, ${s.prevHash}, ${s.hash})`),
    sql`, `,
  );
  const rows = await db.execute(sql`
    update audit_events as e
    set seq = v.seq, prev_hash = v.prev_hash, hash = v.hash
    from (values ${values}) as v(id, seq, prev_hash, hash)
    where e.id = v.id and e.seq is null
    returning e.id`);
  return rowsOf(rows).length;
}

export async function insertAuditCheckpoints({
  db,
  checkpoints,
}: {
  db: DbOrTx;
  checkpoints: (typeof auditCheckpoints.$inferInsert)[];
}) {
  if (checkpoints.length === 0) return;
  await db.insert(auditCheckpoints).values(checkpoints);
}

export async function listChainsWithUnsealedEvents({ db }: { db: DbOrTx }) {
  const rows = await db
    .selectDistinct({ chain: auditEvents.chain })
    .from(auditEvents)
    .where(isNull(auditEvents.seq));
  return rows.map((r) => r.chain);
}

/** Every chain that has sealed events or a head record. */
export async function listAuditChains({ db }: { db: DbOrTx }) {
  const rows = await db.execute(sql`
    select chain from audit_events where seq is not null
    union select chain from audit_chain_heads
    order by 1`);
  return rowsOf(rows).map((r) => String(r.chain));
}

export async function countSealedAuditEvents({ db, chain }: { db: DbOrTx; chain?: string }) {
  const [row] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(auditEvents)
    .where(
      and(
        isNotNull(auditEvents.seq),
        chain === undefined ? undefined : eq(auditEvents.chain, chain),
      ),
    );
  return row?.n ?? 0;
}

export async function listSealedAuditEvents({
  db,
  chain,
  afterSeq,
  upToSeq,
  limit,
}: {
  db: DbOrTx;
  chain: string;
  afterSeq: number;
  upToSeq?: number;
  limit: number;
}) {
  const rows = await db
    .select({
      ...storedEvent,
      seq: auditEvents.seq,
      prevHash: auditEvents.prevHash,
      hash: auditEvents.hash,
    })
    .from(auditEvents)
    .where(
      and(
        eq(auditEvents.chain, chain),
        gt(auditEvents.seq, afterSeq),
        upToSeq === undefined ? undefined : lte(auditEvents.seq, upToSeq),
      ),
    )
    .orderBy(asc(auditEvents.seq), asc(auditEvents.id))
    .limit(limit);
  // A row an attacker half-nulled is still a row: an empty string never matches a hash.
  return rows.map((r) => ({
    ...r,
    seq: r.seq ?? 0,
    prevHash: r.prevHash ?? "",
    hash: r.hash ?? "",
  }));
}

export async function getSealedAuditEventAfter({
  db,
  chain,
  seq,
}: {
  db: DbOrTx;
  chain: string;
  seq: number;
}) {
  const [row] = await db
    .select({ id: auditEvents.id, seq: auditEvents.seq })
    .from(auditEvents)
    .where(and(eq(auditEvents.chain, chain), gt(auditEvents.seq, seq)))
    .orderBy(asc(auditEvents.seq))
    .limit(1);
  return row;
}

const checkpointColumns = {
  chain: auditCheckpoints.chain,
  seq: auditCheckpoints.seq,
  hash: auditCheckpoints.hash,
  createdAt: exactTime(auditCheckpoints.createdAt),
  mac: auditCheckpoints.mac,
};

export async function getLastVerifiedAuditCheckpoint({ db, chain }: { db: DbOrTx; chain: string }) {
  const [row] = await db
    .select(checkpointColumns)
    .from(auditCheckpoints)
    .where(and(eq(auditCheckpoints.chain, chain), isNotNull(auditCheckpoints.verifiedAt)))
    .orderBy(desc(auditCheckpoints.seq))
    .limit(1);
  return row;
}

export async function listAuditCheckpoints({
  db,
  chain,
  afterSeq,
}: {
  db: DbOrTx;
  chain: string;
  afterSeq: number;
}) {
  return db
    .select(checkpointColumns)
    .from(auditCheckpoints)
    .where(and(eq(auditCheckpoints.chain, chain), gt(auditCheckpoints.seq, afterSeq)))
    .orderBy(asc(auditCheckpoints.seq));
}

export async function markAuditCheckpointVerified({
  db,
  chain,
  seq,
}: {
  db: DbOrTx;
  chain: string;
  seq: number;
}) {
  await db
    .update(auditCheckpoints)
    .set({ verifiedAt: new Date() })
    .where(and(eq(auditCheckpoints.chain, chain), eq(auditCheckpoints.seq, seq)));
}

export async function getUnsealedAuditSummary({ db, chain }: { db: DbOrTx; chain: string }) {
  const [row] = await db
    .select({
      count: sql<number>`count(*)::int`,
      oldest: sql<Date | null>`min(${auditEvents.occurredAt})`.mapWith(auditEvents.occurredAt),
    })
    .from(auditEvents)
    .where(and(eq(auditEvents.chain, chain), isNull(auditEvents.seq)));
  return { count: row?.count ?? 0, oldest: row?.oldest ?? null };
}

function rowsOf(result: unknown): Record<string, unknown>[] {
  // Both drivers answer a raw execute() with { rows }.
  return (result as { rows: Record<string, unknown>[] }).rows;
}
