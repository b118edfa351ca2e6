import "server-only";
import type { AnyColumn } from "drizzle-orm";
import {
  and,
  asc,
  desc,
  eq,
  gt,
  ilike,
  inArray,
  isNotNull,
  isNull,
  or,
  type SQL,
  sql,
} from "drizzle-orm";
import type { DbOrTx } from "@/db";
import {
  apiKeys,
  auditEvents,
  invitations,
  mailboxes,
  memberships,
  organizations,
  users,
} from "@/db/schema";
import { exactTime, storedEvent } from "./audit";

// The activity page and exports. Every read names one chain (an organisation's id, or '' for
// events without one), and every list is keyset-paged on (occurred_at, id) so that a page costs
// one index range however many events lie before it and however many arrive meanwhile.

export type ActivityFilter = {
  actorId?: string;
  action?: string;
  outcome?: "success" | "failure" | "denied";
  targetType?: string;
  targetId?: string;
  /** Inclusive lower bound. */
  from?: Date;
  /** Exclusive upper bound. */
  before?: Date;
  /** Case-insensitive text in the actor's label or the action's code (see TEXT_WINDOW). */
  text?: string;
  /** Action codes whose human label matches `text`: matched as codes. */
  textActions?: string[];
};

/** A position in the (occurred_at desc, id desc) order: the time as exact microsecond text. */
export type ActivityCursor = { at: string; id: number };

/**
 * Text search cannot use an index on both drivers (PGlite ships no pg_trgm we can rely on, and
 * a substring is no prefix), so one page scans at most this many events past its cursor.
 */
export const TEXT_WINDOW = 50_000;

const exactOccurredAt = exactTime(auditEvents.occurredAt);

/** The address an event names in its erasable `personal` fields (an invitation's invitee). */
const namedEmail = sql<string | null>`${auditEvents.personal}->>'email'`;

const listColumns = {
  id: auditEvents.id,
  seq: auditEvents.seq,
  occurredAt: auditEvents.occurredAt,
  at: exactOccurredAt,
  actorType: auditEvents.actorType,
  actorId: auditEvents.actorId,
  actorLabel: auditEvents.actorLabel,
  action: auditEvents.action,
  targetType: auditEvents.targetType,
  targetId: auditEvents.targetId,
  outcome: auditEvents.outcome,
  namedEmail,
};

export type ActivityRow = {
  id: number;
  seq: number | null;
  occurredAt: Date;
  at: string;
  actorType: string;
  actorId: string | null;
  actorLabel: string | null;
  action: string;
  targetType: string | null;
  targetId: string | null;
  outcome: "success" | "failure" | "denied";
  namedEmail: string | null;
};

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

function filterConditions(chain: string, filter: ActivityFilter, withText: boolean): SQL[] {
  const conditions: (SQL | undefined)[] = [
    eq(auditEvents.chain, chain),
    filter.actorId === undefined ? undefined : eq(auditEvents.actorId, filter.actorId),
    filter.action === undefined ? undefined : eq(auditEvents.action, filter.action),
    filter.outcome === undefined ? undefined : eq(auditEvents.outcome, filter.outcome),
    filter.targetType === undefined ? undefined : eq(auditEvents.targetType, filter.targetType),
    filter.targetId === undefined ? undefined : eq(auditEvents.targetId, filter.targetId),
    filter.from === undefined
      ? undefined
      : sql`${auditEvents.occurredAt} >= ${filter.from.toISOString()}::timestamptz`,
    filter.before === undefined
      ? undefined
      : sql`${auditEvents.occurredAt} < ${filter.before.toISOString()}::timestamptz`,
    withText && filter.text ? textCondition(filter) : undefined,
  ];
  return conditions.filter((c): c is SQL => c !== undefined);
}

type TextColumns = { actorLabel: AnyColumn | SQL.Aliased; action: AnyColumn | SQL.Aliased };

function textCondition(
  filter: ActivityFilter,
  columns: TextColumns = auditEvents,
): SQL | undefined {
  const pattern = `%${escapeLike(filter.text ?? "")}%`;
  const label = columns.actorLabel as AnyColumn;
  const action = columns.action as AnyColumn;
  return or(
    ilike(label, pattern),
    ilike(action, pattern),
    filter.textActions?.length ? inArray(action, filter.textActions) : undefined,
  );
}

function keyset(cursor: ActivityCursor | undefined, direction: "older" | "newer"): SQL | undefined {
  if (!cursor) return undefined;
  const op = direction === "older" ? sql`<` : sql`>`;
  return sql`(${auditEvents.occurredAt}, ${auditEvents.id}) ${op} (${cursor.at}::timestamptz, ${cursor.id}::bigint)`;
}

/**
 * One page of a chain's events, newest first. `older` reads past `cursor` (the next page),
 * `newer` before it (the previous page). `hasMore` says whether another page lies that way;
 * `scannedTo` is set when a text search stopped at TEXT_WINDOW events: the next page resumes
 * there, so that a rare match never costs a scan of the whole log.
 */
export async function listActivity({
  db,
  chain,
  filter,
  cursor,
  direction = "older",
  limit,
}: {
  db: DbOrTx;
  chain: string;
  filter: ActivityFilter;
  cursor?: ActivityCursor;
  direction?: "older" | "newer";
  limit: number;
}): Promise<{ rows: ActivityRow[]; hasMore: boolean; scannedTo: ActivityCursor | null }> {
  const order =
    direction === "older"
      ? [desc(auditEvents.occurredAt), desc(auditEvents.id)]
      : [asc(auditEvents.occurredAt), asc(auditEvents.id)];
  const base = [...filterConditions(chain, filter, false), keyset(cursor, direction)].filter(
    (c): c is SQL => c !== undefined,
  );
  let scannedTo: ActivityCursor | null = null;
  let rows: ActivityRow[];
  if (filter.text) {
    // The window is read first (one index range of at most TEXT_WINDOW rows) and the text is
    // matched within it: a rare match never turns into a probe of the whole chain.
    const window = db.$with("w").as(
      db
        .select({
          ...listColumns,
          at: exactOccurredAt.as("at"),
          namedEmail: namedEmail.as("named_email"),
        })
        .from(auditEvents)
        .where(and(...base))
        .orderBy(...order)
        .limit(TEXT_WINDOW),
    );
    const windowOrder =
      direction === "older"
        ? [desc(window.occurredAt), desc(window.id)]
        : [asc(window.occurredAt), asc(window.id)];
    rows = (await db
      .with(window)
      .select()
      .from(window)
      .where(textCondition(filter, window))
      .orderBy(...windowOrder)
      .limit(limit + 1)) as ActivityRow[];
    if (rows.length <= limit) {
      const [end] = await db
        .select({ at: exactOccurredAt, id: auditEvents.id })
        .from(auditEvents)
        .where(and(...base))
        .orderBy(...order)
        .offset(TEXT_WINDOW - 1)
        .limit(1);
      scannedTo = end ?? null;
    }
  } else {
    rows = (await db
      .select(listColumns)
      .from(auditEvents)
      .where(and(...base))
      .orderBy(...order)
      .limit(limit + 1)) as ActivityRow[];
  }
  const hasMore = rows.length > limit || scannedTo !== null;
  const page = rows.slice(0, limit);
  if (direction === "newer") page.reverse();
  return { rows: page, hasMore, scannedTo };
}

/** One event with everything the detail view shows, or undefined outside `chain`. */
export async function getActivityEvent({
  db,
  chain,
  id,
}: {
  db: DbOrTx;
  chain: string;
  id: number;
}) {
  const [row] = await db
    .select({
      ...storedEvent,
      occurredAtDate: auditEvents.occurredAt,
      metadataObject: auditEvents.metadata,
      personalObject: auditEvents.personal,
      seq: auditEvents.seq,
      prevHash: auditEvents.prevHash,
      hash: auditEvents.hash,
    })
    .from(auditEvents)
    .where(and(eq(auditEvents.chain, chain), eq(auditEvents.id, id)));
  return row;
}

export type TargetRef = { type: string | null; id: string | null };

/**
 * Human labels for targets, one batched query per kind, each scoped to the organisation: a
 * target id naming another organisation's row resolves to nothing. Keys are "type:id".
 */
export async function resolveTargetLabels({
  db,
  orgId,
  refs,
}: {
  db: DbOrTx;
  orgId: string | null;
  refs: TargetRef[];
}): Promise<Map<string, string>> {
  const labels = new Map<string, string>();
  if (orgId === null) return labels;
  const idsOf = (type: string) => [
    ...new Set(refs.filter((r) => r.type === type && r.id).map((r) => r.id as string)),
  ];
  const mailboxIds = idsOf("mailbox");
  const userIds = idsOf("user");
  const keyIds = idsOf("api_key");
  const invitationIds = idsOf("invitation");
  const [mailboxRows, userRows, keyRows, invitationRows, orgRows] = await Promise.all([
    mailboxIds.length === 0
      ? []
      : db
          .select({ id: mailboxes.id, label: mailboxes.address })
          .from(mailboxes)
          .where(and(eq(mailboxes.orgId, orgId), inArray(mailboxes.id, mailboxIds))),
    userIds.length === 0
      ? []
      : db
          .select({ id: users.id, label: users.email })
          .from(memberships)
          .innerJoin(users, eq(users.id, memberships.userId))
          .where(and(eq(memberships.orgId, orgId), inArray(memberships.userId, userIds))),
    keyIds.length === 0
      ? []
      : db
          .select({ id: apiKeys.id, label: apiKeys.name })
          .from(apiKeys)
          .where(and(eq(apiKeys.orgId, orgId), inArray(apiKeys.id, keyIds))),
    invitationIds.length === 0
      ? []
      : db
          .select({ id: invitations.id, label: invitations.email })
          .from(invitations)
          .where(and(eq(invitations.orgId, orgId), inArray(invitations.id, invitationIds))),
    refs.some((r) => r.type === "organization" && r.id === orgId)
      ? db
          .select({ id: organizations.id, label: organizations.name })
          .from(organizations)
          .where(eq(organizations.id, orgId))
      : [],
  ]);
  const put = (type: string, rows: { id: string; label: string | null }[]) => {
    for (const row of rows) if (row.label) labels.set(`${type}:${row.id}`, row.label);
  };
  put("mailbox", mailboxRows);
  put("user", userRows);
  put("api_key", keyRows);
  put("invitation", invitationRows);
  put("organization", orgRows);
  return labels;
}

/** What the filter form offers: the organisation's members, mailboxes and keys. */
export async function listActivityChoices({ db, orgId }: { db: DbOrTx; orgId: string }) {
  const [people, boxes, keys] = await Promise.all([
    db
      .select({ id: users.id, label: users.email })
      .from(memberships)
      .innerJoin(users, eq(users.id, memberships.userId))
      .where(eq(memberships.orgId, orgId))
      .orderBy(asc(users.email)),
    db
      .select({ id: mailboxes.id, label: mailboxes.address })
      .from(mailboxes)
      .where(eq(mailboxes.orgId, orgId))
      .orderBy(asc(mailboxes.address)),
    db
      .select({ id: apiKeys.id, label: apiKeys.name })
      .from(apiKeys)
      .where(eq(apiKeys.orgId, orgId))
      .orderBy(asc(apiKeys.name)),
  ]);
  return { people, boxes, keys };
}

const EXPORT_COLUMNS = {
  ...storedEvent,
  seq: auditEvents.seq,
  prevHash: auditEvents.prevHash,
  hash: auditEvents.hash,
};

/**
 * The events an export writes, in batches: sealed events in chain order (seq), then the
 * unsealed ones in insertion order. Each batch is one keyset read, so memory stays one batch.
 */
export async function* iterateActivityExport({
  db,
  chain,
  filter,
  batch = 1000,
}: {
  db: DbOrTx;
  chain: string;
  filter: ActivityFilter;
  batch?: number;
}) {
  const conditions = filterConditions(chain, filter, true);
  // Sealed events by seq, then unsealed ones by id: each run is a keyset walk on its own key.
  const runs = [
    { where: isNotNull(auditEvents.seq), key: auditEvents.seq, keyOf: (r: ExportRow) => r.seq },
    { where: isNull(auditEvents.seq), key: auditEvents.id, keyOf: (r: ExportRow) => r.id },
  ];
  for (const run of runs) {
    let after = 0;
    for (;;) {
      const rows = await exportBatch(
        db,
        and(...conditions, run.where, gt(run.key, after)),
        asc(run.key),
        batch,
      );
      if (rows.length === 0) break;
      yield rows;
      after = run.keyOf(rows[rows.length - 1] as ExportRow) ?? after;
      if (rows.length < batch) break;
    }
  }
}

function exportBatch(db: DbOrTx, where: SQL | undefined, order: SQL, batch: number) {
  return db.select(EXPORT_COLUMNS).from(auditEvents).where(where).orderBy(order).limit(batch);
}

/** One exported event: every stored field as the MAC covers it, with its seal (null: unsealed). */
export type ExportRow = Awaited<ReturnType<typeof exportBatch>>[number];
