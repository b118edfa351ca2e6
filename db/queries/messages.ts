import "server-only";
import { randomUUID } from "node:crypto";
import { and, desc, eq, gte, inArray, type Placeholder, type SQL, sql } from "drizzle-orm";
import type { DbOrTx } from "@/db";
import { type GroupedWrite, recordset, writeGrouped } from "@/db/grouped";
import { preparedSql } from "@/db/prepared";
import { apiKeys, mailboxes, memberships, messageClaims, messages, users } from "@/db/schema";

// Sent and attempted messages. Bodies are never stored: recipients and subject are what a
// person needs to recognise a send, and the SMTP reply is what they need to diagnose one.

export type MessageSender = { type: "user" | "api_key" | "system"; id: string };

export type MessageRecipients = { to: string[]; cc: string[]; bcc: string[] };

const resultColumns = {
  id: messages.id,
  status: messages.status,
  requestHash: messages.requestHash,
  smtpResponse: messages.smtpResponse,
  providerMessageId: messages.providerMessageId,
  errorCode: messages.errorCode,
  isQueued: sql<boolean>`${messages.deadlineAt} is not null`,
};

export type MessageResult = {
  id: string;
  status: "sending" | "sent" | "failed" | "queued" | "retrying" | "cancelled";
  requestHash: string | null;
  smtpResponse: string | null;
  providerMessageId: string | null;
  errorCode: string | null;
  /** Sent with `Prefer: respond-async` (lib/mail/queued.ts). */
  isQueued: boolean;
};

/** A new message row as both the synchronous claim and the queue write it. */
export type NewMessage = {
  orgId: string;
  mailboxId: string;
  sender: MessageSender;
  recipients: MessageRecipients;
  subject: string;
  idempotencyKey: string | null;
  requestHash: string;
};

/**
 * Its columns, named as the table's fields, always in this order: the claim's prepared text
 * is built from these keys.
 */
export function newMessageColumns(m: NewMessage) {
  return {
    orgId: m.orgId,
    mailboxId: m.mailboxId,
    senderType: m.sender.type,
    senderId: m.sender.id,
    recipients: m.recipients,
    recipientCount: m.recipients.to.length + m.recipients.cc.length + m.recipients.bcc.length,
    subject: m.subject,
    idempotencyKey: m.idempotencyKey,
    requestHash: m.requestHash,
  };
}

/**
 * The lease of the attempt that a statement's `claimed` CTE (with a column `id`) makes
 * `sending`: a new one, or the lapsed one of an earlier attempt renewed.
 */
export function leaseInsert(leaseSeconds: unknown): SQL {
  return sql`insert into ${messageClaims} (message_id, expires_at)
    select id, now() + make_interval(secs => ${leaseSeconds}) from claimed
    on conflict (message_id) do update set expires_at = excluded.expires_at`;
}

/** Conflicts on (sender, Idempotency-Key) leave the first row and insert nothing. */
export const IDEMPOTENCY_TARGET = [messages.senderType, messages.senderId, messages.idempotencyKey];

type Claim = NewMessage & { leaseSeconds: number };
type Claimed = {
  id: string;
  /** This send's claim: only it may write the row's outcome (finishMessage, recordDelivery). */
  claimId: string;
} | null;

function claimColumns({ leaseSeconds: _, ...message }: Claim) {
  // Every column with a default made in JS is given: a prepared insert would freeze it.
  return { id: randomUUID(), ...newMessageColumns(message), claimId: randomUUID() };
}

const CLAIM_COLUMNS = {
  id: messages.id,
  orgId: messages.orgId,
  mailboxId: messages.mailboxId,
  senderType: messages.senderType,
  senderId: messages.senderId,
  recipients: messages.recipients,
  recipientCount: messages.recipientCount,
  subject: messages.subject,
  idempotencyKey: messages.idempotencyKey,
  requestHash: messages.requestHash,
  claimId: messages.claimId,
} satisfies Record<keyof ReturnType<typeof claimColumns>, unknown>;

const claimRows = recordset(CLAIM_COLUMNS, "r");

/**
 * The claim, written alone or grouped with the claims that arrive while one is on its way
 * (db/grouped.ts): one statement inserts them all, each with its lease; a row whose
 * Idempotency-Key is taken is skipped, the others are claimed.
 */
const claimWrite: GroupedWrite<Claim, Claimed> = {
  groupOf: (claim) => `${claim.orgId} ${claim.leaseSeconds}`,
  async one(db, { leaseSeconds, ...message }) {
    const columns = claimColumns({ leaseSeconds, ...message });
    const result = (await preparedSql(db, "claim_message", () => {
      const insert = db
        .insert(messages)
        .values({
          ...(Object.fromEntries(
            Object.keys(columns).map((c) => [c, sql.placeholder(c)]),
          ) as unknown as typeof columns),
          status: "sending",
        })
        .onConflictDoNothing({ target: IDEMPOTENCY_TARGET });
      // Past its lease the process that sends it died: the sweep settles the row (interrupted),
      // so it never stays `sending`, nor a retry with its Idempotency-Key in progress, for ever.
      return sql`with claimed as (${insert.getSQL()} returning ${messages.id})
        , lease as (${leaseInsert(sql.placeholder("leaseSeconds"))})
        select id from claimed`;
    }).execute({ ...columns, leaseSeconds })) as { rows: Array<{ id: string }> };
    const row = result.rows[0];
    return row ? { id: row.id, claimId: columns.claimId } : null;
  },
  async many(db, claims) {
    const leaseSeconds = claims[0]?.leaseSeconds;
    // Sorted by (sender, key), one order every process shares: two groups that share keys wait
    // for each other in the same order instead of deadlocking.
    const rows = claims
      .map(claimColumns)
      .map((row, index) => ({ row, index }))
      .sort((a, b) => compareKeys(a.row, b.row));
    const keys = Object.keys(CLAIM_COLUMNS) as Array<keyof typeof CLAIM_COLUMNS>;
    const result = (await preparedSql(db, "claim_messages", () => {
      return sql`with claimed as (
          insert into ${messages} (${sql.join(
            keys.map((k) => sql.identifier(CLAIM_COLUMNS[k].name)),
            sql`, `,
          )}, ${sql.identifier(messages.status.name)})
          select ${sql.join(keys.map(claimRows.field), sql`, `)}, 'sending'
          from ${claimRows.from("rows")}
          on conflict (${sql.join(
            IDEMPOTENCY_TARGET.map((c) => sql.identifier(c.name)),
            sql`, `,
          )}) do nothing
          returning ${messages.id})
        , lease as (${leaseInsert(sql.placeholder("leaseSeconds"))})
        select id from claimed`;
    }).execute({
      rows: claimRows.encode(rows.map((r) => r.row)),
      leaseSeconds,
    })) as { rows: Array<{ id: string }> };
    const written = new Set(result.rows.map((r) => r.id));
    const answers: Claimed[] = new Array(claims.length).fill(null);
    for (const { row, index } of rows) {
      answers[index] = written.has(row.id) ? { id: row.id, claimId: row.claimId } : null;
    }
    return answers;
  },
};

function compareKeys(a: ReturnType<typeof claimColumns>, b: ReturnType<typeof claimColumns>) {
  const left = `${a.senderType}\u0000${a.senderId}\u0000${a.idempotencyKey ?? ""}`;
  const right = `${b.senderType}\u0000${b.senderId}\u0000${b.idempotencyKey ?? ""}`;
  return left < right ? -1 : left > right ? 1 : 0;
}

/**
 * Writes the row in status `sending` before any SMTP traffic. With an idempotency key the
 * unique index (sender, key) decides who sends: null means another request holds the key.
 */
export function claimMessage({ db, ...claim }: Claim & { db: DbOrTx }): Promise<Claimed> {
  return writeGrouped(db, claimWrite, claim);
}

/** The earlier request made with this key by this sender (keys are scoped per sender). */
export async function findMessageByIdempotencyKey({
  db,
  orgId,
  sender,
  idempotencyKey,
}: {
  db: DbOrTx;
  orgId: string;
  sender: MessageSender;
  idempotencyKey: string;
}): Promise<MessageResult | null> {
  const [row] = await db
    .select(resultColumns)
    .from(messages)
    .where(
      and(
        eq(messages.orgId, orgId),
        eq(messages.senderType, sender.type),
        eq(messages.senderId, sender.id),
        eq(messages.idempotencyKey, idempotencyKey),
      ),
    )
    .limit(1);
  return row ?? null;
}

type FinishMessage = {
  db: DbOrTx;
  orgId: string;
  messageId: string;
  /**
   * The attempt whose outcome this is: its claim id (a synchronous send's, a queued attempt's,
   * also while it only reserved the message, or the sweep's).
   */
  claimId: string;
  status: "sent" | "failed";
  smtpResponse: string | null;
  providerMessageId: string | null;
  errorCode: string | null;
  /** The plain cause of a failure, kept for queued messages (the status route shows it). */
  lastError?: string | null;
};

// A queued message's final outcome also deletes its sealed body and ends its wait or claim.
type FinishColumns = {
  status: FinishMessage["status"];
  smtpResponse: string | null;
  providerMessageId: string | null;
  errorCode: string | null;
  sentAt: Date | null;
  lastError?: string | null;
};

/**
 * Only the row as the finishing attempt left it moves: still this attempt's (`claim_id`), and
 * either `sending` under that claim or, for a queued message refused before its claim, still
 * waiting under its reservation. A stale worker (its row sent, cancelled, put off or taken over
 * by another attempt meanwhile) changes nothing, and the audit event and webhook deliveries of
 * the same statement are written only when this update touched the row.
 */
function stillMine(claimId: string | Placeholder | SQL): SQL {
  return sql`(${messages.claimId} = ${claimId}::text and (${messages.status} = 'sending'
    or (${messages.nextAttemptAt} is not null and ${messages.status} in ('queued', 'retrying'))))`;
}

export function finishUpdate(
  db: DbOrTx,
  where: {
    orgId: string | Placeholder | SQL;
    messageId: string | Placeholder | SQL;
    claimId: string | Placeholder | SQL;
    /**
     * A grouped update's message ids as one array (a `text[]` expression). Joined only on the
     * rows of `json_to_recordset`, which PostgreSQL estimates at 100, a generic plan reads the
     * whole table: this bound lets it look the rows up by primary key.
     */
    amongIds?: SQL;
  },
  set: { [K in keyof FinishColumns]: FinishColumns[K] | Placeholder | SQL },
) {
  return (
    db
      .update(messages)
      // A placeholder in `set` becomes a parameter like any value (drizzle's types omit it).
      .set({
        ...(set as FinishColumns),
        bodySealed: null,
        nextAttemptAt: null,
      })
      .where(
        and(
          eq(messages.orgId, where.orgId),
          eq(messages.id, where.messageId),
          where.amongIds ? sql`${messages.id} = any(${where.amongIds})` : undefined,
          stillMine(where.claimId),
        ),
      )
  );
}

export async function finishMessage({
  db,
  orgId,
  messageId,
  claimId,
  lastError,
  ...result
}: FinishMessage) {
  await finishUpdate(
    db,
    { orgId, messageId, claimId },
    {
      ...result,
      sentAt: result.status === "sent" ? new Date() : null,
      ...(lastError === undefined ? {} : { lastError }),
    },
  );
}

const FINISH_PLACEHOLDERS = {
  status: sql.placeholder("status"),
  smtpResponse: sql.placeholder("smtpResponse"),
  providerMessageId: sql.placeholder("providerMessageId"),
  errorCode: sql.placeholder("errorCode"),
  // Given as text: drizzle's timestamp encoder cannot take the null of a failure.
  sentAt: sql`${sql.placeholder("sentAt")}::timestamptz`,
  lastError: sql.placeholder("lastError"),
};

/**
 * The same update as a statement with placeholders, for another statement to carry (the send's
 * outcome with its audit event: lib/audit/write.ts); `finishMessageParams` gives their values.
 * It always sets `last_error`: null for a synchronous send, whose row never had one.
 */
export function finishMessageTemplate(db: DbOrTx): SQL {
  return finishUpdate(
    db,
    {
      orgId: sql.placeholder("orgId"),
      messageId: sql.placeholder("messageId"),
      claimId: sql.placeholder("claimId"),
    },
    FINISH_PLACEHOLDERS,
  ).getSQL();
}

export type FinishParams = ReturnType<typeof finishMessageParams>;

export function finishMessageParams({ lastError, ...input }: Omit<FinishMessage, "db">) {
  return {
    ...input,
    sentAt: input.status === "sent" ? new Date().toISOString() : null,
    lastError: lastError ?? null,
  };
}

/** The messages page: recent sends with the mailbox, who sent and what the server said. */
export async function listRecentMessages({
  db,
  orgId,
  limit = 50,
}: {
  db: DbOrTx;
  orgId: string;
  limit?: number;
}) {
  return db
    .select({
      id: messages.id,
      status: messages.status,
      subject: messages.subject,
      recipientCount: messages.recipientCount,
      smtpResponse: messages.smtpResponse,
      errorCode: messages.errorCode,
      createdAt: messages.createdAt,
      sentAt: messages.sentAt,
      attempts: messages.attempts,
      nextAttemptAt: messages.nextAttemptAt,
      lastError: messages.lastError,
      mailboxId: messages.mailboxId,
      mailboxAddress: mailboxes.address,
      senderType: messages.senderType,
      // A person is named only while a member: after they leave or are erased, their account
      // (which may live on in another organisation) is not this organisation's to show.
      senderLabel: sql<
        string | null
      >`coalesce(${apiKeys.name}, ${users.email}, ${users.name}, case ${messages.senderType} when 'user' then 'former member' when 'api_key' then 'deleted API key' end)`,
    })
    .from(messages)
    .leftJoin(mailboxes, eq(mailboxes.id, messages.mailboxId))
    .leftJoin(apiKeys, and(eq(messages.senderType, "api_key"), eq(apiKeys.id, messages.senderId)))
    .leftJoin(
      memberships,
      and(
        eq(messages.senderType, "user"),
        eq(memberships.orgId, messages.orgId),
        eq(memberships.userId, messages.senderId),
      ),
    )
    .leftJoin(users, eq(users.id, memberships.userId))
    .where(eq(messages.orgId, orgId))
    .orderBy(desc(messages.createdAt))
    .limit(limit);
}

export type DailyMessageCount = { day: string; sent: number; failed: number };

/** Sends per UTC day for the chart, the last `days` days including today, gaps filled. */
export async function countMessagesPerDay({
  db,
  orgId,
  days = 14,
  now = new Date(),
}: {
  db: DbOrTx;
  orgId: string;
  days?: number;
  now?: Date;
}): Promise<DailyMessageCount[]> {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const since = new Date(today - (days - 1) * 86_400_000);
  const day = sql<string>`to_char(${messages.createdAt} at time zone 'UTC', 'YYYY-MM-DD')`;
  const rows = await db
    .select({
      day,
      sent: sql<number>`count(*) filter (where ${messages.status} = 'sent')::int`,
      failed: sql<number>`count(*) filter (where ${messages.status} = 'failed')::int`,
    })
    .from(messages)
    .where(and(eq(messages.orgId, orgId), gte(messages.createdAt, since)))
    .groupBy(day);
  const byDay = new Map(rows.map((row) => [row.day, row]));
  return Array.from({ length: days }, (_, i) => {
    const key = new Date(since.getTime() + i * 86_400_000).toISOString().slice(0, 10);
    const row = byDay.get(key);
    return { day: key, sent: row?.sent ?? 0, failed: row?.failed ?? 0 };
  });
}

/** Which of these Message-IDs belong to messages this organisation sent. */
export async function filterOwnMessageIds({
  db,
  orgId,
  messageIds,
}: {
  db: DbOrTx;
  orgId: string;
  messageIds: string[];
}): Promise<Set<string>> {
  if (messageIds.length === 0) return new Set();
  const rows = await db
    .select({ messageId: messages.providerMessageId })
    .from(messages)
    .where(and(eq(messages.orgId, orgId), inArray(messages.providerMessageId, messageIds)));
  return new Set(rows.flatMap((r) => (r.messageId ? [r.messageId] : [])));
}

/** `text` with anything shaped like an address (x@y, between spaces, brackets or quotes) removed. */
function withoutAddressLike(text: SQL): SQL {
  return sql`regexp_replace(${text}, '[^[:space:]<>@"'']+@[^[:space:]<>@"'']+', '[removed]', 'g')`;
}

/**
 * Empties the recipients and replaces the subject of up to `limit` of the organisation's oldest
 * messages created before `before` that still hold them; any address in the SMTP reply or the
 * failure cause (a cancel names the member, a failure the mailbox) goes too.
 * Rows another transaction holds are left for the next batch. Returns how many changed.
 */
export async function removeMessagePersonalFields({
  db,
  orgId,
  before,
  subject,
  removedAt,
  limit,
}: {
  db: DbOrTx;
  orgId: string;
  before: Date;
  subject: string;
  removedAt: Date;
  limit: number;
}): Promise<number> {
  const result = await db.execute(sql`
    update ${messages} set
      recipients = '{"to":[],"cc":[],"bcc":[]}'::jsonb,
      subject = ${subject},
      smtp_response = ${withoutAddressLike(sql`smtp_response`)},
      last_error = ${withoutAddressLike(sql`last_error`)},
      personal_removed_at = ${removedAt}
    where id in (
      select id from ${messages}
      where org_id = ${orgId} and created_at < ${before} and personal_removed_at is null
      order by created_at
      limit ${limit}
      for update skip locked)
    returning id`);
  return (result as unknown as { rows: unknown[] }).rows.length;
}

/** Sent and failed messages since each cut-off, in one scan of the organisation's index range. */
export async function countSendsSince({
  db,
  orgId,
  day,
  fortnight,
}: {
  db: DbOrTx;
  orgId: string;
  day: Date;
  fortnight: Date;
}) {
  const [row] = await db
    .select({
      sentDay: sql<number>`count(*) filter (where ${messages.status} = 'sent' and ${messages.createdAt} >= ${day})::int`,
      failedDay: sql<number>`count(*) filter (where ${messages.status} = 'failed' and ${messages.createdAt} >= ${day})::int`,
      sentFortnight: sql<number>`count(*) filter (where ${messages.status} = 'sent')::int`,
      failedFortnight: sql<number>`count(*) filter (where ${messages.status} = 'failed')::int`,
    })
    .from(messages)
    .where(and(eq(messages.orgId, orgId), gte(messages.createdAt, fortnight)));
  return {
    day: { sent: Number(row?.sentDay ?? 0), failed: Number(row?.failedDay ?? 0) },
    fortnight: { sent: Number(row?.sentFortnight ?? 0), failed: Number(row?.failedFortnight ?? 0) },
  };
}
