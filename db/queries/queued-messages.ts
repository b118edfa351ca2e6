import "server-only";
import { and, eq, inArray, isNotNull, lte, or, sql } from "drizzle-orm";
import type { DbOrTx } from "@/db";
import type { StatementPart } from "@/db/prepared";
import { mailboxes, mailboxPace, messageClaims, messages } from "@/db/schema";
import { IDEMPOTENCY_TARGET, leaseInsert, type NewMessage, newMessageColumns } from "./messages";

// Queued messages (`Prefer: respond-async`, lib/mail/queued.ts). The row is the queue's state:
// `next_attempt_at` is set exactly while a message waits (queued, retrying; a partial index
// holds only those rows), and an attempt that is `sending` has a lease in `message_claims`
// (db/schema.ts). While an attempt prepares (pace wait, checks) its waiting row is reserved for
// it: `claim_id` is the attempt's id and `next_attempt_at` is put off. pg-boss jobs only wake
// the worker of a mailbox.

/**
 * The `queued` row as a statement part with placeholders, for the one statement that also writes
 * its `message.queued` event (writeAuditEventWithChange in lib/audit/write.ts). With an
 * Idempotency-Key another request may hold already, nothing is inserted (and no event written).
 */
export function queuedMessageInsert({
  id,
  bodySealed,
  deadlineAt,
  ...message
}: NewMessage & { id: string; bodySealed: string; deadlineAt: Date }): StatementPart {
  const columns = { id, ...newMessageColumns(message), bodySealed };
  return {
    build: (db) =>
      db
        .insert(messages)
        .values({
          ...(Object.fromEntries(
            Object.keys(columns).map((c) => [c, sql.placeholder(c)]),
          ) as unknown as typeof columns),
          status: "queued",
          nextAttemptAt: sql`now()`,
          // Given as text: a Date through a placeholder skips the column's encoder.
          deadlineAt: sql`${sql.placeholder("deadlineAt")}::timestamptz`,
        })
        .onConflictDoNothing({ target: IDEMPOTENCY_TARGET })
        .getSQL(),
    params: { ...columns, deadlineAt: deadlineAt.toISOString() },
  };
}

const dueColumns = {
  id: messages.id,
  orgId: messages.orgId,
  mailboxId: messages.mailboxId,
  status: messages.status,
  senderType: messages.senderType,
  senderId: messages.senderId,
  recipientCount: messages.recipientCount,
  attempts: messages.attempts,
  deadlineAt: messages.deadlineAt,
  bodySealed: messages.bodySealed,
  lastError: messages.lastError,
};

export type DueMessage = {
  id: string;
  orgId: string;
  mailboxId: string | null;
  status: string;
  senderType: string;
  senderId: string;
  recipientCount: number;
  attempts: number;
  deadlineAt: Date | null;
  bodySealed: string | null;
  /** Why it waited last (a pause, a limit, a transient failure). */
  lastError: string | null;
};

// A message is reserved for its attempt from before the pace wait until the claim: ample for the
// wait, the checks and a token refresh. Past it (the process died) the message is due again.
const RESERVATION_SECONDS = 120;

export type ReservedMessage = DueMessage & { attemptId: string };

/**
 * Reserves the mailbox's message that has waited longest among those due now for one attempt,
 * before its pace wait and its limit charges: the row gets the attempt's id (`claim_id`) and is
 * put off by RESERVATION_SECONDS (a lease: an attempt whose process dies lets it fall due again),
 * so that another drainer of the mailbox, in any process, takes the next message instead of
 * racing for this one. Rows another transaction is reserving are skipped. Null when none is due.
 */
export async function reserveNextDueMessage({
  db,
  mailboxId,
  attemptId,
}: {
  db: DbOrTx;
  mailboxId: string;
  attemptId: string;
}): Promise<ReservedMessage | null> {
  const [row] = await db
    .update(messages)
    .set({
      claimId: attemptId,
      nextAttemptAt: sql`now() + make_interval(secs => ${RESERVATION_SECONDS})`,
    })
    .where(
      eq(
        messages.id,
        sql`(select ${messages.id} from ${messages}
          where ${messages.mailboxId} = ${mailboxId} and ${messages.nextAttemptAt} <= now()
          order by ${messages.nextAttemptAt}, ${messages.createdAt}
          limit 1 for update skip locked)`,
      ),
    )
    .returning(dueColumns);
  return row ? { ...row, attemptId } : null;
}

/**
 * The claim, committed before any SMTP traffic: the row becomes `sending` with this attempt's
 * id, a lease, and its Message-ID fixed (kept from an earlier attempt). Only the attempt's own
 * reservation is claimed (reserveNextDueMessage, taken when the message was due): null when the
 * message is no longer reserved for it (cancelled, put off by a hold, or reserved by another
 * attempt after this one's reservation lapsed).
 */
export async function claimQueuedMessage({
  db,
  messageId,
  attemptId,
  leaseSeconds,
  providerMessageId,
}: {
  db: DbOrTx;
  messageId: string;
  attemptId: string;
  leaseSeconds: number;
  providerMessageId: string;
}): Promise<{ providerMessageId: string; bodySealed: string | null; attempts: number } | null> {
  const claim = db
    .update(messages)
    .set({
      status: "sending",
      nextAttemptAt: null,
      attempts: sql`${messages.attempts} + 1`,
      providerMessageId: sql`coalesce(${messages.providerMessageId}, ${providerMessageId})`,
    })
    .where(
      and(
        eq(messages.id, messageId),
        eq(messages.claimId, attemptId),
        isNotNull(messages.nextAttemptAt),
      ),
    );
  const result = (await db.execute(sql`with claimed as (${claim.getSQL()} returning ${messages.id},
      ${messages.providerMessageId} as "providerMessageId", ${messages.bodySealed} as "bodySealed",
      ${messages.attempts} as attempts)
    , lease as (${leaseInsert(leaseSeconds)})
    select "providerMessageId", "bodySealed", attempts from claimed`)) as unknown as {
    rows: Array<{ providerMessageId: string | null; bodySealed: string | null; attempts: number }>;
  };
  const row = result.rows[0];
  if (!row?.providerMessageId) return null;
  return { ...row, providerMessageId: row.providerMessageId };
}

/**
 * A non-final outcome: the message waits again until `until` (a hold keeps `queued`; a failed
 * attempt is `retrying`). When `claimId` is given, only that attempt's row is moved (claimed,
 * or still reserved for it); otherwise only a row still waiting. Either way the reservation ends.
 */
export async function holdQueuedMessage({
  db,
  messageId,
  claimId,
  until,
  status,
  lastError,
}: {
  db: DbOrTx;
  messageId: string;
  claimId: string | null;
  until: Date;
  status: "queued" | "retrying";
  lastError: string | null;
}): Promise<boolean> {
  const rows = await db
    .update(messages)
    .set({
      status,
      nextAttemptAt: until,
      claimId: null,
      ...(lastError === null ? {} : { lastError }),
    })
    .where(
      and(
        eq(messages.id, messageId),
        claimId === null
          ? isNotNull(messages.nextAttemptAt)
          : and(
              eq(messages.claimId, claimId),
              or(eq(messages.status, "sending"), isNotNull(messages.nextAttemptAt)),
            ),
      ),
    )
    .returning({ id: messages.id });
  return rows.length > 0;
}

/**
 * Holds every message of the mailbox that is due before `until` (a pause or a limit holds the
 * mailbox, not one message), and the one `attemptId` reserved; their reservations end. Returns
 * how many.
 */
export async function holdMailboxMessages({
  db,
  mailboxId,
  attemptId,
  until,
  lastError,
}: {
  db: DbOrTx;
  mailboxId: string;
  attemptId: string;
  until: Date;
  lastError: string | null;
}): Promise<number> {
  const rows = await db
    .update(messages)
    .set({ nextAttemptAt: until, claimId: null, ...(lastError === null ? {} : { lastError }) })
    .where(
      and(
        eq(messages.mailboxId, mailboxId),
        isNotNull(messages.nextAttemptAt),
        or(lte(messages.nextAttemptAt, until), eq(messages.claimId, attemptId)),
      ),
    )
    .returning({ id: messages.id });
  return rows.length;
}

/** Mailboxes with a message due now (each gets its worker woken). */
export async function mailboxesWithDueMessages({
  db,
  limit = 500,
}: {
  db: DbOrTx;
  limit?: number;
}): Promise<string[]> {
  const rows = await db
    .selectDistinct({ mailboxId: messages.mailboxId })
    .from(messages)
    .where(lte(messages.nextAttemptAt, sql`now()`))
    .limit(limit);
  return rows.flatMap((r) => (r.mailboxId ? [r.mailboxId] : []));
}

/**
 * Takes over attempts whose lease lapsed (their process died mid-attempt): each gets a new
 * claim id and lease so that only one reconciler handles it. Returns what it took.
 */
export async function takeLapsedClaims({
  db,
  claimId,
  leaseSeconds,
  limit = 100,
}: {
  db: DbOrTx;
  claimId: string;
  leaseSeconds: number;
  limit?: number;
}) {
  // Leases of attempts that ended are deleted once they lapse, in the same statement; a lease
  // renewed meanwhile by a new attempt no longer has lapsed, so it stays. Both rows are locked:
  // PostgreSQL re-checks a row changed since the statement began at its newest version only
  // where the statement locks it, so a lease another sweep renewed (and committed) after this
  // statement began is seen renewed, and its attempt is not taken over twice.
  const result = await db.execute(sql`
    with lapsed as (
      select m.id from ${messageClaims} c join ${messages} m on m.id = c.message_id
      where c.expires_at < now() and m.status = 'sending'
      order by c.expires_at
      limit ${limit}
      for update of m, c skip locked),
    lease as (
      update ${messageClaims} c set expires_at = now() + make_interval(secs => ${leaseSeconds})
      from lapsed where c.message_id = lapsed.id),
    spent as (
      delete from ${messageClaims} c where c.expires_at < now() and not exists (
        select 1 from ${messages} m where m.id = c.message_id and m.status = 'sending'))
    update ${messages} m set claim_id = ${claimId}
    from lapsed
    where m.id = lapsed.id
    returning m.id, m.org_id as "orgId", m.mailbox_id as "mailboxId",
      m.provider_message_id as "providerMessageId", m.sender_type as "senderType",
      m.sender_id as "senderId", m.recipient_count as "recipientCount",
      m.deadline_at is not null as "isQueued"`);
  return (
    result as unknown as {
      rows: {
        id: string;
        orgId: string;
        mailboxId: string | null;
        providerMessageId: string | null;
        senderType: string;
        senderId: string;
        recipientCount: number;
        /** False for a synchronous send: no body is kept, so it is never sent again. */
        isQueued: boolean;
      }[];
    }
  ).rows;
}

/** Cancels a waiting message of the organisation; null when it is not waiting (or not theirs). */
export async function cancelQueuedMessage({
  db,
  orgId,
  messageId,
  cause,
}: {
  db: DbOrTx;
  orgId: string;
  messageId: string;
  cause: string;
}): Promise<{ id: string; mailboxId: string | null } | null> {
  const [row] = await db
    .update(messages)
    .set({ status: "cancelled", nextAttemptAt: null, bodySealed: null, lastError: cause })
    .where(
      and(
        eq(messages.orgId, orgId),
        eq(messages.id, messageId),
        isNotNull(messages.nextAttemptAt),
        inArray(messages.status, ["queued", "retrying"]),
      ),
    )
    .returning({ id: messages.id, mailboxId: messages.mailboxId });
  return row ?? null;
}

/** One message of the organisation as the status route shows it. */
export async function getMessageStatus({
  db,
  orgId,
  messageId,
}: {
  db: DbOrTx;
  orgId: string;
  messageId: string;
}) {
  const [row] = await db
    .select({
      id: messages.id,
      status: messages.status,
      mailboxId: messages.mailboxId,
      mailboxAddress: mailboxes.address,
      senderType: messages.senderType,
      senderId: messages.senderId,
      createdAt: messages.createdAt,
      sentAt: messages.sentAt,
      attempts: messages.attempts,
      nextAttemptAt: messages.nextAttemptAt,
      deadlineAt: messages.deadlineAt,
      providerMessageId: messages.providerMessageId,
      smtpResponse: messages.smtpResponse,
      errorCode: messages.errorCode,
      lastError: messages.lastError,
    })
    .from(messages)
    .leftJoin(mailboxes, eq(mailboxes.id, messages.mailboxId))
    .where(and(eq(messages.orgId, orgId), eq(messages.id, messageId)))
    .limit(1);
  return row ?? null;
}

/**
 * Takes the mailbox's next send slot across processes, in one statement: the slot is the later
 * of the stored time and now, and the stored time moves on by one interval. Returns how many
 * milliseconds from now the slot is (0 when it is now).
 */
export async function takePaceSlot({
  db,
  mailboxId,
  intervalMs,
}: {
  db: DbOrTx;
  mailboxId: string;
  intervalMs: number;
}): Promise<number> {
  const step = sql`make_interval(secs => ${intervalMs / 1000})`;
  const result = await db.execute(sql`
    insert into ${mailboxPace} (mailbox_id, next_at) values (${mailboxId}, now() + ${step})
    on conflict (mailbox_id) do update
      set next_at = greatest(${mailboxPace.nextAt}, now()) + ${step}
    returning greatest(0, extract(epoch from (next_at - ${step} - now())) * 1000)::float8 as "waitMs"`);
  const row = (result as unknown as { rows: { waitMs: number | string }[] }).rows[0];
  return Number(row?.waitMs ?? 0);
}
