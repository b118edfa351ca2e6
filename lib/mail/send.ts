import "server-only";
import { type Database, getDb } from "@/db";
import { getApiKeyForOrg } from "@/db/queries/api-keys";
import { findMailboxByIdOrAddress, getMailboxForOrg } from "@/db/queries/mailboxes";
import { claimMessage, finishMessage, type MessageSender } from "@/db/queries/messages";
import { writeAuditEvent } from "@/lib/audit/write";
import type { SenderContext } from "@/lib/auth/context";
import { hasPermission } from "@/lib/auth/roles";
import { isSendingPaused } from "@/lib/incidents/switches";
import { markMailboxRecovered } from "@/lib/oauth/recovery";
import { type LimitName, sendLimitNames } from "@/lib/ratelimit";
import { rateLimits } from "@/lib/ratelimit/runtime";
import { isKeyUsable } from "./api-key-state";
import {
  applyToMailbox,
  deliver,
  ensureToken,
  type Mailbox,
  outcomeOf,
  probeConnection,
  recordDelivery,
  recordUse,
  tokenFailure,
} from "./delivery";
import {
  findEarlierRequest,
  hashSendRequest,
  holdInFlight,
  type IdempotencyScope,
  replay,
} from "./idempotency";
import { refusalToSend, unusableMailbox } from "./mailbox-state";
import {
  decodeSendRequestText,
  mailboxSelectorOf,
  type SendRequest,
  validateSendRequest,
} from "./message";
import { toNodemailerFields } from "./nodemailer-fields";
import {
  type ConnectionTestOutcome,
  isRefusal,
  isSmtpFailure,
  type RefusalOutcome,
  type SendOutcome,
} from "./outcomes";

// THE send chokepoint: every message — API sends, dashboard test messages — and every
// connection test passes here, judged in this order: incident switches → permission → rate
// limits → JSON body → mailbox (organisation, key still unrevoked, key's scope, status) →
// validation and HTML sanitising → mailbox rate limits → access token → message row →
// SMTP → row update and audit event. The cheap refusals come before validation because
// sanitising is the one step whose cost the caller controls. The switches, the permission, the
// caller's rate limit, the mailbox and an earlier request with the Idempotency-Key are asked
// together at the start; what they say is still judged in this order.
// Nothing else in the code base creates a transport or calls sendMail (lib/mail/delivery.ts
// does, for this module only).

/** The raw HTTP body (the route), or an already-decoded value (a dashboard form). */
export type SendBody =
  | { type: "http"; text: string; contentType: string | null }
  | { type: "value"; value: unknown };

export type SendMessageInput = {
  ctx: SenderContext;
  body: SendBody;
  idempotencyKey?: string;
  purpose: "api" | "dashboard_test" | "notification";
  /** Epoch ms: transient replies are retried and a free connection awaited until then. */
  deadlineAt?: number;
};

export type ConnectionTestInput = {
  ctx: SenderContext;
  mailboxId: string;
  /** An administrator's "Retry now": a passing test reconnects a mailbox that needed them. */
  isAdminRetry?: boolean;
};

type Invalid = Extract<SendOutcome, { kind: "invalid" }>;

/* ---------------------------------------------------------------------------------------- */
/* The checks, in order                                                                      */

// During an incident, who still tried to send is worth knowing: each refusal is audited.
async function checkSwitches(db: Database, ctx: SenderContext): Promise<RefusalOutcome | null> {
  const pause = await isSendingPaused({ db, orgId: ctx.orgId });
  if (!pause.isPaused) return null;
  await writeAuditEvent(db, {
    orgId: ctx.orgId,
    actor: ctx.actor,
    action: "message.refused",
    outcome: "denied",
    request: ctx.request,
    metadata: { reason: "sending_paused", scope: pause.scope },
  });
  const who = pause.scope === "global" ? "for every organisation" : "for this organisation";
  return {
    kind: "paused",
    scope: pause.scope,
    cause: `Sending is paused ${who} by an incident switch: ${pause.reason}`,
  };
}

/**
 * A key's revocation is re-checked with the mailbox lookup (one statement, see lookupMailbox).
 * Mailwarden's own notifications (the system actor) need no role: only server code builds that
 * context, and every other check below still applies to it.
 */
async function checkPermission(db: Database, ctx: SenderContext): Promise<RefusalOutcome | null> {
  if (ctx.actor.type === "api_key" || ctx.actor.type === "system") return null;
  if (ctx.role !== null && hasPermission(ctx.role, "send")) return null;
  await writeAuditEvent(db, {
    orgId: ctx.orgId,
    actor: ctx.actor,
    action: "access.denied",
    target: { type: "permission", id: "send" },
    outcome: "denied",
    request: ctx.request,
    metadata: { role: ctx.role },
  });
  return { kind: "forbidden", cause: "Your role does not allow sending messages." };
}

/** The sender as message rows and limits name it (the system sends for one organisation). */
function senderOf(ctx: SenderContext): MessageSender {
  return ctx.actor.type === "system"
    ? { type: "system", id: ctx.orgId }
    : { type: ctx.actor.type, id: ctx.actor.id };
}

// The system's own volume is bounded by the digest window and the health interval; the
// mailbox's limits still apply to it.
async function checkActorLimit(ctx: SenderContext): Promise<RefusalOutcome | null> {
  if (ctx.actor.type === "system") return null;
  const name: LimitName = ctx.actor.type === "api_key" ? "apiKey" : "testSend";
  const sender = senderOf(ctx);
  const result = await rateLimits().get(name).limit(`${sender.type}:${sender.id}`);
  if (result.success) return null;
  if (result.unavailable) return storeUnavailable(result.retryAfterSeconds);
  return { kind: "rate_limited", limit: name, retryAfterSeconds: result.retryAfterSeconds };
}

function storeUnavailable(retryAfterSeconds: number): RefusalOutcome {
  return {
    kind: "unavailable",
    retryAfterSeconds,
    cause: `Sending is temporarily unavailable: the rate-limit store does not answer. Nothing was sent; try again in ${retryAfterSeconds} seconds.`,
  };
}

/** The body as a value: JSON decoding only, nothing validated yet. */
function decode(body: SendBody): { value: unknown } | Invalid {
  if (body.type === "value") return { value: body.value };
  const decoded = decodeSendRequestText(body.text, body.contentType);
  return decoded.ok
    ? { value: decoded.body }
    : { kind: "invalid", status: decoded.status, problems: decoded.problems };
}

/** Full validation, HTML sanitising included: the expensive step. */
function validate(value: unknown): SendRequest | Invalid {
  const parsed = validateSendRequest(value);
  return parsed.ok
    ? parsed.value
    : { kind: "invalid", status: parsed.status, problems: parsed.problems };
}

/**
 * The mailbox in the organisation, if the caller may use it; its state is not judged here.
 * For an API key the same statement says whether the key is still unrevoked, so a key revoked
 * after the route verified it is refused here without a second read of the key.
 */
async function lookupMailbox(
  db: Database,
  ctx: SenderContext,
  selector: string,
): Promise<Mailbox | RefusalOutcome> {
  const apiKeyId = ctx.actor.type === "api_key" ? ctx.actor.id : null;
  const mailbox = await findMailboxByIdOrAddress({
    db,
    orgId: ctx.orgId,
    mailbox: selector,
    apiKeyId,
  });
  if (apiKeyId !== null) {
    const active = mailbox
      ? mailbox.keyActive === true
      : isKeyUsable(await getApiKeyForOrg({ db, orgId: ctx.orgId, keyId: apiKeyId }));
    if (!active) return { kind: "unauthorized" };
  }
  if (!mailbox) {
    return { kind: "not_found", cause: "No such mailbox in this organisation." };
  }
  if (ctx.allowedMailboxIds !== null && !ctx.allowedMailboxIds.includes(mailbox.id)) {
    return { kind: "forbidden", cause: "This API key is not allowed to send from that mailbox." };
  }
  return mailbox;
}

async function checkMailboxLimits(
  mailbox: Mailbox,
  recipientCount: number,
): Promise<RefusalOutcome | null> {
  const names = sendLimitNames(mailbox.provider);
  const id = `mailbox:${mailbox.id}`;
  const minute = await rateLimits().get(names.minute).limit(id);
  if (!minute.success) {
    if (minute.unavailable) return storeUnavailable(minute.retryAfterSeconds);
    return {
      kind: "rate_limited",
      limit: names.minute,
      retryAfterSeconds: minute.retryAfterSeconds,
    };
  }
  // The day limit counts recipients (Microsoft: 10,000 recipients a day per mailbox).
  const day = await rateLimits().get(names.day).limit(id, Math.max(1, recipientCount));
  if (!day.success) {
    if (day.unavailable) return storeUnavailable(day.retryAfterSeconds);
    return { kind: "rate_limited", limit: names.day, retryAfterSeconds: day.retryAfterSeconds };
  }
  return null;
}

/** The token check before any row is written: a dead grant is a refusal, not a message. */
async function checkToken(mailbox: Mailbox): Promise<{ expiresAt: Date | null } | RefusalOutcome> {
  try {
    return { expiresAt: await ensureToken(mailbox) };
  } catch (error) {
    const refused = tokenFailure(error);
    if (!refused) throw error;
    return isSmtpFailure(refused)
      ? { kind: "conflict", mailboxStatus: "needs_reconnect", cause: refused.cause }
      : refused;
  }
}

/* ---------------------------------------------------------------------------------------- */
/* Entry points                                                                              */

/** Sends one message, or says in one outcome why not. Never throws for a caller's mistake. */
export async function sendMessage(input: SendMessageInput): Promise<SendOutcome> {
  const { ctx } = input;
  const db = await getDb();
  // JSON decoding only (linear, and the route caps the bytes), so that the steps below can be
  // issued together; their answers are still judged in the chokepoint's order. The caller's
  // own limit counts every attempt, refused or not, as it always did for denied calls.
  const body = decode(input.body);
  const selector = "kind" in body ? null : mailboxSelectorOf(body.value);
  const sender = senderOf(ctx);
  const scope: IdempotencyScope | null =
    input.idempotencyKey === undefined
      ? null
      : { orgId: ctx.orgId, sender, idempotencyKey: input.idempotencyKey };
  const [paused, refused, limited, found, first] = await Promise.all([
    checkSwitches(db, ctx),
    checkPermission(db, ctx),
    checkActorLimit(ctx),
    selector === null ? null : lookupMailbox(db, ctx, selector),
    scope === null ? null : findEarlierRequest(db, scope),
  ]);
  if (paused) return paused;
  if (refused) return refused;
  if (limited) return limited;

  if ("kind" in body) return body;
  if (found === null) {
    // Nothing to look up: the full list of problems answers, the mailbox among them (the
    // schema refuses it, so no HTML is sanitised on the way).
    const invalid = validate(body.value);
    if ("kind" in invalid) return invalid;
    return {
      kind: "invalid",
      status: 400,
      problems: [{ field: "mailbox", message: "is required" }],
    };
  }
  const mailbox = found;
  if (isRefusal(mailbox)) return mailbox;
  // A replay answers with the first result whatever state the mailbox is in now.
  if (first === null) {
    const unusable = refusalToSend(mailbox);
    if (unusable) return unusable;
  }

  const request = validate(body.value);
  if ("kind" in request) return request;
  const requestHash = hashSendRequest(request);
  if (scope !== null && first !== null) return replay(db, scope, requestHash, first);

  const fields = toNodemailerFields(request);
  const recipientCount = request.to.length + request.cc.length + request.bcc.length;
  const overLimit = await checkMailboxLimits(mailbox, recipientCount);
  if (overLimit) return overLimit;
  const token = await checkToken(mailbox);
  if (isRefusal(token)) return token;

  const claimed = await claimMessage({
    db,
    orgId: ctx.orgId,
    mailboxId: mailbox.id,
    sender,
    recipients: { to: request.to, cc: request.cc, bcc: request.bcc },
    subject: request.subject,
    idempotencyKey: scope?.idempotencyKey ?? null,
    requestHash,
  });
  // Lost the race for this Idempotency-Key to a request that arrived at the same time.
  if (!claimed)
    return replay(db, scope ?? { orgId: ctx.orgId, sender, idempotencyKey: "" }, requestHash, null);

  const release = holdInFlight(scope);
  try {
    const delivery = await deliver(mailbox, token.expiresAt, fields, input.deadlineAt);
    if (!delivery.ok && isSmtpFailure(delivery.failure)) {
      await applyToMailbox(mailbox, delivery.failure);
    }
    await recordDelivery(db, {
      ctx,
      purpose: input.purpose,
      mailbox,
      messageId: claimed.id,
      recipientCount,
      delivery,
    });
    if (delivery.ok) recordUse(mailbox.id);
    return outcomeOf(claimed.id, delivery);
  } catch (error) {
    // An unexpected failure still settles the row, so a replay does not wait for ever.
    await finishMessage({
      db,
      orgId: ctx.orgId,
      messageId: claimed.id,
      status: "failed",
      smtpResponse: null,
      providerMessageId: null,
      errorCode: "internal_error",
    }).catch(() => {});
    throw error;
  } finally {
    release();
  }
}

/**
 * "Test connection": TLS, AUTH XOAUTH2 and QUIT on a fresh, unpooled connection — no DATA.
 * Same switches, permission, mailbox and token checks as a send; audited either way.
 */
export async function testConnection({
  ctx,
  mailboxId,
  isAdminRetry = false,
}: ConnectionTestInput): Promise<ConnectionTestOutcome> {
  const db = await getDb();
  const paused = await checkSwitches(db, ctx);
  if (paused) return paused;
  const refused = await checkPermission(db, ctx);
  if (refused) return refused;
  const limited = await checkActorLimit(ctx);
  if (limited) return limited;

  const row = await getMailboxForOrg({ db, orgId: ctx.orgId, mailboxId });
  if (!row) return { kind: "not_found", cause: "No such mailbox in this organisation." };
  const mailbox = await lookupMailbox(db, ctx, row.id);
  if (isRefusal(mailbox)) return mailbox;
  // "Retry now" tests a mailbox waiting for an administrator; every other state is refused
  // as for any test.
  const retrying = isAdminRetry && mailbox.status === "admin_action_required";
  const unusable = retrying ? null : unusableMailbox(mailbox);
  if (unusable) return unusable;
  if (isAdminRetry && !retrying) {
    return {
      kind: "conflict",
      mailboxStatus: mailbox.status,
      cause: "Only a mailbox that needs an administrator can be retried; this one is connected.",
    };
  }
  const result = await probeConnection(mailbox, { isAdminRetry: retrying });
  if (retrying && result.kind === "connected" && ctx.actor.type === "user") {
    await markMailboxRecovered(mailbox.id, { actor: ctx.actor, request: ctx.request });
  }

  await writeAuditEvent(db, {
    orgId: ctx.orgId,
    actor: ctx.actor,
    action: "mailbox.connection_tested",
    target: { type: "mailbox", id: mailbox.id },
    outcome: result.kind === "connected" ? "success" : "failure",
    request: ctx.request,
    metadata: {
      provider: mailbox.provider,
      result: result.kind,
      ...(result.kind === "provider_failed"
        ? { code: result.code, smtpResponse: result.smtpResponse }
        : {}),
    },
  });
  return result;
}
