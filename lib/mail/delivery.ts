import "server-only";
import type { Database } from "@/db";
import type { findMailboxByIdOrAddress } from "@/db/queries/mailboxes";
import { writeMessageOutcome } from "@/db/queries/message-outcomes";
import { finishMessageParams } from "@/db/queries/messages";
import { withoutAddresses } from "@/lib/audit/events";
import { writeAuditEventWith } from "@/lib/audit/write";
import type { SenderContext } from "@/lib/auth/context";
import {
  MailboxNeedsReconnectError,
  MailboxNotFoundError,
  MailboxUnavailableError,
  ProviderNotConfiguredError,
  TokenRefreshTransientError,
} from "@/lib/oauth/errors";
import {
  getAccessToken,
  markMailboxUnusable,
  REFRESH_AHEAD_MS,
  recordMailboxUse,
} from "@/lib/oauth/tokens";
import { kickWebhookSweep } from "@/lib/webhooks/dispatch";
import { webhookEventInput } from "@/lib/webhooks/emit";
import { DeliveryUncertainError } from "./connection-pool";
import type { toNodemailerFields } from "./nodemailer-fields";
import {
  type ConnectionTestOutcome,
  isSmtpFailure,
  type RefusalOutcome,
  type SendOutcome,
} from "./outcomes";
import { markMailboxLimited, quotaRetryAfterSeconds } from "./quota";
import { classifySmtpError, enhancedStatus, type SmtpFailure } from "./smtp-replies";
import {
  closeMailboxTransport,
  getMailboxTransport,
  lastTokenFor,
  type MailboxTransportTarget,
  withProbeTransport,
} from "./transport";

// Delivery for the send chokepoint, after every check has passed: the access token, the SMTP
// conversation with its retries, the mapping of a failure to what happens to the mailbox, and
// the mailbox's bookkeeping, and the message row's final update. Only lib/mail/send.ts calls
// this module, after its checks.

export type Mailbox = NonNullable<Awaited<ReturnType<typeof findMailboxByIdOrAddress>>>;

export type Delivery =
  | { ok: true; messageId: string | null; smtpResponse: string | null }
  | {
      ok: false;
      failure: SmtpFailure | RefusalOutcome;
      /** The Message-ID of a message that may have arrived (`interrupted`), kept on its row. */
      messageId?: string | null;
    };

// Transient SMTP failures (4xx replies such as 421 4.7.0 and 432 4.3.2, dropped connections,
// no connection free) are tried again inside the send with growing pauses while its deadline
// allows, then reported. A synchronous send gives up after SEND_DEADLINE_MS.
export const SEND_DEADLINE_MS = 20_000;
const RETRY_DELAYS_MS = [250, 1_000, 2_000, 4_000, 8_000];

function retryDelay(attempt: number): number {
  const base = RETRY_DELAYS_MS[Math.min(attempt, RETRY_DELAYS_MS.length - 1)] ?? 8_000;
  // A little later, never earlier: processes that failed together do not retry together.
  return Math.round(base * (1 + Math.random() * 0.1));
}
const USE_RECORD_EVERY_MS = 60_000;

const holder = globalThis as typeof globalThis & { __mailwardenUsedAt?: Map<string, number> };
holder.__mailwardenUsedAt ??= new Map();
const usedAt = holder.__mailwardenUsedAt;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function transportTarget(mailbox: Mailbox, expiresAt: Date | null): MailboxTransportTarget {
  return {
    mailboxId: mailbox.id,
    address: mailbox.address,
    provider: mailbox.provider,
    generation: String(expiresAt?.getTime() ?? 0),
  };
}

/**
 * A token that still has its refresh margin is used by the transport as stored; only a stale
 * one is refreshed here, before any row is written, so a dead grant costs no message row.
 */
export async function ensureToken(
  mailbox: Mailbox,
  opts: { isAdminRetry?: boolean } = {},
): Promise<Date | null> {
  const expiresAt = mailbox.accessTokenExpiresAt;
  if (expiresAt && expiresAt.getTime() - Date.now() > REFRESH_AHEAD_MS + 30_000) return expiresAt;
  const token = await getAccessToken(mailbox.id, opts);
  return token.expiresAt;
}

/** A failure from the token lifecycle (possibly surfacing through nodemailer's AUTH). */
export function tokenFailure(error: unknown): SmtpFailure | RefusalOutcome | null {
  if (error instanceof MailboxNeedsReconnectError) {
    // The provider's own code (invalid_grant, an AADSTS number) is what the message row keeps.
    return { kind: "reconnect", code: error.code, cause: error.cause, smtpResponse: null };
  }
  if (error instanceof MailboxUnavailableError) {
    return error.status === "paused"
      ? { kind: "paused", scope: "mailbox", cause: error.cause }
      : { kind: "conflict", mailboxStatus: error.status, cause: error.cause };
  }
  if (error instanceof MailboxNotFoundError) {
    return { kind: "not_found", cause: "No such mailbox in this organisation." };
  }
  if (error instanceof ProviderNotConfiguredError) {
    return { kind: "conflict", mailboxStatus: null, cause: error.message };
  }
  if (error instanceof TokenRefreshTransientError) {
    return {
      kind: "provider_failed",
      id: null,
      failure: "token",
      code: "token_refresh_unavailable",
      smtpResponse: null,
      cause:
        "The provider's token service is not answering, so no fresh access token could be " +
        "fetched. Nothing was sent; try again later.",
      retryAfterSeconds: Math.max(1, Math.ceil((error.retryAt.getTime() - Date.now()) / 1000)),
    };
  }
  return null;
}

/**
 * One message over one of the mailbox's leased connections, with retries until `deadlineAt`
 * (epoch ms) and one forced refresh.
 */
export async function deliver(
  mailbox: Mailbox,
  expiresAt: Date | null,
  fields: ReturnType<typeof toNodemailerFields> & { messageId?: string },
  deadlineAt: number = Date.now() + SEND_DEADLINE_MS,
  /** Asked before each retry: a refusal (a pause turned on meanwhile) ends the send there. */
  stoppedMeanwhile?: () => Promise<RefusalOutcome | null>,
): Promise<Delivery> {
  let target = transportTarget(mailbox, expiresAt);
  let hasForcedRefresh = false;
  for (let attempt = 0; ; attempt++) {
    try {
      const connections = await getMailboxTransport(target);
      const info = await connections.sendMail(
        { from: { name: "", address: mailbox.address }, ...fields },
        deadlineAt,
      );
      return {
        ok: true,
        messageId: info.messageId ?? null,
        smtpResponse: typeof info.response === "string" ? info.response : null,
      };
    } catch (error) {
      const fromToken = tokenFailure(error);
      if (fromToken) return { ok: false, failure: fromToken };
      const failure = classifySmtpError(error);
      // The provider may have it: never tried again (ARCHITECTURE.md, "Never twice").
      if (error instanceof DeliveryUncertainError) {
        return { ok: false, failure, messageId: error.messageId };
      }
      const delay = retryDelay(attempt);
      if (failure.kind === "transient" && Date.now() + delay < deadlineAt) {
        await sleep(delay);
        const stopped = await stoppedMeanwhile?.();
        if (stopped) return { ok: false, failure: stopped };
        continue;
      }
      // 535 5.7.3 can also mean a stale token: only after a fresh one is it the admin's problem.
      if (
        failure.kind === "admin_action" &&
        enhancedStatus(failure.smtpResponse) === "5.7.3" &&
        !hasForcedRefresh
      ) {
        hasForcedRefresh = true;
        const rejectedToken = lastTokenFor(mailbox.id);
        try {
          const token = await getAccessToken(mailbox.id, {
            forceRefresh: true,
            ...(rejectedToken ? { rejectedToken } : {}),
          });
          void closeMailboxTransport(mailbox.id);
          target = transportTarget(mailbox, token.expiresAt);
          continue;
        } catch (refreshError) {
          const refused = tokenFailure(refreshError);
          if (refused) return { ok: false, failure: refused };
          throw refreshError;
        }
      }
      return { ok: false, failure };
    }
  }
}

/** "Test connection": TLS, AUTH XOAUTH2 and QUIT on a fresh, unpooled connection — no DATA. */
export async function probeConnection(
  mailbox: Mailbox,
  opts: { isAdminRetry?: boolean } = {},
): Promise<ConnectionTestOutcome> {
  try {
    const expiresAt = await ensureToken(mailbox, opts);
    await withProbeTransport(transportTarget(mailbox, expiresAt), opts, (probe) => probe.verify());
    return {
      kind: "connected",
      address: mailbox.address,
      cause: "TLS verified and the provider accepted the mailbox's access token (AUTH XOAUTH2).",
    };
  } catch (error) {
    const failure = tokenFailure(error) ?? classifySmtpError(error);
    if (!isSmtpFailure(failure)) return failure;
    await applyToMailbox(mailbox, failure);
    return {
      kind: "provider_failed",
      id: null,
      failure: failure.kind,
      code: failure.code,
      smtpResponse: failure.smtpResponse,
      cause: failure.cause,
      retryAfterSeconds: null,
    };
  }
}

/**
 * Moves the mailbox out of `connected` when the reply says a person must act; a provider quota
 * marks it "limit reached until" instead (and says the time in the failure's cause).
 */
export async function applyToMailbox(mailbox: Mailbox, failure: SmtpFailure) {
  if (failure.kind === "quota") {
    await markMailboxLimited(mailbox, failure);
    return;
  }
  if (failure.kind !== "reconnect" && failure.kind !== "admin_action") return;
  await markMailboxUnusable(mailbox.id, {
    status: failure.kind === "reconnect" ? "needs_reconnect" : "admin_action_required",
    code: failure.code,
    cause: failure.cause.replace("<address>", mailbox.address),
    smtpResponse: failure.smtpResponse,
  });
  void closeMailboxTransport(mailbox.id);
}

export function recordUse(mailboxId: string): void {
  const now = Date.now();
  if (now - (usedAt.get(mailboxId) ?? 0) < USE_RECORD_EVERY_MS) return;
  usedAt.set(mailboxId, now);
  // Bookkeeping only (Google ends grants unused for 6 months); never fails a sent message.
  recordMailboxUse(mailboxId).catch(() => usedAt.delete(mailboxId));
}

/**
 * The final update of the message row, its audit event and webhook deliveries, in one
 * statement, written only while the row is still this attempt's (`claimId`): when it no longer
 * was (sent, cancelled or taken over meanwhile), nothing is written.
 */
export async function recordDelivery(
  db: Database,
  input: {
    ctx: SenderContext;
    purpose: "api" | "dashboard_test" | "notification";
    mailbox: Mailbox;
    messageId: string;
    /** The attempt's claim (a queued attempt's id also while it only reserved the message). */
    claimId: string;
    recipientCount: number;
    delivery: Delivery;
    /** A queued message: keep the failure's plain cause on the row for the status route. */
    isQueued?: boolean;
  },
): Promise<void> {
  const { ctx, mailbox, messageId, delivery } = input;
  const failure = delivery.ok ? null : delivery.failure;
  const smtpFailure = failure && isSmtpFailure(failure) ? failure : null;
  const failureCode = failure === null ? null : "code" in failure ? failure.code : failure.kind;
  const smtpResponse = delivery.ok ? delivery.smtpResponse : (smtpFailure?.smtpResponse ?? null);
  const finish = finishMessageParams({
    orgId: ctx.orgId,
    messageId,
    claimId: input.claimId,
    status: delivery.ok ? "sent" : "failed",
    smtpResponse,
    providerMessageId: delivery.messageId ?? null,
    errorCode: failureCode,
    ...(input.isQueued
      ? {
          lastError:
            failure && "cause" in failure && failure.cause
              ? failure.cause.replace("<address>", mailbox.address)
              : null,
        }
      : {}),
  });
  const webhook =
    input.purpose === "api" ? messageWebhook(ctx.orgId, mailbox, messageId, delivery) : null;
  const written = await writeAuditEventWith(
    {
      orgId: ctx.orgId,
      actor: ctx.actor,
      action: delivery.ok ? "message.sent" : "message.failed",
      target: { type: "message", id: messageId },
      outcome: delivery.ok ? "success" : "failure",
      request: ctx.request,
      metadata: {
        mailboxId: mailbox.id,
        provider: mailbox.provider,
        purpose: input.purpose,
        ...(input.isQueued ? { queued: true } : {}),
        recipientCount: input.recipientCount,
        smtpResponse: withoutAddresses(smtpResponse),
        ...(delivery.ok ? {} : { failure: failureCode }),
      },
    },
    // Grouped with the outcomes of other sends that finish meanwhile (db/grouped.ts).
    (event) => writeMessageOutcome(db, { finish, event, webhook }),
  );
  // Only when the organisation has endpoints for the event: a sweep is a statement of its own.
  if (written.also > 0) kickWebhookSweep();
}

/**
 * `message.sent` / `message.failed` for the organisation's webhook endpoints, written by the
 * same statement as the final update (so it exists exactly when the outcome does). Thin: ids and
 * the outcome's code; the recipients and the provider's reply stay in Mailwarden.
 */
function messageWebhook(orgId: string, mailbox: Mailbox, messageId: string, delivery: Delivery) {
  const failure = delivery.ok ? null : delivery.failure;
  return webhookEventInput({
    orgId,
    type: delivery.ok ? "message.sent" : "message.failed",
    data: {
      id: messageId,
      status: delivery.ok ? "sent" : "failed",
      mailboxId: mailbox.id,
      mailbox: mailbox.address,
      ...(delivery.ok
        ? { providerMessageId: delivery.messageId }
        : { error: failure && "code" in failure ? failure.code : (failure?.kind ?? null) }),
    },
  });
}

/** What the caller is told about a delivery whose row is `messageId`. */
export function outcomeOf(messageId: string, delivery: Delivery): SendOutcome {
  if (delivery.ok) {
    return {
      kind: "sent",
      id: messageId,
      messageId: delivery.messageId,
      smtpResponse: delivery.smtpResponse,
    };
  }
  const failure = delivery.failure;
  if (!isSmtpFailure(failure)) {
    return failure.kind === "provider_failed" ? { ...failure, id: messageId } : failure;
  }
  return {
    kind: "provider_failed",
    id: messageId,
    failure: failure.kind,
    code: failure.code,
    smtpResponse: failure.smtpResponse,
    cause: failure.cause,
    retryAfterSeconds:
      failure.kind === "transient"
        ? 60
        : failure.kind === "quota"
          ? quotaRetryAfterSeconds(failure)
          : null,
  };
}
