import "server-only";
import {
  and,
  asc,
  desc,
  eq,
  gt,
  inArray,
  isNotNull,
  isNull,
  lte,
  Param,
  type SQL,
  sql,
} from "drizzle-orm";
import type { AnyPgColumn } from "drizzle-orm/pg-core";
import type { DbOrTx } from "@/db";
import { preparedSql, type StatementPart } from "@/db/prepared";
import {
  auditChainAnchors,
  auditChainHeads,
  auditCheckpoints,
  auditEvents,
  organizations,
} from "@/db/schema";
import { mentionsAddress } from "./address-match";

/**
 * A timestamp as text to the microsecond, UTC: what the audit MACs cover. to_char drops the
 * era, so a year before Christ is marked: without it, moving an event from 2026 to 2026 BC kept
 * its MAC. Years AD read as they always did, so every existing MAC still holds.
 */
export function exactTime(value: AnyPgColumn | SQL): SQL<string> {
  return sql<string>`(to_char(${value} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || case when ${value} < '0001-01-01 00:00:00+00' then ' BC' else '' end)`;
}

// Every stored field of an event as the MAC covers it.
export const storedEvent = {
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
  personal: sql<string>`${auditEvents.personal}::text`,
  personalMac: auditEvents.personalMac,
  personalErasedAt: sql<
    string | null
  >`case when ${auditEvents.personalErasedAt} is null then null else ${exactTime(auditEvents.personalErasedAt)} end`,
  personalErasedMac: auditEvents.personalErasedMac,
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

export type AuditEventColumn = keyof typeof auditEvents.$inferInsert;

/** `insert into audit_events (columns) select <each column's value> <rest>`. */
export function auditEventsInsert(
  columns: AuditEventColumn[],
  valueFor: (column: AuditEventColumn) => SQL | Param,
  rest: SQL,
): SQL {
  return sql`insert into ${auditEvents} (${sql.join(
    columns.map((c) => sql.identifier(auditEvents[c].name)),
    sql`, `,
  )}) select ${sql.join(columns.map(valueFor), sql`, `)} ${rest}`;
}

/**
 * Inserts an event in the same statement as `change` (an UPDATE or INSERT without RETURNING),
 * in one round trip, and only when `change` touched a row: a change whose WHERE no longer
 * matches (a stale worker's outcome) writes neither the event nor `also`, which is given that
 * condition to add to its own. A data-modifying WITH runs to completion whether or not it is
 * read. Returns whether the event was written and how many rows `also` wrote.
 */
export async function insertAuditEventWithChange({
  db,
  name,
  values,
  change,
  also,
}: {
  db: DbOrTx;
  /** One name per combination of parts: the statement is prepared under it (db/prepared.ts). */
  name: string;
  values: typeof auditEvents.$inferInsert;
  change: StatementPart;
  also?: StatementPart;
}): Promise<{ isWritten: boolean; also: number }> {
  // Every event carries the same columns (lib/audit/write.ts), so the text is one per name.
  const columns = Object.keys(values) as Array<keyof typeof values>;
  const statement = preparedSql(db, name, () => {
    // INSERT … SELECT (a VALUES row cannot be conditional): each parameter is encoded as its
    // column encodes it and takes the column's type from the assignment.
    const insert = auditEventsInsert(
      columns,
      (c) => new Param(sql.placeholder(`audit_${c}`), auditEvents[c]),
      sql`where exists (select 1 from change)`,
    );
    if (!also)
      return sql`with change as (${change.build(db)} returning 1) ${insert} returning 0 as "also"`;
    const onlyIf = sql`exists (select 1 from change)`;
    return sql`with change as (${change.build(db)} returning 1),
      also as (${also.build(db, onlyIf)} returning 1)
      ${insert} returning (select count(*)::int from also) as "also"`;
  });
  const result = (await statement.execute({
    ...change.params,
    ...also?.params,
    ...Object.fromEntries(columns.map((c) => [`audit_${c}`, values[c]])),
  })) as { rows?: Array<{ also?: number }> };
  const row = result.rows?.[0];
  return { isWritten: row !== undefined, also: Number(row?.also ?? 0) };
}

/** The metadata of the newest event of this action about one target of the organisation. */
export async function getLatestAuditEventMetadata({
  db,
  orgId,
  action,
  target,
}: {
  db: DbOrTx;
  orgId: string;
  action: string;
  target: { type: string; id: string };
}) {
  const [row] = await db
    .select({ metadata: auditEvents.metadata })
    .from(auditEvents)
    .where(
      and(
        eq(auditEvents.chain, orgId),
        eq(auditEvents.targetType, target.type),
        eq(auditEvents.targetId, target.id),
        eq(auditEvents.action, action),
      ),
    )
    .orderBy(desc(auditEvents.occurredAt), desc(auditEvents.id))
    .limit(1);
  return row?.metadata ?? null;
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
  seals: { id: number; seq: number; prevHash: string; hash: string; personalMac: string }[];
}) {
  if (seals.length === 0) return 0;
  const values = sql.join(
    seals.map(
      (s) => sql`(${s.id}::bigint, ${s.seq}::integer, ${s.prevHash}, ${s.hash}, ${s.personalMac})`,
    ),
    sql`, `,
  );
  const rows = await db.execute(sql`
    update audit_events as e
    set seq = v.seq, prev_hash = v.prev_hash, hash = v.hash, personal_mac = v.personal_mac
    from (values ${values}) as v(id, seq, prev_hash, hash, personal_mac)
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

/** The chains with unsealed events and no head record: new ones, or ones the sealer refuses. */
export async function listHeadlessPendingChains({ db }: { db: DbOrTx }): Promise<string[]> {
  const rows = await db
    .selectDistinct({ chain: auditEvents.chain })
    .from(auditEvents)
    .where(
      and(
        isNull(auditEvents.seq),
        sql`not exists (select 1 from ${auditChainHeads} h where h.chain = ${auditEvents.chain})`,
      ),
    );
  return rows.map((r) => r.chain);
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

/**
 * How long ago, by the database's clock, the chain's oldest unsealed event happened and its
 * organisation was created (null: none pending, or the chain '' / an organisation gone). What
 * the sealer asks before starting a chain from genesis (lib/audit/seal.ts).
 */
export async function getAuditChainAges({ db, chain }: { db: DbOrTx; chain: string }) {
  const [row] = await db
    .select({
      pendingMs: sql<
        number | null
      >`(extract(epoch from now() - min(${auditEvents.occurredAt})) * 1000)::float8`,
      organizationMs: sql<
        number | null
      >`(select (extract(epoch from now() - ${organizations.createdAt}) * 1000)::float8
        from ${organizations} where ${organizations.id}::text = ${chain})`,
    })
    .from(auditEvents)
    .where(and(eq(auditEvents.chain, chain), isNull(auditEvents.seq)));
  const number = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return { pendingMs: number(row?.pendingMs), organizationMs: number(row?.organizationMs) };
}

export async function getAuditChainAnchor({ db, chain }: { db: DbOrTx; chain: string }) {
  const [row] = await db
    .select({
      chain: auditChainAnchors.chain,
      seq: auditChainAnchors.seq,
      hash: auditChainAnchors.hash,
      purgedAt: exactTime(auditChainAnchors.purgedAt),
      mac: auditChainAnchors.mac,
    })
    .from(auditChainAnchors)
    .where(eq(auditChainAnchors.chain, chain));
  return row;
}

/**
 * The newest sealed event a purge of everything before `before` may remove: the one just below
 * the first sealed event at or after `before`, so no newer event goes with the old ones.
 */
export async function findAuditPurgeCut({
  db,
  chain,
  before,
}: {
  db: DbOrTx;
  chain: string;
  before: Date;
}) {
  const rows = await db.execute(sql`
    select seq, hash from audit_events
    where chain = ${chain} and seq is not null and seq < coalesce(
      (select min(seq) from audit_events
       where chain = ${chain} and seq is not null and occurred_at >= ${before.toISOString()}::timestamptz),
      2147483647)
    order by seq desc limit 1`);
  const row = rowsOf(rows)[0];
  return row ? { seq: Number(row.seq), hash: String(row.hash) } : undefined;
}

/** Deletes a chain's sealed events and checkpoints up to `seq` and records the anchor there. */
export async function purgeAuditEventsThrough({
  db,
  anchor,
}: {
  db: DbOrTx;
  anchor: typeof auditChainAnchors.$inferInsert;
}) {
  const deleted = await db
    .delete(auditEvents)
    .where(and(eq(auditEvents.chain, anchor.chain), lte(auditEvents.seq, anchor.seq)))
    .returning({ id: auditEvents.id });
  await db
    .delete(auditCheckpoints)
    .where(and(eq(auditCheckpoints.chain, anchor.chain), lte(auditCheckpoints.seq, anchor.seq)));
  await db
    .insert(auditChainAnchors)
    .values(anchor)
    .onConflictDoUpdate({
      target: auditChainAnchors.chain,
      set: { seq: anchor.seq, hash: anchor.hash, purgedAt: anchor.purgedAt, mac: anchor.mac },
    });
  return deleted.length;
}

function rowsOf(result: unknown): Record<string, unknown>[] {
  // Both drivers answer a raw execute() with { rows }.
  return (result as { rows: Record<string, unknown>[] }).rows;
}

// ---- Replacing personal fields (erasure, retention) ----

/** Sealed events of a chain that name a person: as actor (id or label) or anywhere in `personal`. */
export async function listAuditEventsNaming({
  db,
  chain,
  userId,
  email,
  afterId,
  limit,
}: {
  db: DbOrTx;
  chain: string;
  userId: string | null;
  email: string;
  afterId: number;
  limit: number;
}) {
  return db
    .select({
      id: auditEvents.id,
      actorId: auditEvents.actorId,
      actorLabel: auditEvents.actorLabel,
      ip: auditEvents.ip,
      userAgent: auditEvents.userAgent,
      personal: auditEvents.personal,
    })
    .from(auditEvents)
    .where(
      and(
        eq(auditEvents.chain, chain),
        gt(auditEvents.id, afterId),
        isNotNull(auditEvents.seq),
        sql`(${userId === null ? sql`false` : sql`${auditEvents.actorId} = ${userId}`}
          or ${mentionsAddress(sql`${auditEvents.actorLabel}`, email)}
          or ${mentionsAddress(sql`${auditEvents.personal}::text`, email)})`,
      ),
    )
    .orderBy(asc(auditEvents.id))
    .limit(limit);
}

/**
 * Sealed events by id, every field as the MACs cover it, locked until commit: what erasure and
 * retention check before replacing their personal fields.
 */
export async function lockStoredAuditEvents({ db, ids }: { db: DbOrTx; ids: number[] }) {
  if (ids.length === 0) return [];
  return db
    .select({ ...storedEvent, seq: auditEvents.seq })
    .from(auditEvents)
    .where(and(inArray(auditEvents.id, ids), isNotNull(auditEvents.seq)))
    .orderBy(asc(auditEvents.seq))
    .for("update");
}

/**
 * Replaces the personal fields of sealed events and marks them erased at `erasedAt`; returns the
 * fields as stored (jsonb's text form, the time to the microsecond), which the erasure MAC covers.
 */
export async function replaceAuditPersonalFields({
  db,
  erasedAt,
  rows,
}: {
  db: DbOrTx;
  erasedAt: Date;
  rows: {
    id: number;
    actorLabel: string | null;
    ip: string | null;
    userAgent: string | null;
    personal: Record<string, unknown>;
  }[];
}) {
  if (rows.length === 0) return [];
  const values = sql.join(
    rows.map(
      (r) =>
        sql`(${r.id}::bigint, ${r.actorLabel}::text, ${r.ip}::text, ${r.userAgent}::text, ${JSON.stringify(r.personal)}::jsonb)`,
    ),
    sql`, `,
  );
  const result = await db.execute(sql`
    update audit_events as e
    set actor_label = v.actor_label, ip = v.ip, user_agent = v.user_agent,
      personal = v.personal, personal_erased_at = ${erasedAt}, personal_erased_mac = null
    from (values ${values}) as v(id, actor_label, ip, user_agent, personal)
    where e.id = v.id and e.seq is not null
    returning e.id, e.actor_label, e.ip, e.user_agent, e.personal::text as personal,
      e.personal_mac,
      ${exactTime(sql`e.personal_erased_at`)} as erased_at`);
  return rowsOf(result).map((r) => ({
    id: Number(r.id),
    actorLabel: (r.actor_label as string | null) ?? null,
    ip: (r.ip as string | null) ?? null,
    userAgent: (r.user_agent as string | null) ?? null,
    personal: String(r.personal),
    personalMac: (r.personal_mac as string | null) ?? null,
    personalErasedAt: String(r.erased_at),
  }));
}

export async function setAuditErasureMacs({
  db,
  macs,
}: {
  db: DbOrTx;
  macs: { id: number; mac: string }[];
}) {
  if (macs.length === 0) return;
  const values = sql.join(
    macs.map((m) => sql`(${m.id}::bigint, ${m.mac}::text)`),
    sql`, `,
  );
  await db.execute(sql`
    update audit_events as e set personal_erased_mac = v.mac
    from (values ${values}) as v(id, mac) where e.id = v.id`);
}

/**
 * The oldest sealed events of a chain that occurred before `before` and still hold an IP address
 * or user agent (the partial index `audit_events_network_kept_idx` holds only those).
 */
export async function listAuditEventsWithNetworkFields({
  db,
  chain,
  before,
  limit,
}: {
  db: DbOrTx;
  chain: string;
  before: Date;
  limit: number;
}) {
  return db
    .select({
      id: auditEvents.id,
      actorLabel: auditEvents.actorLabel,
      ip: auditEvents.ip,
      userAgent: auditEvents.userAgent,
      personal: auditEvents.personal,
    })
    .from(auditEvents)
    .where(
      and(
        eq(auditEvents.chain, chain),
        sql`${auditEvents.occurredAt} < ${before}`,
        sql`(${auditEvents.ip} is not null or ${auditEvents.userAgent} is not null)`,
        isNotNull(auditEvents.seq),
      ),
    )
    .orderBy(asc(auditEvents.occurredAt), asc(auditEvents.id))
    .limit(limit);
}
