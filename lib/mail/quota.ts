import "server-only";
import { and, eq, gt, isNull, lte, min, or, sql } from "drizzle-orm";
import { getDb } from "@/db";
import { mailboxes, messages } from "@/db/schema";
import { withoutAddresses } from "@/lib/audit/events";
import { writeAuditEvent } from "@/lib/audit/write";
import { formatDateTime } from "@/lib/utils";
import type { RefusalOutcome } from "./outcomes";
import type { SmtpFailure } from "./smtp-replies";

// A provider's daily quota (Microsoft 554 5.2.0 SubmissionQuotaExceeded, Gmail 550 5.4.5):
// the mailbox is "limit reached until <time>" (mailboxes.limited_until). Its status stays
// `connected` — the grant works and nobody must act — but synchronous sends before that time are
// refused with 429 and Retry-After, and the queue holds its messages until then.
//
// The time: both providers count a rolling 24 hours, so room comes back as messages of the last
// 24 hours leave the window. When the oldest message Mailwarden sent from the mailbox in that
// window leaves it, at least its recipients count no more: the earliest time room is known to
// be back (a later send that finds the limit again sets the next such time). Without such a
// message the quota was used by other clients (Outlook, another app), and everything counted
// has left the window 24 hours from now. Never less than MIN_WAIT_MS, so a mailbox at its limit
// is not asked again every few seconds.

const DAY_MS = 86_400_000;
const MIN_WAIT_MS = 15 * 60_000;

type LimitedRow = { id: string; limitedUntil: Date | null };

/** When the mailbox may send again, or null when it is not at a provider's limit now. */
export function mailboxLimitedUntil(mailbox: LimitedRow, now = Date.now()): Date | null {
  return mailbox.limitedUntil && mailbox.limitedUntil.getTime() > now ? mailbox.limitedUntil : null;
}

/** The plain sentence for the mailboxes page, the API and the dashboard's send form. */
export function limitSentence(until: Date): string {
  return (
    `Limit reached until ${formatDateTime(until)}: the provider's daily sending limit for this ` +
    "mailbox is used up (a rolling 24 hours). The mailbox is connected and needs nothing; " +
    "messages can be sent again after that time."
  );
}

/** The chokepoint's refusal while the mailbox is at its provider's limit (429, Retry-After). */
export function limitRefusal(mailbox: LimitedRow, now = Date.now()): RefusalOutcome | null {
  const until = mailboxLimitedUntil(mailbox, now);
  if (!until) return null;
  return {
    kind: "rate_limited",
    limit: "providerQuota",
    retryAfterSeconds: Math.max(1, Math.ceil((until.getTime() - now) / 1000)),
    cause: `Nothing was sent. ${limitSentence(until)}`,
  };
}

export function quotaRetryAfterSeconds(failure: SmtpFailure, now = Date.now()): number {
  const at = failure.retryAt?.getTime() ?? now + DAY_MS;
  return Math.max(1, Math.ceil((at - now) / 1000));
}

/** When the oldest message sent from the mailbox in the last 24 hours leaves the window. */
async function quotaEndsAt(mailboxId: string, now: number): Promise<Date> {
  const db = await getDb();
  const [row] = await db
    .select({ oldest: min(messages.createdAt) })
    .from(messages)
    .where(
      and(
        eq(messages.mailboxId, mailboxId),
        eq(messages.status, "sent"),
        gt(messages.createdAt, new Date(now - DAY_MS)),
      ),
    );
  const oldest = row?.oldest ? new Date(row.oldest).getTime() : null;
  return new Date(Math.max(oldest === null ? now + DAY_MS : oldest + DAY_MS, now + MIN_WAIT_MS));
}

/**
 * After a quota reply: the mailbox is limited until the time above, the failure says so (its
 * `retryAt` and cause), and the first send to find it writes `mailbox.limit_reached`.
 */
export async function markMailboxLimited(
  mailbox: { id: string },
  failure: SmtpFailure,
): Promise<void> {
  const now = Date.now();
  const until = await quotaEndsAt(mailbox.id, now);
  failure.retryAt = until;
  failure.cause = `${failure.cause} ${limitSentence(until)}`;
  const db = await getDb();
  await db.transaction(async (tx) => {
    const [row] = await tx
      .update(mailboxes)
      .set({
        limitedUntil: until,
        lastErrorCode: failure.code,
        lastErrorCause: failure.cause,
        updatedAt: sql`now()`,
      })
      .where(
        and(
          eq(mailboxes.id, mailbox.id),
          eq(mailboxes.status, "connected"),
          or(isNull(mailboxes.limitedUntil), lte(mailboxes.limitedUntil, new Date(now))),
        ),
      )
      .returning({ orgId: mailboxes.orgId, provider: mailboxes.provider });
    // Another send found the limit first (and audited it).
    if (!row) return;
    await writeAuditEvent(tx, {
      orgId: row.orgId,
      actor: { type: "system", label: "mail sending" },
      action: "mailbox.limit_reached",
      target: { type: "mailbox", id: mailbox.id },
      outcome: "success",
      metadata: {
        provider: row.provider,
        code: failure.code,
        limitedUntil: until.toISOString(),
        // Chained metadata, out of erasure's reach: no address a reply may quote.
        smtpResponse: withoutAddresses(failure.smtpResponse),
      },
    });
  });
}
