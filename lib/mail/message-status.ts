import "server-only";
import { getDb } from "@/db";
import { getMessageStatus } from "@/db/queries/queued-messages";
import { auditCallerRefusal } from "@/lib/audit/refusals";
import type { CallContext } from "@/lib/auth/context";
import { rateLimits } from "@/lib/ratelimit/runtime";
import { limitRefusal } from "./checks";
import type { RefusalOutcome } from "./outcomes";

// GET /api/v1/messages/{id}: a message's status for the API key that asks (ARCHITECTURE.md,
// "Queued messages"). The key sees its organisation's messages from the mailboxes it may send
// from; any other id — another organisation's, another mailbox's, or none — reads as not found.

export type MessageStatusView = {
  id: string;
  status: "queued" | "sending" | "retrying" | "sent" | "failed" | "cancelled";
  mailbox: string | null;
  createdAt: string;
  attempts: number;
  /** queued / retrying: when the next attempt may start. */
  nextAttemptAt: string | null;
  /** Past this a transient failure is final (queued messages only). */
  deadlineAt: string | null;
  sentAt: string | null;
  messageId: string | null;
  smtpResponse: string | null;
  /** failed, cancelled, or the last failed attempt of a retrying message. */
  error: { code: string | null; cause: string | null } | null;
  /** queued: why its last attempt was put off (a pause, the mailbox's limit), if one was. */
  heldBecause: string | null;
};

export type MessageStatusOutcome =
  | { kind: "found"; message: MessageStatusView }
  | { kind: "message_not_found" }
  | Extract<RefusalOutcome, { kind: "rate_limited" | "unavailable" }>;

const iso = (value: Date | null) => (value ? value.toISOString() : null);

export async function readMessageStatus(
  ctx: CallContext,
  messageId: string,
): Promise<MessageStatusOutcome> {
  const limited = limitRefusal(
    "apiKeyRead",
    await rateLimits().get("apiKeyRead").limit(`api_key:${ctx.actor.id}`),
    "The rate-limit store does not answer; try again shortly.",
  );
  if (limited) return limited;
  const db = await getDb();
  const row = await getMessageStatus({ db, orgId: ctx.orgId, messageId });
  if (!row) return { kind: "message_not_found" };
  const allowed =
    ctx.allowedMailboxIds === null ||
    (row.mailboxId !== null && ctx.allowedMailboxIds.includes(row.mailboxId));
  if (!allowed) {
    // Audited, answered exactly like an unknown id. A key can repeat this at will (polling an
    // old id of a mailbox it lost), so the event is sampled like its other refusals.
    await auditCallerRefusal(db, {
      orgId: ctx.orgId,
      actor: ctx.actor,
      action: "access.denied",
      target: { type: "message", id: row.id },
      outcome: "denied",
      request: ctx.request,
      metadata: { reason: "mailbox_not_allowed_for_key" },
    });
    return { kind: "message_not_found" };
  }
  const isWaiting = row.status === "queued" || row.status === "retrying";
  const hasError =
    row.status === "failed" || row.status === "cancelled" || row.status === "retrying";
  return {
    kind: "found",
    message: {
      id: row.id,
      status: row.status,
      mailbox: row.mailboxAddress ?? null,
      createdAt: row.createdAt.toISOString(),
      attempts: row.attempts,
      nextAttemptAt: isWaiting ? iso(row.nextAttemptAt) : null,
      deadlineAt: iso(row.deadlineAt),
      sentAt: iso(row.sentAt),
      messageId: row.status === "sent" ? row.providerMessageId : null,
      smtpResponse: row.smtpResponse,
      error: hasError ? { code: row.errorCode, cause: row.lastError } : null,
      // A queued message's only cause is a hold's (lib/mail/send-queued.ts).
      heldBecause: row.status === "queued" ? row.lastError : null,
    },
  };
}
